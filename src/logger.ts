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
  // Lines are gathered into writes of 16 KiB, written at most 100 ms after they were logged so
  // that a quiet agent's lines show, and dropped past 16 MiB of backlog (Batched, below).
  const destination = pino.destination({ dest: options.output ?? 1, sync: false, contentMode: 'buffer', minLength: 0 })
  return pino(base, new Batched(destination))
}

type SonicBoom = ReturnType<typeof pino.destination>

/** Characters of lines written together, and the longest a line waits for more. */
const BATCH_CHARS = 16 * 1024
const BATCH_MS = 100
/** Characters of lines held while stdout has not taken the last write; later lines are dropped. */
const MAX_HELD_CHARS = 16 * 1024 * 1024
/** The reused buffer a batch is encoded into: room for a batch's UTF-8, 3 bytes a character at most. */
const BUFFER_BYTES = 4 * BATCH_CHARS

/**
 * Gathers lines into writes of 16 KiB, one write at a time. A write per line (a busy server's
 * event-loop turn holds one or two) would cost more than the request the line records.
 *
 * Each batch is joined, encoded once into a buffer that is reused from write to write, and handed
 * to sonic-boom (in its buffer mode) as bytes; lines logged while that write is under way wait
 * for it. Given strings, sonic-boom measured their UTF-8 length on every write, fs.write encoded
 * them, and sonic-boom encoded them again once written: copies, each a large allocation (on
 * which glibc consolidates its free lists), that were 2,300 of the 5,300 instructions the access
 * line added to a cache hit (docs/bench/findings.md). When stdout stalls (a log shipper that
 * stopped reading), lines past 16 MiB of backlog are dropped rather than held: the agent's memory
 * stays bounded.
 *
 * flush(callback) calls back once every line logged so far is written. (sonic-boom's own flush
 * calls back at once when minLength is 0, with its writes still under way: a CLI that then exited
 * wrote its last lines from the exit handler ahead of a write still waiting for libuv's threads.)
 * An exit that does not wait for flush, such as an uncaught error, can still put lines out of
 * order; none are lost, as Node finishes the threads' writes before the process ends.
 *
 * A write that fails stops the logging, not the agent: EPIPE (the reader is gone) quietly, as pino
 * does; anything else (a full disk under a redirected stdout) with a line on stderr. A sidecar
 * that serves secrets should outlive its log.
 */
class Batched implements DestinationStream {
  #pending: string[] = []
  #chars = 0
  #timer: NodeJS.Timeout | undefined
  /** sonic-boom has a write under way (between a write and its 'drain'); it may hold #bytes. */
  #writing = false
  readonly #bytes = Buffer.allocUnsafeSlow(BUFFER_BYTES)
  #flushed: Array<(error?: Error) => void> = []
  /** Set once a write failed; nothing is written after. */
  #failed: Error | undefined
  readonly #destination: SonicBoom

  constructor (destination: SonicBoom) {
    this.#destination = destination
    destination.on('drain', () => { this.#written() })
    // Before pino's own listener, which stops on EPIPE and rethrows anything else.
    destination.prependListener('error', (error: Error) => { this.#fail(error) })
    flushOnExit(this)
  }

  write (line: string): void {
    if (this.#chars > MAX_HELD_CHARS) return
    this.#pending.push(line)
    this.#chars += line.length
    if (this.#chars >= BATCH_CHARS) this.#drain()
    else this.#later()
  }

  /** pino's logger.flush(callback): calls back once every line logged so far is written. */
  flush (callback?: (error?: Error) => void): void {
    if (callback !== undefined) this.#flushed.push(callback)
    this.#drain()
    // Nothing was left to write: the callback still comes later, as it does after a write.
    if (!this.#writing) process.nextTick(() => { this.#settle(this.#failed) })
  }

  /** On exit, and after logger.fatal: writes what is held, then has sonic-boom write synchronously. */
  flushSync (): void {
    this.#drain()
    if (this.#failed !== undefined) return
    if (this.#pending.length > 0) this.#send(this.#pending.join(''))
    try {
      this.#destination.flushSync()
    } catch {
      // Destroyed or closed already (stdout gone): nothing more can be written.
    }
  }

  /** Writes the lines held, unless a write is under way ('drain' then calls again). */
  readonly #drain = (): void => {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer)
      this.#timer = undefined
    }
    if (this.#writing || this.#pending.length === 0) return
    this.#send(this.#pending.length === 1 ? this.#pending[0] ?? '' : this.#pending.join(''))
  }

  #later (): void {
    if (this.#timer === undefined && !this.#writing) this.#timer = setTimeout(this.#drain, BATCH_MS).unref()
  }

  /**
   * Into the reused buffer when it is free and has room. sonic-boom holds it until the write's
   * 'drain'; a write handed over before then (flushSync's, on exit) gets bytes of its own.
   */
  #encode (lines: string): Buffer {
    if (this.#writing || lines.length * 3 > BUFFER_BYTES) return Buffer.from(lines)
    return this.#bytes.subarray(0, this.#bytes.write(lines))
  }

  #send (lines: string): void {
    this.#pending = []
    this.#chars = 0
    if (this.#failed !== undefined) return
    const bytes = this.#encode(lines)
    this.#writing = true
    this.#destination.write(bytes as unknown as string)
  }

  /** sonic-boom's 'drain': everything handed to it is written. */
  #written (): void {
    this.#writing = false
    if (this.#chars >= BATCH_CHARS || this.#flushed.length > 0) this.#drain()
    if (this.#writing) return
    if (this.#pending.length > 0) this.#later()
    this.#settle()
  }

  #settle (error?: Error): void {
    const callbacks = this.#flushed
    this.#flushed = []
    for (const callback of callbacks) callback(error)
  }

  #fail (error: Error): void {
    this.#writing = false
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
  const timeOf = time === pino.stdTimeFunctions.epochTime ? epochTime() : time as () => string
  return (head, ms, tail) => {
    if (!logger.isLevelEnabled('info')) return
    // Bindings are read per line: a child made later (or a rebinding) shows, as with pino.
    stream.write('{"level":30' + timeOf() + (internals[chindingsSym] as string) + head + latencyText(ms) + tail)
  }
}

/**
 * pino's default time field, `,"time":` and Date.now(), with the text kept for the millisecond:
 * a busy agent writes tens of lines a millisecond, and a 13-digit number's text costs more than
 * the rest of the line's assembly.
 */
function epochTime (): () => string {
  let at = -1
  let text = ''
  return () => {
    const now = Date.now()
    if (now !== at) {
      at = now
      text = ',"time":' + String(now)
    }
    return text
  }
}

/**
 * The JSON of a latency in ms, as pino writes it (`String(ms)`, null when not finite), for ms
 * rounded to hundredths: built from integers, whose text V8 keeps at hand, where a fraction's
 * shortest decimal form is a costly search. Other numbers take String's way.
 */
export function latencyText (ms: number): string {
  const hundredths = Math.round(ms * 100)
  if (hundredths < 0 || hundredths >= 1e9 || hundredths / 100 !== ms) return Number.isFinite(ms) ? String(ms) : 'null'
  const whole = Math.floor(hundredths / 100)
  const cents = hundredths - whole * 100
  if (cents === 0) return String(whole)
  return String(whole) + (cents < 10 ? '.0' : '.') + String(cents % 10 === 0 ? cents / 10 : cents)
}
