import { writeSync } from 'node:fs'
import { pino, type Logger, type DestinationStream } from 'pino'
import type { LogLevel } from './config/index.js'

/**
 * Header and body fields that can hold a token, secret or plaintext. The agent never logs
 * requests or values wholesale, so these are a second line of defence, not the first.
 */
export const REDACT_PATHS = [
  'req.headers["x-aws-parameters-secrets-token"]',
  'req.headers["x-vault-token"]',
  'req.headers.authorization',
  'headers["x-aws-parameters-secrets-token"]',
  'headers["x-vault-token"]',
  'headers.authorization',
  // Top-level paths only: a wildcard (`*.value`) makes pino walk every object of every line,
  // which on the access log costs more than the request it records.
  'token',
  'SecretString',
  'SecretBinary',
  'Plaintext',
  'Value',
  'value'
]

export interface LoggerOptions {
  level: LogLevel
  /** Human-friendly lines (dev) instead of JSON: a pino-pretty stream (loaded only for dev). */
  pretty?: DestinationStream
  /** Where lines go, as they are logged; tests pass a stream to read them. */
  destination?: DestinationStream
  /** Without `destination`: the file descriptor or file the batched lines go to; stdout (1) by default. */
  output?: number | string
}

export function createLogger (options: LoggerOptions): Logger {
  const level = options.level === 'none' ? 'silent' : options.level
  const base = { level, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, base: { name: 'secrets-agent' } }
  if (options.pretty !== undefined) return pino(base, options.pretty)
  if (options.destination !== undefined) return pino(base, options.destination)
  // Lines are gathered into writes of 16 KiB (one write per access line would cost more than the
  // request itself), and written at most 100 ms after they were logged, so a quiet agent's lines
  // show (Batched, below). When stdout stalls (a log shipper that stopped reading), lines past
  // 16 MiB of backlog are dropped rather than held: the agent's memory stays bounded.
  const destination = pino.destination({ dest: options.output ?? 1, sync: false, minLength: 0, maxWrite: 32 * 1024, maxLength: 16 * 1024 * 1024 })
  return pino(base, new Batched(destination))
}

type SonicBoom = ReturnType<typeof pino.destination>

/** Characters of lines handed to sonic-boom together, and the longest a line waits for more. */
const BATCH_CHARS = 16 * 1024
const BATCH_MS = 100

/**
 * Hands sonic-boom lines 16 KiB at a time. sonic-boom measures the UTF-8 length of its last
 * pending chunk on every write, which flattens and scans that chunk whole when it was built by
 * appending: in-process, a write per event-loop turn of one or two lines (a busy server's turn)
 * cost 2.5 to 7.5 µs a line, against 0.4 to 0.7 µs in writes of 16 KiB (docs/bench/findings.md).
 * Order is kept: every line goes through here.
 *
 * flush(callback) calls back once sonic-boom has written every line so far. (sonic-boom's own
 * flush calls back at once when minLength is 0, with its writes still under way: a CLI that then
 * exited wrote its last lines from the exit handler ahead of a write still waiting for libuv's
 * threads.) An exit that does not wait for flush, such as an uncaught error, can still put lines
 * out of order; none are lost, as Node finishes the threads' writes before the process ends.
 *
 * A write that fails stops the logging, not the agent: EPIPE (the reader is gone) quietly, as pino
 * does; anything else (a full disk under a redirected stdout) with a line on stderr. A sidecar
 * that serves secrets should outlive its log.
 */
class Batched implements DestinationStream {
  #pending: string[] = []
  #chars = 0
  #timer: NodeJS.Timeout | undefined
  /** sonic-boom has lines it has not finished writing: between a write and its 'drain'. */
  #writing = false
  #flushed: Array<(error?: Error) => void> = []
  /** Set once a write failed; nothing is written after. */
  #failed: Error | undefined
  readonly #destination: SonicBoom

