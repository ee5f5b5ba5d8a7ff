import { writeSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
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
  const base = { level, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, base: { name: 'secrets-agent' }, serializers: { err: describedError } }
  if (options.pretty !== undefined) return pino(base, options.pretty)
  if (options.destination !== undefined) return pino(base, options.destination)
  // Lines are gathered into writes of 16 KiB, written at most 100 ms after they were logged so
  // that a quiet agent's lines show, and dropped past 16 MiB of backlog (Batched, below).
  const destination = pino.destination({ dest: options.output ?? 1, sync: false, contentMode: 'buffer', minLength: 0 })
  return pino(base, new Batched(destination))
}

/**
 * `err` as logged: the agent logs the fields it picked (`{ message, code }`), never an error
 * whole, and these go out as they are; pino's own serializer would add `"type": "Object"` and an
 * empty stack to them. An Error (from a library's own log call) still gets pino's serializer.
 */
function describedError (value: unknown): unknown {
  return value instanceof Error ? pino.stdSerializers.err(value) : value
}

type SonicBoom = ReturnType<typeof pino.destination>

/** Bytes of lines written together, and the longest a line waits for more. */
const BATCH_BYTES = 16 * 1024
const BATCH_MS = 100
/** Bytes of lines held while stdout has not taken the last write; later lines are dropped. */
const MAX_HELD_BYTES = 16 * 1024 * 1024
/** The buffers lines are gathered in: room for a batch and the lines that come while it is written. */
const CHUNK_BYTES = 64 * 1024
/** Room for a latency's text: `String(ms)` of any number is at most 24 characters. */
const LATENCY_BYTES = 24
/** Access lines recorded (Batched.record) before they are put into bytes. */
const RECORDS = 128