  constructor (destination: SonicBoom) {
    this.#destination = destination
    destination.on('drain', () => { this.#settle() })
    // Before pino's own listener, which stops on EPIPE and rethrows anything else.
    destination.prependListener('error', (error: Error) => { this.#fail(error) })
    flushOnExit(this)
  }

  write (line: string): void {
    this.#pending.push(line)
    this.#chars += line.length
    if (this.#chars >= BATCH_CHARS) this.#drain()
    else if (this.#timer === undefined) this.#timer = setTimeout(this.#drain, BATCH_MS).unref()
  }

  /** pino's logger.flush(callback): calls back once every line logged so far is written. */
  flush (callback?: (error?: Error) => void): void {
    this.#drain()
    if (callback === undefined) return
    if (this.#writing) this.#flushed.push(callback)
    else process.nextTick(callback, this.#failed)
  }

  /** On exit, and after logger.fatal. */
  flushSync (): void {
    this.#drain()
    if (this.#failed !== undefined) return
    try {
      this.#destination.flushSync()
    } catch {
      // Destroyed or closed already (stdout gone): nothing more can be written.
    }
  }

  readonly #drain = (): void => {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer)
      this.#timer = undefined
    }
    if (this.#pending.length === 0) return
    const lines = this.#pending.length === 1 ? this.#pending[0] ?? '' : this.#pending.join('')
    this.#pending = []
    this.#chars = 0
    if (this.#failed !== undefined) return
    this.#writing = true
    this.#destination.write(lines)
  }

  #settle (error?: Error): void {
    this.#writing = false
    const callbacks = this.#flushed
    this.#flushed = []
    for (const callback of callbacks) callback(error)
  }

  #fail (error: Error): void {
    if (this.#failed === undefined) {
      this.#failed = error
      // Drops the lines sonic-boom still holds (never closing stdout or stderr): its flushSync,
      // which pino calls on exit, would otherwise retry them forever.
      this.#destination.destroy()
      const code = (error as NodeJS.ErrnoException).code
      if (code !== 'EPIPE') {
        try {
          writeSync(2, `secrets-agent: writing the log failed (${code ?? error.message}); logging stopped\n`)
        } catch {
          // stderr is gone too.
        }
      }
    }
    this.#settle(error)
  }
}

/**
 * The Batched destinations whose lines are written out on exit (pino then flushes its own). Held
 * weakly, behind one listener: a logger nobody holds any more (a test's) is not kept alive by the
 * process. One with lines waiting is held by its timer.
 */
const onExit = new Set<WeakRef<Batched>>()
const collected = new FinalizationRegistry<WeakRef<Batched>>((ref) => { onExit.delete(ref) })
let listening = false

function flushOnExit (batched: Batched): void {
  if (!listening) {
    listening = true
    process.once('exit', flushAllOnExit)
  }
  const ref = new WeakRef(batched)
  onExit.add(ref)
  collected.register(batched, ref)
}

function flushAllOnExit (): void {
  for (const ref of onExit) ref.deref()?.flushSync()
}

/** The stream of `dev`'s human-friendly lines; pino-pretty is loaded only here. */
export async function prettyStream (): Promise<DestinationStream> {
  const { default: pretty } = await import('pino-pretty')
  return pretty({ colorize: process.stdout.isTTY, sync: true, ignore: 'pid,hostname,name', destination: 1 })
}

/** The fields of an access line (DESIGN §7): never the id, the value or a header. */
export interface AccessFields {
  method: string
  /** The route pattern, not the URL. */
  route: string
  status: number
  ms: number
  /** HIT, MISS or STALE on reads; absent elsewhere. */
  cache?: string
}

export type AccessLog = (fields: AccessFields) => void

/** The access line of one fixed set of fields, written with the latency (ms) of each request. */
export type AccessLine = (ms: number) => void

interface PinoInternals {
  [key: symbol]: unknown
}

/**
 * Writes access lines at info, in the logger's own format and to its own destination, as
 * `logger.info(fields, 'request')` would, minus the generic work: pino's serialisation and
 * redaction pass cost more than a cached read itself, and these fields are fixed and ours.
 * Falls back to `logger.info` for a logger configured in a way this does not reproduce
 * (test/unit/logger.test.ts checks the two give the same lines).
 */
export function accessLog (logger: Logger): AccessLog {
  const write = lineWriter(logger)
  if (write === null) return (fields) => { logger.info(fields, 'request') }
  return (fields) => { write(lineHead(fields), fields.ms, lineTail(fields)) }
}

/**
 * accessLog for requests that all have the same fields but the latency (the fast path's hit):
 * the line around the latency is built once.
 */
export function accessLine (logger: Logger, fields: Omit<AccessFields, 'ms'>): AccessLine {
  const write = lineWriter(logger)
  if (write === null) {
    const { method, route, status, cache } = fields
    return (ms) => { logger.info({ method, route, status, ms, ...(cache === undefined ? {} : { cache }) }, 'request') }
  }
  const head = lineHead(fields)
  const tail = lineTail(fields)
  return (ms) => { write(head, ms, tail) }
}

// The fields in the order logger.info writes them: method, route, status, ms, cache.
const lineHead = (fields: Omit<AccessFields, 'ms'>): string =>
  ',"method":' + JSON.stringify(fields.method) + ',"route":' + JSON.stringify(fields.route) + ',"status":' + String(fields.status) + ',"ms":'
const lineTail = (fields: Omit<AccessFields, 'ms'>): string =>
  (fields.cache === undefined ? '' : ',"cache":' + JSON.stringify(fields.cache)) + ',"msg":"request"}\n'

type LineWriter = (head: string, ms: number, tail: string) => void

/** Writes `head ms tail` after the logger's level, time and bindings; null for a logger whose lines it cannot copy. */
function lineWriter (logger: Logger): LineWriter | null {
  const internals = logger as unknown as PinoInternals
  const { lsCacheSym, timeSym, chindingsSym, streamSym, messageKeySym, endSym, needsMetadataGsym, mixinSym, formattersSym } = pino.symbols
  const levels = internals[lsCacheSym] as Record<number, string> | undefined
  const time = internals[timeSym]
  const stream = internals[streamSym] as (DestinationStream & PinoInternals) | undefined
  const reproducible = levels?.[30] === '{"level":30' && typeof time === 'function' && typeof internals[chindingsSym] === 'string' &&
    internals[messageKeySym] === 'msg' && internals[endSym] === '}\n' && internals[mixinSym] === undefined &&
    (internals[formattersSym] as { log?: unknown } | undefined)?.log === undefined &&
    stream !== undefined && typeof stream.write === 'function' && stream[needsMetadataGsym] !== true
  if (!reproducible) return null
  const timeOf = time as () => string
  return (head, ms, tail) => {
    if (!logger.isLevelEnabled('info')) return
    // Bindings are read per line: a child made later (or a rebinding) shows, as with pino.
    stream.write('{"level":30' + timeOf() + (internals[chindingsSym] as string) + head + (Number.isFinite(ms) ? String(ms) : 'null') + tail)
  }
}