/**
 * Gathers lines into writes of 16 KiB, one write at a time. A write per line (a busy server's
 * event-loop turn holds one or two) would cost more than the request the line records.
 *
 * Lines are gathered as bytes, in a buffer reused from write to write, and handed to sonic-boom
 * (in its buffer mode) a batch at a time; lines logged while a write is under way gather in a
 * second buffer. Given strings, sonic-boom measured their UTF-8 length on every write, fs.write
 * encoded them, and sonic-boom encoded them again once written (docs/bench/findings.md).
 *
 * pino's lines come as text, and are encoded a batch at a time (joined first: one native call per
 * line costs more than the line). The fast path's access lines are recorded instead (`record`):
 * three numbers a line, put into bytes 128 at a time, from bytes kept between lines. A cache hit
 * then spends a few stores on its line rather than building and copying it between requests: in
 * same-run A/Bs that was worth 3 to 13 % of the agent's throughput. Order holds: recorded lines
 * are put into bytes before any later text line, and text before any later recorded line.
 *
 * When stdout stalls (a log shipper that stopped reading), lines past 16 MiB of backlog are
 * dropped rather than held: the agent's memory stays bounded.
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
  /** The lines gathered as bytes: `#used` bytes of `#chunk`. */
  #chunk: Buffer = Buffer.allocUnsafeSlow(CHUNK_BYTES)
  #used = 0
  /** Text lines logged since: they come after those bytes. */
  #text: string[] = []
  #textChars = 0
  /** Access lines recorded since (never at once with text lines): which line, when, and its latency. */
  readonly #recorded: Array<RecordedLine | undefined> = new Array<RecordedLine | undefined>(RECORDS).fill(undefined)
  readonly #recordedAt = new Float64Array(RECORDS)
  readonly #recordedMs = new Float64Array(RECORDS)
  #records = 0
  /** The buffer of the write under way, and one to gather in after it, once it is written. */
  #sent: Buffer | undefined
  #spare: Buffer | undefined
  #timer: NodeJS.Timeout | undefined
  /** sonic-boom has a write under way (between a write and its 'drain'); it may hold `#sent`. */
  #writing = false
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

  /** pino's lines. */
  write (line: string): void {
    if (this.#used + this.#textChars > MAX_HELD_BYTES) return
    if (this.#records > 0) this.#encodeRecords()
    this.#text.push(line)
    this.#textChars += line.length
    // Encoded a batch at a time even while a write is under way, so that the backlog is counted in bytes.
    if (this.#textChars >= BATCH_BYTES) this.#encodeText()
    this.#gathered()
  }

  /** An access line: `line`, logged at `at` (performance.now()), for a request of `ms` ms. */
  record (line: RecordedLine, at: number, ms: number): void {
    if (this.#used > MAX_HELD_BYTES) return
    if (this.#textChars > 0) this.#encodeText()
    const i = this.#records
    this.#recorded[i] = line
    this.#recordedAt[i] = at
    this.#recordedMs[i] = ms
    this.#records = i + 1
    if (i + 1 === RECORDS) this.#encodeRecords()
    this.#gathered()
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
    this.#encode()
    // A write is under way (it holds `#sent`, not `#chunk`): the rest goes after it, as a copy.
    if (this.#used > 0) this.#destination.write(Buffer.from(this.#chunk.subarray(0, this.#used)) as unknown as string)
    this.#used = 0
    try {
      this.#destination.flushSync()
    } catch {
      // Destroyed or closed already (stdout gone): nothing more can be written.
    }
  }

  /** After a line: writes a full batch, or makes sure the lines are written within BATCH_MS. */
  #gathered (): void {
    if (this.#used + this.#textChars >= BATCH_BYTES) this.#drain()
    else if (this.#timer === undefined && !this.#writing) this.#timer = setTimeout(this.#drain, BATCH_MS).unref()
  }

  /** Writes the lines held, unless a write is under way ('drain' then calls again). */
  readonly #drain = (): void => {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer)
      this.#timer = undefined
    }
    if (this.#writing) return
    this.#encode()
    if (this.#used === 0) return
    if (this.#failed !== undefined) {
      this.#used = 0
      return
    }
    const bytes = this.#chunk.subarray(0, this.#used)
    this.#sent = this.#chunk
    this.#chunk = this.#spare ?? Buffer.allocUnsafeSlow(CHUNK_BYTES)
    this.#spare = undefined
    this.#used = 0
    this.#writing = true
    this.#destination.write(bytes as unknown as string)
  }

  #encode (): void {
    if (this.#records > 0) this.#encodeRecords()
    if (this.#textChars > 0) this.#encodeText()
  }

  /** The text lines, joined and encoded after the bytes (one native call for them all). */
  #encodeText (): void {
    const text = this.#text.length === 1 ? this.#text[0] ?? '' : this.#text.join('')
    this.#text = []
    this.#textChars = 0
    // Room for 3 bytes a character (the most UTF-8 takes for one UTF-16 unit), or the exact length.
    const bytes = this.#used + text.length * 3 <= this.#chunk.length ? text.length * 3 : Buffer.byteLength(text)
    if (!this.#room(this.#used + bytes)) return
    this.#used += this.#chunk.write(text, this.#used)
  }

  /** The recorded access lines, put into bytes after the others. */
  #encodeRecords (): void {
    const count = this.#records
    this.#records = 0
    // Where performance.now()'s zero is on the wall clock now: each line gets the time (epoch
    // ms) pino would have given it when it was logged.
    const origin = Date.now() - performance.now()
    for (let i = 0; i < count; i++) {
      const line = this.#recorded[i]
      if (line === undefined) continue
      const prefix = line.prefix(Math.floor(origin + (this.#recordedAt[i] ?? 0)))
      const suffix = line.suffix
      let at = this.#used
      if (!this.#room(at + prefix.length + LATENCY_BYTES + suffix.length)) break
      const chunk = this.#chunk
      chunk.set(prefix, at)
      at = writeLatency(chunk, at + prefix.length, this.#recordedMs[i] ?? 0)
      chunk.set(suffix, at)
      this.#used = at + suffix.length
    }
  }

  /** Whether `#chunk` holds `bytes`, grown if need be; false (the lines are dropped) once the backlog is past its bound. */
  #room (bytes: number): boolean {
    if (bytes <= this.#chunk.length) return true
    if (this.#used > MAX_HELD_BYTES) return false
    const grown = Buffer.allocUnsafeSlow(Math.max(bytes, Math.min(2 * this.#chunk.length, MAX_HELD_BYTES + CHUNK_BYTES)))
    this.#chunk.copy(grown, 0, 0, this.#used)
    this.#chunk = grown
    return true
  }

  /** sonic-boom's 'drain': everything handed to it is written. */
  #written (): void {
    this.#writing = false
    // The buffer written is gathered in again, unless it grew while stdout stalled.
    if (this.#sent?.length === CHUNK_BYTES) this.#spare = this.#sent
    this.#sent = undefined
    if (this.#used + this.#textChars >= BATCH_BYTES || this.#flushed.length > 0) this.#drain()
    if (this.#writing) return
    if (this.#used > 0 || this.#textChars > 0 || this.#records > 0) this.#gathered()
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

/**
 * The access line of one fixed set of fields, written with the latency (ms) of each request;
 * `at`, when given, is the time of the line as performance.now() (saves reading the clock again).
 */
export type AccessLine = (ms: number, at?: number) => void

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
  const copy = pinoLines(logger)
  if (copy === null) return (fields) => { logger.info(fields, 'request') }
  return (fields) => { copy.write(lineHead(fields), fields.ms, lineTail(fields)) }
}

/**
 * accessLog for requests that all have the same fields but the latency (the fast path's hit):
 * the line around the latency is built once. Into the agent's own destination, with pino's
 * default time, the line is recorded (Batched.record) and put into bytes later with others; `at`
 * is the line's time as performance.now() (when the caller has it at hand).
 */
export function accessLine (logger: Logger, fields: Omit<AccessFields, 'ms'>): AccessLine {
  const copy = pinoLines(logger)
  if (copy === null) {
    const { method, route, status, cache } = fields
    return (ms) => { logger.info({ method, route, status, ms, ...(cache === undefined ? {} : { cache }) }, 'request') }
  }
  const { stream } = copy
  const head = lineHead(fields)
  const tail = lineTail(fields)
  if (stream instanceof Batched && copy.epochTime) {
    const line = new RecordedLine(head, tail, copy.bindings)
    return (ms, at = performance.now()) => {
      if (logger.isLevelEnabled('info')) stream.record(line, at, ms)
    }
  }
  return (ms) => { copy.write(head, ms, tail) }
}

/** An access line to be put into bytes later: all of its bytes but the time's and the latency's. */
class RecordedLine {
  readonly suffix: Buffer
  #time = -1
  #bindings: string | undefined
  #prefix = Buffer.alloc(0)

  constructor (private readonly head: string, tail: string, private readonly bindings: () => string) {
    this.suffix = Buffer.from(tail)
  }

  /**
   * The bytes before the latency, for a line logged at `time` (epoch ms): remade when the time
   * or the logger's bindings change (a child made later, or a rebinding, shows, as with pino).
   */
  prefix (time: number): Buffer {
    const bindings = this.bindings()
    if (time !== this.#time || bindings !== this.#bindings) {
      this.#time = time
      this.#bindings = bindings
      this.#prefix = Buffer.from('{"level":30' + timeField(time) + bindings + this.head)
    }
    return this.#prefix
  }
}

// The fields in the order logger.info writes them: method, route, status, ms, cache.
const lineHead = (fields: Omit<AccessFields, 'ms'>): string =>
  ',"method":' + JSON.stringify(fields.method) + ',"route":' + JSON.stringify(fields.route) + ',"status":' + String(fields.status) + ',"ms":'
const lineTail = (fields: Omit<AccessFields, 'ms'>): string =>
  (fields.cache === undefined ? '' : ',"cache":' + JSON.stringify(fields.cache)) + ',"msg":"request"}\n'

/** How the logger's own lines are written: its destination, its bindings, its time field. */
interface PinoLines {
  stream: DestinationStream
  /** Read per line: a child made later (or a rebinding) shows, as with pino. */
  bindings: () => string
  /** The time field is pino's default, `,"time":` and Date.now(). */
  epochTime: boolean
  /** Writes `head`, the latency `ms`, `tail` after the level, time and bindings, when info is enabled. */
  write: (head: string, ms: number, tail: string) => void
}

/** How to write lines as `logger.info` does, after the level; null for a logger whose lines this cannot copy. */
function pinoLines (logger: Logger): PinoLines | null {
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
  const isEpochTime = time === pino.stdTimeFunctions.epochTime
  const timeOf = isEpochTime ? epochTime() : time as () => string
  const bindings = (): string => internals[chindingsSym] as string
  return {
    stream,
    bindings,
    epochTime: isEpochTime,
    write: (head, ms, tail) => {
      if (logger.isLevelEnabled('info')) stream.write('{"level":30' + timeOf() + bindings() + head + latencyText(ms) + tail)
    }
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
      text = timeField(now)
    }
    return text
  }
}

/** pino's default time field (stdTimeFunctions.epochTime) for `ms` since the epoch. */
function timeField (ms: number): string {
  return ',"time":' + String(ms)
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

/**
 * Writes `latencyText(ms)` into `bytes` at `at`, as ASCII, and returns where it ends: the
 * digits written one by one, with no string made for them. Needs 24 bytes of room.
 */
export function writeLatency (bytes: Uint8Array, at: number, ms: number): number {
  const hundredths = Math.round(ms * 100)
  if (hundredths < 0 || hundredths >= 1e9 || hundredths / 100 !== ms) {
    const text = Number.isFinite(ms) ? String(ms) : 'null'
    for (let i = 0; i < text.length; i++) bytes[at++] = text.charCodeAt(i)
    return at
  }
  const whole = Math.floor(hundredths / 100)
  let cents = hundredths - whole * 100
  at = writeDigits(bytes, at, whole)
  if (cents === 0) return at
  bytes[at++] = DOT
  bytes[at++] = ZERO + Math.floor(cents / 10)
  cents %= 10
  if (cents !== 0) bytes[at++] = ZERO + cents
  return at
}

const ZERO = 0x30
const DOT = 0x2e

/** The decimal digits of `n`, a whole number from 0 to 2^31 - 1. */
function writeDigits (bytes: Uint8Array, at: number, n: number): number {
  let end = at + 1
  for (let rest = n; rest >= 10; rest = Math.floor(rest / 10)) end++
  for (let i = end - 1, rest = n; i >= at; i--, rest = Math.floor(rest / 10)) bytes[i] = ZERO + rest % 10
  return end
}

