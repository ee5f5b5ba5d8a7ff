import assert from 'node:assert/strict'
import { connect, type Socket } from 'node:net'
import { after, before, describe, it } from 'node:test'
import fc from 'fast-check'
import { cacheKey } from '../../src/cache/secret-cache.js'
import { Metrics } from '../../src/metrics.js'
import { AllowList } from '../../src/server/allow.js'
import { MAX_HEADER_BYTES, MAX_URL_BYTES } from '../../src/server/limits.js'
import { secretBody } from '../../src/server/schemas.js'
import { VERSION } from '../../src/version.js'
import { DEFAULT_STORE, FIXTURE, SECRET_VALUES, fakeClock, openLocalApp, until, type LocalApp, type LocalAppOptions } from '../support/local-app.js'

/**
 * The fast path (fresh secret hits answered before fastify) must be invisible: two apps over the
 * same store, one with `fastPath: true` and one with `fastPath: false`, get the same raw requests
 * over real connections and must give the same answers, byte for byte (status line, headers but
 * `Date` and `Age`, body), log the same access-log lines and count the same metrics.
 * FAST_PATH_RUNS sets how many generated request sequences the property sends (default 300).
 */
const RUNS = Number(process.env.FAST_PATH_RUNS ?? 300)

/** One token for both apps of a pair, so the bytes sent to each are the same. */
const TOKEN = 'fast-path-token-9Qm2Xv7Lr4Tz8Wk1'
const WRONG_TOKEN = 'fast-path-token-9Qm2Xv7Lr4Tz8Wk0'
const AWS_HEADER = 'X-Aws-Parameters-Secrets-Token'
const VAULT_HEADER = 'X-Vault-Token'

const API_KEY = FIXTURE.stringSecret.name
const DB = FIXTURE.jsonSecret.name
const CERT = FIXTURE.binarySecret.name

// ---------------------------------------------------------------------------------------------
// Raw HTTP/1.x over node:net: the exact bytes go out, and answers are parsed off the stream.

interface RawRequest {
  method: string
  target: string
  /** `HTTP/1.1` unless given. */
  version?: string
  /** In order, names as written; `Host` is added first unless `noHost`. */
  headers: Array<[string, string]>
  body?: string
  noHost?: boolean
}

interface Answer {
  statusLine: string
  status: number
  /** Names lower-cased, in the order received. */
  headers: Array<[string, string]>
  body: Buffer
}

interface Exchanged {
  answers: Answer[]
  /** The server closed the connection (before all answers came, or within the wait after). */
  closed: boolean
  timedOut: boolean
}

function requestBytes (r: RawRequest): Buffer {
  const lines = [`${r.method} ${r.target} ${r.version ?? 'HTTP/1.1'}`]
  if (r.noHost !== true) lines.push('Host: 127.0.0.1')
  for (const [name, value] of r.headers) lines.push(`${name}: ${value}`)
  return Buffer.concat([Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1'), Buffer.from(r.body ?? '', 'latin1')])
}

/** A readable form of a request for failure messages (the token shown as <token>). */
function show (r: RawRequest): string {
  const text = requestBytes(r).toString('latin1').replaceAll(TOKEN, '<token>')
  return JSON.stringify(text.length > 600 ? `${text.slice(0, 400)}…(${text.length} bytes)…${text.slice(-150)}` : text)
}

/** Parses one answer off the front of `buffer`; undefined until it is complete. */
function parseAnswer (buffer: Buffer, head: boolean, ended: boolean): { answer: Answer, used: number } | undefined {
  const end = buffer.indexOf('\r\n\r\n')
  if (end === -1) return undefined
  const [statusLine = '', ...lines] = buffer.subarray(0, end).toString('latin1').split('\r\n')
  const status = Number(statusLine.split(' ')[1])
  const headers = lines.map((line): [string, string] => {
    const colon = line.indexOf(':')
    return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()]
  })
  const start = end + 4
  const header = (name: string): string | undefined => headers.find(([n]) => n === name)?.[1]
  if (status >= 100 && status < 200) {
    // An interim answer: skip it, the real one follows.
    const rest = parseAnswer(buffer.subarray(start), head, ended)
    return rest === undefined ? undefined : { answer: rest.answer, used: start + rest.used }
  }
  if (head || status === 204 || status === 304) return { answer: { statusLine, status, headers, body: Buffer.alloc(0) }, used: start }
  if (header('transfer-encoding')?.toLowerCase() === 'chunked') {
    const chunks: Buffer[] = []
    let at = start
    for (;;) {
      const lineEnd = buffer.indexOf('\r\n', at)
      if (lineEnd === -1) return undefined
      const size = parseInt(buffer.subarray(at, lineEnd).toString('latin1'), 16)
      if (size === 0) {
        const trailerEnd = buffer.indexOf('\r\n\r\n', lineEnd)
        if (trailerEnd === -1 && buffer.length < lineEnd + 4) return undefined
        return { answer: { statusLine, status, headers, body: Buffer.concat(chunks) }, used: (trailerEnd === -1 ? lineEnd : trailerEnd) + 4 }
      }
      if (buffer.length < lineEnd + 2 + size + 2) return undefined
      chunks.push(buffer.subarray(lineEnd + 2, lineEnd + 2 + size))
      at = lineEnd + 2 + size + 2
    }
  }
  const length = header('content-length')
  if (length !== undefined) {
    const n = Number(length)
    if (buffer.length < start + n) return undefined
    return { answer: { statusLine, status, headers, body: buffer.subarray(start, start + n) }, used: start + n }
  }
  // No length: the body runs to the end of the connection.
  if (!ended) return undefined
  return { answer: { statusLine, status, headers, body: buffer.subarray(start) }, used: buffer.length }
}

/** One client connection, kept open across `send`s until `close()`. */
class Connection {
  readonly #socket: Socket
  #buffer = Buffer.alloc(0)
  #ended = false
  #wake: (() => void) | undefined

  private constructor (socket: Socket) {
    this.#socket = socket
    socket.on('data', (chunk: Buffer) => { this.#buffer = Buffer.concat([this.#buffer, chunk]); this.#wake?.() })
    const ended = (): void => { this.#ended = true; this.#wake?.() }
    socket.on('end', ended)
    socket.on('close', ended)
    // A write after the server closed (EPIPE, ECONNRESET) is the same as the close itself.
    socket.on('error', ended)
  }

  static async open (port: number): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port })
      socket.once('connect', () => { socket.removeListener('error', reject); resolve(new Connection(socket)) })
      socket.once('error', reject)
    })
  }

  get ended (): boolean { return this.#ended }

  /**
   * Sends the requests one after another (or, with `written`, the rest of the first one after
   * its first `written` bytes went out by `write()`) (each once the previous answer is in) or all at once
   * (pipelined), and collects the answers until there are as many or the server closes.
   * `waitCloseMs`: then wait that long for the server to close.
   */
  async send (requests: RawRequest[], mode: 'sequential' | 'pipelined', options: { timeoutMs?: number, waitCloseMs?: number, written?: number } = {}): Promise<Exchanged> {
    const answers: Answer[] = []
    const deadline = Date.now() + (options.timeoutMs ?? 5000)
    let timedOut = false
    const write = (bytes: Buffer): void => { if (!this.#ended) this.#socket.write(bytes) }
    if (mode === 'pipelined') write(Buffer.concat(requests.map(requestBytes)).subarray(options.written ?? 0))
    else if (requests[0] !== undefined) write(requestBytes(requests[0]).subarray(options.written ?? 0))
    while (answers.length < requests.length) {
      const parsed = parseAnswer(this.#buffer, requests[answers.length]?.method === 'HEAD', this.#ended)
      if (parsed !== undefined) {
        answers.push(parsed.answer)
        this.#buffer = this.#buffer.subarray(parsed.used)
        const next = requests[answers.length]
        if (mode === 'sequential' && next !== undefined) write(requestBytes(next))
        continue
      }
      if (this.#ended) break
      if (!await this.#waitForData(deadline)) { timedOut = true; break }
    }
    if (options.waitCloseMs !== undefined && !this.#ended) await this.#waitForData(Date.now() + options.waitCloseMs, true)
    return { answers, closed: this.#ended, timedOut }
  }

  /** Resolves true on new data or the end, false at `deadline`. */
  async #waitForData (deadline: number, untilEnd = false): Promise<boolean> {
    for (;;) {
      const before = this.#buffer.length
      const woke = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => { this.#wake = undefined; resolve(false) }, Math.max(0, deadline - Date.now()))
        this.#wake = () => { clearTimeout(timer); this.#wake = undefined; resolve(true) }
      })
      if (!woke) return false
      if (!untilEnd || this.#ended) return true
      if (this.#buffer.length === before) continue
    }
  }

  /** Writes bytes as they are (part of a request, to finish later). */
  write (bytes: Buffer | string): void {
    this.#socket.write(bytes)
  }

  close (): void {
    this.#socket.destroy()
  }
}

async function exchange (port: number, requests: RawRequest[], mode: 'sequential' | 'pipelined' = 'sequential', options: { waitCloseMs?: number } = {}): Promise<Exchanged> {
  const connection = await Connection.open(port)
  try {
    return await connection.send(requests, mode, options)
  } finally {
    connection.close()
  }
}

// ---------------------------------------------------------------------------------------------
// Two apps over one store.

interface Side {
  h: LocalApp
  port: number
  metrics: Metrics
  /** Requests fastify itself answered (its onResponse hook ran). */
  fastify: { count: number }
}

interface Pair {
  fast: Side
  plain: Side
  close (): Promise<void>
}

async function openSide (options: LocalAppOptions, fastPath: boolean): Promise<Side> {
  const metrics = new Metrics(VERSION, { processMetrics: false })
  const h = await openLocalApp({ ...options, fastPath, metrics, tokenString: TOKEN })
  const fastify = { count: 0 }
  h.app.addHook('onResponse', (_request, _reply, done) => { fastify.count += 1; done() })
  try {
    await h.app.listen({ host: '127.0.0.1', port: 0 })
  } catch (error) {
    await h.close()
    throw error
  }
  const address = h.app.server.address()
  assert.ok(typeof address === 'object' && address !== null)
  return { h, port: address.port, metrics, fastify }
}

async function openPair (options: LocalAppOptions = {}): Promise<Pair> {
  const fast = await openSide(options, true)
  let plain: Side
  try {
    plain = await openSide(options, false)
  } catch (error) {
    await fast.h.close()
    throw error
  }
  return { fast, plain, close: async () => { await Promise.all([fast.h.close(), plain.h.close()]) } }
}

/** The answer in a form to compare: header names lower-cased and sorted, `Date` and `Age` left out. */
function comparable (answer: Answer): { statusLine: string, headers: string[], body: string } {
  return {
    statusLine: answer.statusLine,
    headers: answer.headers.filter(([name]) => name !== 'date' && name !== 'age').map(([name, value]) => `${name}: ${value}`).sort(),
    // latin1 maps every byte to one character, so unequal bytes never compare equal.
    body: answer.body.toString('latin1')
  }
}

function headerOf (answer: Answer, name: string): string | undefined {
  return answer.headers.find(([n]) => n === name)?.[1]
}

/**
 * Asserts both apps answered the same: as many answers, same status lines, headers and bodies,
 * `Age` present in both or neither (a whole number of seconds; equal when `exactAge`, for apps
 * on one fake clock), and the connection closed in both or neither.
 */
function assertSame (fast: Exchanged, plain: Exchanged, requests: RawRequest[], options: { exactAge?: boolean, compareClosed?: boolean } = {}): void {
  const what = (): string => requests.map(show).join('\n  then ')
  assert.equal(fast.timedOut, false, `the fast-path app did not answer in time:\n  ${what()}`)
  assert.equal(plain.timedOut, false, `the fastify app did not answer in time:\n  ${what()}`)
  assert.equal(fast.answers.length, plain.answers.length, `number of answers differs:\n  ${what()}`)
  for (let i = 0; i < fast.answers.length; i++) {
    const f = fast.answers[i]!
    const p = plain.answers[i]!
    assert.deepEqual(comparable(f), comparable(p), `answer ${i + 1} differs (actual: fast path, expected: fastify) for:\n  ${what()}`)
    const ageF = headerOf(f, 'age')
    const ageP = headerOf(p, 'age')
    assert.equal(ageF === undefined, ageP === undefined, `Age in one answer only (${String(ageF)} / ${String(ageP)}) for:\n  ${what()}`)
    if (ageF !== undefined && ageP !== undefined) {
      assert.match(ageF, /^(0|[1-9][0-9]*)$/, `fast path Age ${ageF}`)
      assert.match(ageP, /^(0|[1-9][0-9]*)$/, `fastify Age ${ageP}`)
      if (options.exactAge === true) assert.equal(ageF, ageP, `Age differs for:\n  ${what()}`)
    }
    assert.equal(headerOf(f, 'date') === undefined, headerOf(p, 'date') === undefined, `Date in one answer only for:\n  ${what()}`)
  }
  if (options.compareClosed !== false) assert.equal(fast.closed, plain.closed, `the connection was closed by ${fast.closed ? 'the fast-path app' : 'the fastify app'} only:\n  ${what()}`)
}

/** Sends the same requests to both apps of `pair` (the fast-path app first) and compares. */
async function both (pair: Pair, requests: RawRequest[], mode: 'sequential' | 'pipelined' = 'sequential', options: { exactAge?: boolean, waitCloseMs?: number } = {}): Promise<{ fast: Exchanged, plain: Exchanged }> {
  const fast = await exchange(pair.fast.port, requests, mode, options)
  const plain = await exchange(pair.plain.port, requests, mode, options)
  // Without a wait for the close, whether it was seen yet is a race: compare it only when waited for.
  assertSame(fast, plain, requests, { ...options, compareClosed: options.waitCloseMs !== undefined || fast.answers.length < requests.length || plain.answers.length < requests.length })
  return { fast, plain }
}

// Request builders.
const withToken = (extra: Array<[string, string]> = []): Array<[string, string]> => [[AWS_HEADER, TOKEN], ...extra]
const get = (target: string, headers: Array<[string, string]> = withToken(), more: Partial<RawRequest> = {}): RawRequest => ({ method: 'GET', target, headers, ...more })
const getSecret = (id: string, headers?: Array<[string, string]>): RawRequest => get(`/secretsmanager/get?secretId=${id}`, headers)

/** Access-log lines (`msg: "request"`) of a log, parsed. */
function accessLines (lines: string[]): Array<Record<string, unknown>> {
  return lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'request')
}

/** An access-log line without what legitimately differs (time, latency, pid). */
function accessKey (line: Record<string, unknown>): string {
  const { time: _time, ms: _ms, pid: _pid, hostname: _hostname, ...rest } = line
  return JSON.stringify(Object.fromEntries(Object.entries(rest).sort(([a], [b]) => a.localeCompare(b))))
}

/** Asserts two lists hold the same items (in any order), naming only the ones that differ. */
function assertSameItems (fast: string[], plain: string[], what: string): void {
  const count = (list: string[]): Map<string, number> => list.reduce((m, k) => m.set(k, (m.get(k) ?? 0) + 1), new Map<string, number>())
  const f = count(fast)
  const p = count(plain)
  const differences: string[] = []
  for (const key of new Set([...f.keys(), ...p.keys()])) {
    if (f.get(key) !== p.get(key)) differences.push(`${f.get(key) ?? 0} with the fast path, ${p.get(key) ?? 0} without: ${key}`)
  }
  assert.ok(differences.length === 0, `${what} differ:\n  ${differences.slice(0, 20).join('\n  ')}`)
}

async function samples (metrics: Metrics, name: string): Promise<string[]> {
  const metric = metrics.registry.getSingleMetric(name)
  assert.ok(metric !== undefined, `no metric ${name}`)
  const { values } = await metric.get()
  return values.map((v) => `${(v as { metricName?: string }).metricName ?? name}${JSON.stringify(Object.entries(v.labels).sort(([a], [b]) => a.localeCompare(b)))} ${v.value}`).sort()
}

/** The samples of both registries that must agree: request counts, latency counts, cache events, auth failures. */
async function assertSameMetrics (pair: Pair): Promise<void> {
  for (const name of ['secrets_agent_http_requests_total', 'secrets_agent_cache_hits_total', 'secrets_agent_cache_misses_total', 'secrets_agent_cache_stale_total', 'secrets_agent_auth_failures_total', 'secrets_agent_cache_refreshes_total']) {
    assertSameItems(await samples(pair.fast.metrics, name), await samples(pair.plain.metrics, name), name)
  }
  // The latency histogram: the same observations per label set (their values are timings).
  const counts = async (m: Metrics): Promise<string[]> => (await samples(m, 'secrets_agent_http_request_duration_seconds')).filter((s) => s.startsWith('secrets_agent_http_request_duration_seconds_count'))
  assertSameItems(await counts(pair.fast.metrics), await counts(pair.plain.metrics), 'secrets_agent_http_request_duration_seconds_count')
}

/** The ARN the store gives a secret (read over `inject`, which never takes the fast path). */
async function arnOf (h: LocalApp, id: string): Promise<string> {
  const response = await h.app.inject({ method: 'GET', url: `/secretsmanager/get?secretId=${encodeURIComponent(id)}&refreshNow=true`, headers: { [AWS_HEADER]: TOKEN } })
  return (JSON.parse(response.body) as { ARN: string }).ARN
}

// ---------------------------------------------------------------------------------------------

describe('fast path: same answers as fastify over real HTTP', () => {
  let pair: Pair
  before(async () => { pair = await openPair({ logLevel: 'debug' }) })
  after(async () => { await pair?.close() })

  it('serves warm hits itself: fastify never sees them, and neither does the provider', async () => {
    await both(pair, [getSecret(API_KEY)])
    const fastBefore = pair.fast.fastify.count
    const plainBefore = pair.plain.fastify.count
    const calls = pair.fast.h.countSecretCalls()
    const hits = Array.from({ length: 5 }, () => getSecret(API_KEY))
    const { fast } = await both(pair, hits)
    for (const answer of fast.answers) {
      assert.equal(answer.status, 200)
      assert.equal(headerOf(answer, 'x-cache'), 'HIT')
      assert.equal(headerOf(answer, 'cache-control'), 'no-store')
      assert.equal(JSON.parse(answer.body.toString('utf8')).SecretString, FIXTURE.stringSecret.value)
    }
    assert.equal(pair.fast.fastify.count - fastBefore, 0, 'warm hits on the fast-path app reached fastify: the fast path is not taken, and this whole file compares fastify with itself')
    assert.equal(pair.plain.fastify.count - plainBefore, hits.length)
    assert.equal(calls.count, 0, 'a warm hit called the provider')
  })

  it('answers the same after more distinct URLs than it remembers, and remembers no refusal wrongly', async () => {
    await both(pair, [getSecret(API_KEY)])
    // 1,100 URLs it must leave to fastify (an extra parameter): more than the 1,024 it remembers.
    const others = Array.from({ length: 1100 }, (_, i) => getSecret(`${API_KEY}&n=${i}`))
    const fastBefore = pair.fast.fastify.count
    const { fast } = await both(pair, [...others, getSecret(API_KEY), getSecret(API_KEY), ...others.slice(0, 3)])
    assert.equal(pair.fast.fastify.count - fastBefore, others.length + 3, 'only the two plain hits are the fast path\'s')
    assert.deepEqual(fast.answers.slice(others.length, others.length + 2).map((a) => [a.status, headerOf(a, 'x-cache')]), [[200, 'HIT'], [200, 'HIT']])
  })

  it('cold misses, warm hits and unknown secrets, for string, JSON and binary secrets', async () => {
    for (const id of [DB, CERT, 'app/no-such-secret', encodeURIComponent(API_KEY)]) {
      const { fast } = await both(pair, [getSecret(id), getSecret(id), getSecret(id)])
      if (id === 'app/no-such-secret') {
        assert.deepEqual(fast.answers.map((a) => a.status), [404, 404, 404])
      } else {
        assert.deepEqual(fast.answers.map((a) => headerOf(a, 'x-cache')), id === DB || id === CERT ? ['MISS', 'HIT', 'HIT'] : ['HIT', 'HIT', 'HIT'])
      }
    }
    const { fast } = await both(pair, [getSecret(CERT)])
    assert.equal(JSON.parse(fast.answers[0]!.body.toString('utf8')).SecretBinary, FIXTURE.binarySecret.bytes.toString('base64'))
  })

  it('the token: missing, wrong, in X-Vault-Token, odd case, given twice', async () => {
    await both(pair, [getSecret(API_KEY)])
    const cases: Array<[Array<[string, string]>, number]> = [
      [[], 401],
      [[[AWS_HEADER, WRONG_TOKEN]], 401],
      [[[AWS_HEADER, '']], 401],
      [[[AWS_HEADER, TOKEN.slice(0, -1)]], 401],
      [[[AWS_HEADER, TOKEN + 'x']], 401],
      [[[AWS_HEADER, ` ${TOKEN}\t`]], 200],
      [[[VAULT_HEADER, TOKEN]], 200],
      [[[VAULT_HEADER, WRONG_TOKEN]], 401],
      [[['x-aws-PARAMETERS-secrets-TOKEN', TOKEN]], 200],
      [[['X-VAULT-TOKEN', TOKEN]], 200],
      // A header sent twice counts by its first value, as in the Secrets Manager Agent.
      [[[AWS_HEADER, TOKEN], [AWS_HEADER, TOKEN]], 200],
      [[[AWS_HEADER, TOKEN], ['x-aws-parameters-secrets-token', TOKEN]], 200],
      [[[AWS_HEADER, TOKEN], [AWS_HEADER, WRONG_TOKEN]], 200],
      [[[AWS_HEADER, WRONG_TOKEN], [AWS_HEADER, TOKEN]], 401],
      [[[AWS_HEADER, WRONG_TOKEN], [VAULT_HEADER, TOKEN]], 200],
      [[[AWS_HEADER, TOKEN], [VAULT_HEADER, WRONG_TOKEN]], 200],
      [[[AWS_HEADER + '-2', TOKEN]], 401],
      [[['Authorization', `Bearer ${TOKEN}`]], 401],
      [[['X-Aws-Parameters-Secrets-Token ', TOKEN]], 400]
    ]
    for (const [headers, status] of cases) {
      const request = getSecret(API_KEY, headers)
      const { fast } = await both(pair, [request])
      if (fast.answers[0] !== undefined) assert.equal(fast.answers[0].status, status, show(request))
      if (status === 401) {
        for (const answer of fast.answers) assert.ok(!answer.body.toString('latin1').includes(FIXTURE.stringSecret.value), 'a secret without the token')
      }
    }
    // The token in the query string is not a token.
    await both(pair, [get(`/secretsmanager/get?secretId=${API_KEY}&token=${TOKEN}`, [])])
  })

  it('X-Forwarded-For and Forwarded, with the valid token', async () => {
    await both(pair, [getSecret(API_KEY)])
    for (const extra of [[['X-Forwarded-For', '10.0.0.1']], [['x-forwarded-for', '']], [['X-FORWARDED-FOR', '127.0.0.1, 10.0.0.2']], [['Forwarded', 'for=10.0.0.1']], [['forwarded', '']], [['FoRwArDeD', 'for=127.0.0.1']], [['X-Forwarded-Host', 'example.com']], [['X-Real-IP', '10.0.0.1']]] as Array<Array<[string, string]>>) {
      const request = getSecret(API_KEY, withToken(extra))
      const { fast } = await both(pair, [request])
      const forwarded = /^(x-forwarded-for|forwarded)$/i.test(extra[0]![0])
      assert.equal(fast.answers[0]?.status, forwarded ? 400 : 200, show(request))
    }
  })

  it('query shapes: extra, repeated, empty and encoded parameters', async () => {
    await both(pair, [getSecret(API_KEY), getSecret(DB), getSecret(CERT)])
    const long = 'x'.repeat(2049)
    const targets = [
      `/secretsmanager/get?secretId=${API_KEY}&versionStage=AWSCURRENT`,
      `/secretsmanager/get?secretId=${API_KEY}&versionStage=AWSPREVIOUS`,
      `/secretsmanager/get?secretId=${DB}&versionStage=AWSPREVIOUS`,
      `/secretsmanager/get?secretId=${DB}&versionId=${FIXTURE.jsonSecret.current.id}`,
      `/secretsmanager/get?secretId=${API_KEY}&refreshNow=true`,
      `/secretsmanager/get?secretId=${API_KEY}&refreshNow=false`,
      `/secretsmanager/get?secretId=${API_KEY}&refreshNow=maybe`,
      `/secretsmanager/get?secretId=${DB}&field=password`,
      `/secretsmanager/get?secretId=${DB}&field=nope`,
      `/secretsmanager/get?secretId=${API_KEY}&unknown=1`,
      `/secretsmanager/get?unknown=1&secretId=${API_KEY}`,
      `/secretsmanager/get?secretId=${API_KEY}&secretId=${API_KEY}`,
      `/secretsmanager/get?secretId=${API_KEY}&secretId=${DB}`,
      `/secretsmanager/get?secretId=${API_KEY}&secretId=`,
      `/secretsmanager/get?secretId=&secretId=${API_KEY}`,
      `/secretsmanager/get?secretId=${API_KEY}&secretId`,
      '/secretsmanager/get?secretId=',
      '/secretsmanager/get?secretId',
      '/secretsmanager/get?secretId=&',
      '/secretsmanager/get?',
      '/secretsmanager/get',
      `/secretsmanager/get?secretid=${API_KEY}`,
      `/secretsmanager/get?SecretId=${API_KEY}`,
      `/secretsmanager/get?secret%49d=${API_KEY}`,
      `/secretsmanager/get?%73ecretId=${API_KEY}`,
      `/secretsmanager/get?secretId=${API_KEY}&`,
      `/secretsmanager/get?secretId=${API_KEY}&&`,
      `/secretsmanager/get?&secretId=${API_KEY}`,
      `/secretsmanager/get??secretId=${API_KEY}`,
      `/secretsmanager/get?secretId=${API_KEY}?`,
      `/secretsmanager/get?secretId=${API_KEY}=`,
      `/secretsmanager/get?secretId==${API_KEY}`,
      `/secretsmanager/get?secretId=${API_KEY}#fragment`,
      `/secretsmanager/get?secretId=${API_KEY}#`,
      `/secretsmanager/get?secretId=${API_KEY};x=1`,
      `/secretsmanager/get?secretId=${API_KEY}&=x`,
      `/secretsmanager/get?=x&secretId=${API_KEY}`,
      `/secretsmanager/get?secretId=${encodeURIComponent(API_KEY)}`,
      '/secretsmanager/get?secretId=app%2fapi-key',
      '/secretsmanager/get?secretId=%61%70%70%2F%61%70%69%2D%6B%65%79',
      '/secretsmanager/get?secretId=app/api%2Dkey',
      `/secretsmanager/get?secretId=${API_KEY}%20`,
      `/secretsmanager/get?secretId=%20${API_KEY}`,
      `/secretsmanager/get?secretId=${API_KEY}+`,
      `/secretsmanager/get?secretId=+${API_KEY}`,
      '/secretsmanager/get?secretId=app+api-key',
      '/secretsmanager/get?secretId=app%2Bapi-key',
      `/secretsmanager/get?secretId=${API_KEY}%00`,
      `/secretsmanager/get?secretId=${API_KEY}%0A`,
      `/secretsmanager/get?secretId=${API_KEY}%7F`,
      `/secretsmanager/get?secretId=${API_KEY}%zz`,
      `/secretsmanager/get?secretId=${API_KEY}%`,
      `/secretsmanager/get?secretId=${API_KEY}%2`,
      `/secretsmanager/get?secretId=${API_KEY}%FF`,
      `/secretsmanager/get?secretId=${API_KEY}%C3%A9`,
      '/secretsmanager/get?secretId=%',
      '/secretsmanager/get?secretId=%zz',
      `/secretsmanager/get?secretId=${long}`,
      `/secretsmanager/get?secretId=${'x'.repeat(2048)}`,
      `/secretsmanager/get?secretId=${'%C3%A9'.repeat(1024)}`,
      `/secretsmanager/get?secretId=${'%C3%A9'.repeat(1025)}`,
      `/secretsmanager/get?secretId=${API_KEY}&versionStage=${long}`
    ]
    for (const target of targets) {
      // Twice: the first may fill the cache for the second.
      await both(pair, [get(target), get(target)])
    }
    // And without the token: 401 whatever the query.
    for (const target of targets) {
      const { fast } = await both(pair, [get(target, [])])
      if (fast.answers[0] !== undefined) assert.ok([400, 401].includes(fast.answers[0].status), target)
    }
  })

  it('ARNs, and the /v1/ form filling the cache the fast path reads', async () => {
    const arn = await arnOf(pair.plain.h, API_KEY)
    assert.equal(arn, await arnOf(pair.fast.h, API_KEY))
    const partial = arn.slice(0, -7)
    for (const id of [arn, partial, encodeURIComponent(arn), partial + '-XXXXXX']) await both(pair, [getSecret(id), getSecret(id)])
    for (const target of ['/v1/app/db/credentials', '/v1/app%2Fdb%2Fcredentials', '/v1/app/db/credentials?versionStage=AWSPREVIOUS', '/v1/app/db/credentials?secretId=x', '/v1/', '/v1', `/v1/${arn}`]) {
      await both(pair, [get(target), get(target)])
    }
    // Filled by /v1/, read by /secretsmanager/get: a hit.
    await both(pair, [get('/v1/app/new-through-v1'), getSecret('app/new-through-v1')])
  })

  it('methods and path variants', async () => {
    await both(pair, [getSecret(API_KEY)])
    const q = `?secretId=${API_KEY}`
    for (const method of ['HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'get', 'TRACE']) {
      const request: RawRequest = { method, target: `/secretsmanager/get${q}`, headers: withToken(method === 'GET' || method === 'HEAD' ? [] : [['Content-Length', '0']]) }
      await both(pair, [request])
    }
    await both(pair, [{ method: 'HEAD', target: `/secretsmanager/get${q}`, headers: withToken() }, getSecret(API_KEY)], 'pipelined')
    for (const path of ['/secretsmanager/get/', '/secretsmanager//get', '/secretsmanager/GET', '/SECRETSMANAGER/get', '//secretsmanager/get', '/secretsmanager/get/.', '/secretsmanager/./get', '/secretsmanager/x/../get', '/secretsmanager/get%2F', '/secretsmanager%2Fget', '/secretsmanager/get;', '/secretsmanager/get.json', 'http://127.0.0.1/secretsmanager/get', 'http://localhost/secretsmanager/get', '/secretsmanager/batch-get', '/ping']) {
      await both(pair, [get(path + q), get(path + q)])
    }
    await both(pair, [get('*'), get('/ping', [])])
  })

  it('limits: URLs around 64 KiB, headers around 16 KiB, ids around 2048 bytes', async () => {
    await both(pair, [getSecret(API_KEY)])
    const base = `/secretsmanager/get?secretId=${API_KEY}&pad=`
    for (const size of [MAX_URL_BYTES - 1, MAX_URL_BYTES, MAX_URL_BYTES + 1]) {
      await both(pair, [get(base + 'p'.repeat(size - base.length))])
    }
    const idBase = '/secretsmanager/get?secretId='
    await both(pair, [get(idBase + 'i'.repeat(MAX_URL_BYTES - idBase.length)), get(idBase + 'i'.repeat(MAX_URL_BYTES + 1 - idBase.length))])
    // The header limit counts each raw name and value plus 2: find the padding that lands on it.
    const counted = (headers: Array<[string, string]>): number => [['Host', '127.0.0.1'] as [string, string], ...headers].reduce((n, [k, v]) => n + k.length + v.length + 4, 0)
    for (const over of [-1, 0, 1]) {
      const headers = withToken([['X-Pad', '']])
      headers[1] = ['X-Pad', 'p'.repeat(MAX_HEADER_BYTES + over - counted(headers))]
      assert.equal(counted(headers), MAX_HEADER_BYTES + over)
      const { fast } = await both(pair, [getSecret(API_KEY, headers)])
      assert.equal(fast.answers[0]?.status, over > 0 ? 431 : 200)
    }
    const many = withToken(Array.from({ length: 600 }, (_, i): [string, string] => [`X-H${i}`, 'v'.repeat(20)]))
    await both(pair, [getSecret(API_KEY, many)])
  })

  it('HTTP/1.0, keep-alive, pipelining and Connection: close', async () => {
    await both(pair, [getSecret(API_KEY), getSecret(DB)])
    const hit = getSecret(API_KEY)
    const v10 = (headers: Array<[string, string]>): RawRequest => ({ ...getSecret(API_KEY, headers), version: 'HTTP/1.0' })
    await both(pair, [v10(withToken())], 'sequential', { waitCloseMs: 1000 })
    await both(pair, [v10(withToken([['Connection', 'keep-alive']])), v10(withToken([['Connection', 'keep-alive']])), v10(withToken())], 'sequential', { waitCloseMs: 1000 })
    await both(pair, [{ ...v10(withToken()), noHost: true }], 'sequential', { waitCloseMs: 1000 })
    await both(pair, [{ ...hit, noHost: true }], 'sequential', { waitCloseMs: 1000 })

    const mixed = [hit, getSecret(DB), getSecret('app/none'), getSecret(API_KEY, []), hit, get(`/secretsmanager/get?secretId=${API_KEY}&refreshNow=true`), hit, getSecret(API_KEY, withToken([['X-Forwarded-For', '1.2.3.4']])), hit]
    const sequential = await both(pair, mixed, 'sequential')
    assert.equal(sequential.fast.answers.length, mixed.length)
    const pipelined = await both(pair, mixed, 'pipelined')
    assert.equal(pipelined.fast.answers.length, mixed.length)
    await both(pair, Array.from({ length: 20 }, () => hit), 'pipelined')

    for (const close of ['close', 'Close', 'CLOSE', 'keep-alive, close']) {
      const closing = getSecret(API_KEY, withToken([['Connection', close]]))
      const { fast } = await both(pair, [hit, closing], 'pipelined', { waitCloseMs: 1000 })
      assert.equal(fast.closed, true)
      // (Pipelining past a closing request is a race of the client's: the server's close may
      // reset the connection before the answers are read. One by one, it is not.)
      const sequential = await both(pair, [hit, closing, hit], 'sequential', { waitCloseMs: 1000 })
      assert.equal(sequential.fast.answers.length, 2, 'nothing after Connection: close')
    }
    // A GET carrying a body: the body must not be read as the next request.
    const withBody = (body: string): RawRequest => ({ ...hit, headers: withToken([['Content-Length', String(body.length)]]), body })
    await both(pair, [withBody('x'), hit], 'pipelined')
    await both(pair, [withBody(`GET /secretsmanager/get?secretId=${DB} HTTP/1.1\r\nHost: x\r\n${AWS_HEADER}: ${TOKEN}\r\n\r\n`), hit], 'pipelined')
    await both(pair, [{ ...hit, headers: withToken([['Transfer-Encoding', 'chunked']]), body: '3\r\nabc\r\n0\r\n\r\n' }, hit], 'pipelined')
    await both(pair, [{ ...hit, headers: withToken([['Expect', '100-continue']]) }, hit], 'sequential')
    await both(pair, [{ ...hit, headers: withToken([['Connection', 'Upgrade'], ['Upgrade', 'websocket']]) }], 'sequential', { waitCloseMs: 200 })
    await both(pair, [{ ...hit, headers: withToken([['Connection', 'Upgrade'], ['Upgrade', 'h2c'], ['HTTP2-Settings', 'AAMAAABkAAQAAP__']]) }], 'sequential', { waitCloseMs: 200 })
  })

  it('keeps an idle kept-alive connection usable after hits and errors', async () => {
    await both(pair, [getSecret(API_KEY)])
    const answers: Exchanged[][] = [[], []]
    for (const [i, side] of [pair.fast, pair.plain].entries()) {
      const connection = await Connection.open(side.port)
      try {
        answers[i]!.push(await connection.send([getSecret(API_KEY)], 'sequential'))
        await new Promise((resolve) => setTimeout(resolve, 50))
        answers[i]!.push(await connection.send([getSecret(API_KEY, []), getSecret(API_KEY)], 'pipelined'))
        answers[i]!.push(await connection.send([getSecret(CERT), getSecret(API_KEY)], 'sequential'))
      } finally {
        connection.close()
      }
    }
    for (let k = 0; k < 3; k++) assertSame(answers[0]![k]!, answers[1]![k]!, [getSecret(API_KEY)], { compareClosed: false })
  })

  it('warm hits log the same access-log lines and count the same metrics, with no id, value or token', async () => {
    const ids = [API_KEY, DB, CERT]
    await both(pair, ids.map((id) => getSecret(id)))
    const startFast = pair.fast.h.logs().length
    const startPlain = pair.plain.h.logs().length
    const hitsBefore = [await samples(pair.fast.metrics, 'secrets_agent_http_requests_total'), await samples(pair.plain.metrics, 'secrets_agent_http_requests_total')]
    const N = 30
    const sequence = Array.from({ length: N }, (_, i) => getSecret(ids[i % ids.length]!))
    const { fast } = await both(pair, sequence, 'sequential')
    assert.ok(fast.answers.every((a) => a.status === 200 && headerOf(a, 'x-cache') === 'HIT'))
    const fastLines = pair.fast.h.logs().slice(startFast)
    const plainLines = pair.plain.h.logs().slice(startPlain)
    const fastAccess = accessLines(fastLines)
    const plainAccess = accessLines(plainLines)
    assert.equal(fastAccess.length, N, 'one access-log line per request')
    assert.equal(plainAccess.length, N)
    for (const line of fastAccess) {
      assert.deepEqual(Object.keys(line).sort(), Object.keys(plainAccess[0]!).sort())
      assert.equal(line.msg, 'request')
      assert.equal(line.method, 'GET')
      assert.equal(line.route, '/secretsmanager/get')
      assert.equal(line.status, 200)
      assert.equal(line.cache, 'HIT')
      assert.equal(typeof line.ms, 'number')
      assert.ok(Number.isFinite(line.ms) && (line.ms as number) >= 0)
    }
    assertSameItems(fastAccess.map(accessKey), plainAccess.map(accessKey), 'access-log lines')
    // Nothing logged during the hits names a secret, a value or the token.
    const forbidden = [...ids, ...SECRET_VALUES, TOKEN, 'secretId']
    for (const line of fastLines) for (const word of forbidden) assert.ok(!line.includes(word), `a log line of a fast-path hit holds ${JSON.stringify(word)}: ${line}`)
    assert.equal(fastLines.length, plainLines.length, 'the same number of lines (no extra debug lines)')

    const hitsAfter = [await samples(pair.fast.metrics, 'secrets_agent_http_requests_total'), await samples(pair.plain.metrics, 'secrets_agent_http_requests_total')]
    assert.deepEqual(hitsBefore[0], hitsBefore[1])
    assert.deepEqual(hitsAfter[0], hitsAfter[1])
    assert.notDeepEqual(hitsAfter[0], hitsBefore[0], 'the hits were counted')
    await assertSameMetrics(pair)
  })

  it('over the whole run, the same access-log lines and metrics in both apps', async () => {
    assertSameItems(accessLines(pair.fast.h.logs()).map(accessKey), accessLines(pair.plain.h.logs()).map(accessKey), 'access-log lines')
    await assertSameMetrics(pair)
    for (const line of pair.fast.h.logs()) assert.ok(!line.includes(TOKEN), 'the token was logged')
  })

  it('after a store edit the next read is a MISS with the new value, then a HIT', async () => {
    await both(pair, [getSecret(API_KEY), getSecret(API_KEY)])
    const changed = [pair.fast.h.nextChange(3000), pair.plain.h.nextChange(3000)]
    const text = DEFAULT_STORE.replace(FIXTURE.stringSecret.value, 'edited-api-key-Hq4')
    await Promise.all([pair.fast.h.replaceStore(text), pair.plain.h.replaceStore(text)])
    await Promise.all(changed)
    const { fast } = await both(pair, [getSecret(API_KEY), getSecret(API_KEY)])
    assert.deepEqual(fast.answers.map((a) => headerOf(a, 'x-cache')), ['MISS', 'HIT'])
    assert.equal(JSON.parse(fast.answers[0]!.body.toString('utf8')).SecretString, 'edited-api-key-Hq4')
  })
})

describe('fast path: the allow-list', () => {
  let pair: Pair
  before(async () => { pair = await openPair({ allow: new AllowList({ secrets: ['app/api-key', 'app/db/*'] }), logLevel: 'info' }) })
  after(async () => { await pair?.close() })

  it('refuses ids the list refuses, even when the cache holds them', async () => {
    const { arn } = await pair.plain.h.provider.getSecret({ secretId: CERT })
    // The API never caches a refused id: put one there directly, as a cache shared with an
    // earlier allow-list would hold it.
    for (const side of [pair.fast, pair.plain]) {
      const body = secretBody(await side.h.provider.getSecret({ secretId: CERT }))
      for (const id of [CERT, arn, arn.slice(0, -7)]) side.h.cache.set(cacheKey('secret', id), { body, value: null }, 300_000)
    }
    for (const id of [CERT, arn, arn.slice(0, -7), encodeURIComponent(CERT)]) {
      const { fast } = await both(pair, [getSecret(id), getSecret(id)])
      for (const answer of fast.answers) {
        assert.equal(answer.status, 403, id)
        assert.ok(!answer.body.toString('latin1').includes(FIXTURE.binarySecret.bytes.toString('base64')))
      }
    }
    const { fast } = await both(pair, [getSecret(API_KEY), getSecret(API_KEY), getSecret(DB), getSecret(DB), getSecret('app/dbx'), getSecret('app/dbx')])
    assert.deepEqual(fast.answers.map((a) => a.status), [200, 200, 200, 200, 403, 403])
    await assertSameMetrics(pair)
    assertSameItems(accessLines(pair.fast.h.logs()).map(accessKey), accessLines(pair.plain.h.logs()).map(accessKey), 'access-log lines')
    // The refusal warning (the one line that names an id) is logged by both.
    const refusals = (side: Side): number => side.h.logs().filter((l) => l.includes('refused by the allow-list')).length
    assert.equal(refusals(pair.fast), refusals(pair.plain))
    assert.ok(refusals(pair.fast) > 0)
  })
})

describe('fast path: the connection cap', () => {
  let pair: Pair
  before(async () => { pair = await openPair({ maxConnections: 1, logLevel: 'info' }) })
  after(async () => { await pair?.close() })

  it('answers 429 on a connection over the cap, even for a warm hit', async () => {
    const results: Exchanged[][] = []
    const requests = [getSecret(API_KEY)]
    for (const side of [pair.fast, pair.plain]) {
      const first = await Connection.open(side.port)
      const got: Exchanged[] = []
      try {
        got.push(await first.send([getSecret(API_KEY), getSecret(API_KEY)], 'sequential'))
        assert.equal(headerOf(got[0]!.answers[1]!, 'x-cache'), 'HIT')
        got.push(await exchange(side.port, requests, 'sequential', { waitCloseMs: 1000 }))
        got.push(await exchange(side.port, [getSecret(API_KEY), getSecret(API_KEY)], 'pipelined', { waitCloseMs: 1000 }))
        assert.equal(got[1]!.answers[0]?.status, 429)
        // The first connection still works.
        got.push(await first.send(requests, 'sequential'))
      } finally {
        first.close()
      }
      // Once it is gone, a new connection is under the cap again.
      await until(() => new Promise<boolean>((resolve) => { side.h.app.server.getConnections((_error, n) => { resolve(n === 0) }) }), 3000)
      got.push(await exchange(side.port, requests))
      results.push(got)
    }
    const [fast, plain] = results as [Exchanged[], Exchanged[]]
    for (let i = 0; i < fast.length; i++) assertSame(fast[i]!, plain[i]!, requests, { compareClosed: i === 1 || i === 2 })
    await assertSameMetrics(pair)
  })
})

describe('fast path: while the app closes', () => {
  it('a hit arriving on a kept-alive connection while the app closes is answered as fastify does (Connection: close), and the close completes', async () => {
    const pair = await openPair({ watch: false, logLevel: 'info' })
    const results: Exchanged[] = []
    const closedWithin: Array<number | undefined> = []
    try {
      for (const side of [pair.fast, pair.plain]) {
        const connection = await Connection.open(side.port)
        try {
          await connection.send([getSecret(API_KEY), getSecret(API_KEY)], 'sequential')
          // Half a request: the connection is busy, not idle, when the close begins, so the
          // server keeps it, and the rest of the request arrives during the close.
          const request = getSecret(API_KEY)
          connection.write(requestBytes(request).subarray(0, 20))
          await new Promise((resolve) => setTimeout(resolve, 20))
          const started = Date.now()
          let closed: number | undefined
          const closing = side.h.app.close().then(() => { closed = Date.now() - started })
          results.push(await connection.send([request], 'sequential', { written: 20, waitCloseMs: 1000 }))
          // A client that keeps polling on its kept-alive connection must not hold the close up.
          if (!connection.ended) await connection.send([getSecret(API_KEY)], 'sequential', { timeoutMs: 500 })
          await Promise.race([closing, new Promise((resolve) => setTimeout(resolve, 1000))])
          closedWithin.push(closed)
        } finally {
          connection.close()
        }
      }
    } finally {
      await pair.close()
    }
    const [fast, plain] = results as [Exchanged, Exchanged]
    assert.equal(headerOf(plain.answers[0]!, 'connection'), 'close', 'fastify says Connection: close while closing')
    assertSame(fast, plain, [getSecret(API_KEY)], { compareClosed: true })
    assert.ok(closedWithin[1] !== undefined, 'the fastify app closed within 1 s')
    assert.ok(closedWithin[0] !== undefined, 'the fast-path app did not close within 1 s: its kept-alive connection was never let go')
  })
})

describe('fast path, busy: a turn\'s first hit answered at once, the rest together at the turn\'s end', () => {
  /** Hits read in one turn from which on the agent counts as busy (fast-path.ts). */
  const BUSY_TURN = 4

  it('a hit read in the turn the close begins in is answered, says Connection: close, and the close completes', async () => {
    const side = await openSide({ watch: false, logLevel: 'info' }, true)
    let closed: Promise<void> | undefined
    try {
      const connection = await Connection.open(side.port)
      try {
        await connection.send([getSecret(API_KEY)], 'sequential')
        const byFastify = side.fastify.count
        // Four hits in one write, read in one turn: the agent counts as busy.
        await connection.send(Array.from({ length: BUSY_TURN }, () => getSecret(API_KEY)), 'pipelined')
        // Two hits in one write, so read in one turn: the first is answered at once, the second at
        // the turn's end. The close begins in between.
        let seen = 0
        side.h.app.server.on('request', () => { if (++seen === 2) closed = side.h.app.close() })
        const exchanged = await connection.send([getSecret(API_KEY), getSecret(API_KEY)], 'pipelined', { waitCloseMs: 1000 })
        assert.equal(side.fastify.count, byFastify, 'the fast path took both hits')
        const [first, second] = exchanged.answers
        assert.equal(headerOf(first!, 'connection'), 'keep-alive', 'the first was answered before the close began')
        assert.equal(second?.status, 200)
        assert.equal(headerOf(second, 'x-cache'), 'HIT')
        assert.equal(JSON.parse(second.body.toString('utf8')).SecretString, FIXTURE.stringSecret.value)
        assert.equal(headerOf(second, 'connection'), 'close')
        assert.ok(exchanged.closed, 'the connection was closed after the answer')
        assert.ok(closed !== undefined)
        const done = await Promise.race([closed.then(() => true), new Promise<false>((resolve) => setTimeout(() => resolve(false), 1000))])
        assert.ok(done, 'the app did not close within 1 s: the kept-alive connection was never let go')
      } finally {
        connection.close()
      }
    } finally {
      await (closed ?? side.h.close())
    }
  })

  it('a hit whose answer cannot be written fails alone: the other hits are answered, and the agent lives', async () => {
    const side = await openSide({ watch: false, logLevel: 'info' }, true)
    try {
      await exchange(side.port, [getSecret(API_KEY)])
      // Something else answers this one first: writing the hit's answer then throws.
      await exchange(side.port, Array.from({ length: BUSY_TURN }, () => getSecret(API_KEY)), 'pipelined')
      side.h.app.server.on('request', (request: { headers: Record<string, unknown> }, response: { end: () => void }) => {
        if (request.headers['x-answered-elsewhere'] !== undefined) response.end()
      })
      const [broken, other] = await Promise.all([Connection.open(side.port), Connection.open(side.port)])
      try {
        // The broken hit second, so read in the turn of the first: its answer waits for the turn's end.
        const answers = await Promise.all([
          broken.send([getSecret(API_KEY), getSecret(API_KEY, [...withToken(), ['X-Answered-Elsewhere', '1']]), getSecret(API_KEY)], 'pipelined', { timeoutMs: 1000 }),
          other.send([getSecret(API_KEY)], 'pipelined')
        ])
        assert.deepEqual(answers[0].answers.map((a) => [a.status, headerOf(a, 'x-cache')]), [[200, 'HIT'], [200, undefined], [200, 'HIT']], 'the second answer is the other listener\'s; the hits around it are answered')
        assert.equal(answers[1].answers[0]?.status, 200)
        assert.equal(headerOf(answers[1].answers[0], 'x-cache'), 'HIT')
      } finally {
        broken.close()
        other.close()
      }
      const after = await exchange(side.port, [getSecret(API_KEY)])
      assert.equal(after.answers[0]?.status, 200, 'the agent answers hits after it')
    } finally {
      await side.h.close()
    }
  })

  it('hits read in one turn, on many connections and pipelined, each get their own answer', async () => {
    const side = await openSide({ watch: false, logLevel: 'info' }, true)
    try {
      const ids = [API_KEY, DB, CERT]
      const warm = await exchange(side.port, ids.map((id) => getSecret(id)), 'pipelined')
      assert.deepEqual(warm.answers.map((a) => a.status), [200, 200, 200])
      // A turn of BUSY_TURN hits: the agent counts as busy, and holds a turn's later hits.
      await exchange(side.port, Array.from({ length: BUSY_TURN }, (_, i) => getSecret(ids[i % ids.length]!)), 'pipelined')
      const byFastify = side.fastify.count
      const connections = await Promise.all(Array.from({ length: 12 }, async () => Connection.open(side.port)))
      try {
        const sent = connections.map((_, i) => Array.from({ length: 5 }, (_, j) => ids[(i + j) % ids.length]!))
        const results = await Promise.all(connections.map(async (connection, i) => connection.send(sent[i]!.map((id) => getSecret(id)), 'pipelined')))
        assert.equal(side.fastify.count, byFastify, 'every hit was the fast path\'s')
        results.forEach((result, i) => {
          assert.deepEqual(result.answers.map((a) => JSON.parse(a.body.toString('utf8')).Name as string), sent[i], `connection ${i} got the answers to its own requests, in order`)
          assert.ok(result.answers.every((a) => a.status === 200 && headerOf(a, 'x-cache') === 'HIT' && headerOf(a, 'connection') === 'keep-alive'))
        })
      } finally {
        for (const connection of connections) connection.close()
      }
    } finally {
      await side.h.close()
    }
  })
})

describe('fast path: refresh ahead', () => {
  it('a warm hit past the refresh point starts exactly one background refresh, in both apps', async () => {
    const clock = fakeClock()
    const pair = await openPair({ secretsTtlSeconds: 1, now: clock.now, watch: false, logLevel: 'info' })
    try {
      await both(pair, [getSecret(API_KEY)], 'sequential', { exactAge: true })
      const calls = [pair.fast.h.countSecretCalls(), pair.plain.h.countSecretCalls()]
      await both(pair, [getSecret(API_KEY), getSecret(API_KEY)], 'sequential', { exactAge: true })
      assert.deepEqual(calls.map((c) => c.count), [0, 0], 'fresh hits before the refresh point call nobody')
      // Past the refresh-ahead point (75-90 % of the TTL) and before the end of the TTL.
      clock.advance(950)
      const fastBefore = pair.fast.fastify.count
      const { fast } = await both(pair, [getSecret(API_KEY), getSecret(API_KEY), getSecret(API_KEY)], 'pipelined', { exactAge: true })
      assert.ok(fast.answers.every((a) => headerOf(a, 'x-cache') === 'HIT'))
      assert.equal(pair.fast.fastify.count, fastBefore, 'the hits were the fast path\'s')
      await until(() => calls.every((c) => c.count >= 1), 3000)
      await new Promise((resolve) => setTimeout(resolve, 100))
      assert.deepEqual(calls.map((c) => c.count), [1, 1], 'exactly one refresh each')
      // The refreshed value is fresh again: more hits, no more calls.
      clock.advance(100)
      const after = await both(pair, [getSecret(API_KEY), getSecret(API_KEY)], 'sequential', { exactAge: true })
      assert.deepEqual(after.fast.answers.map((a) => [headerOf(a, 'x-cache'), headerOf(a, 'age')]), [['HIT', '0'], ['HIT', '0']])
      assert.deepEqual(calls.map((c) => c.count), [1, 1])
      await assertSameMetrics(pair)
    } finally {
      await pair.close()
    }
  })
})

// ---------------------------------------------------------------------------------------------
// Generated request sequences.

describe('fast path: generated requests (fast-check)', () => {
  const clock = fakeClock()
  let pair: Pair
  let arn = ''
  before(async () => {
    pair = await openPair({ now: clock.now, watch: false, logLevel: 'info', secretsTtlSeconds: 3600 })
    arn = await arnOf(pair.plain.h, API_KEY)
    assert.equal(await arnOf(pair.fast.h, API_KEY), arn)
    // Start both from an empty cache.
    pair.plain.h.cache.clear()
    pair.fast.h.cache.clear()
  })
  after(async () => { await pair?.close() })

  const casing = (name: string, style: number): string => {
    switch (style) {
      case 1: return name.toLowerCase()
      case 2: return name.toUpperCase()
      case 3: return [...name].map((c, i) => i % 2 === 0 ? c.toLowerCase() : c.toUpperCase()).join('')
      default: return name
    }
  }

  function arbitraries (): fc.Arbitrary<{ requests: RawRequest[], mode: 'sequential' | 'pipelined', advanceMs: number }> {
    const ids = fc.oneof(
      { weight: 12, arbitrary: fc.constantFrom(API_KEY, DB, CERT) },
      { weight: 2, arbitrary: fc.constantFrom('app/missing', arn, arn.slice(0, -7), 'APP/API-KEY') },
      { weight: 1, arbitrary: fc.constantFrom('', 'x'.repeat(2048), 'x'.repeat(2049), 'é', 'a b', 'a+b', 'a\u0000b', 'a\nb', 'a#b', 'a&b', 'a=b', 'a%b', 'a?b') }
    )
    const encode = (id: string, how: number): string => {
      switch (how) {
        case 1: return encodeURIComponent(id)
        case 2: return [...Buffer.from(id)].map((b) => '%' + b.toString(16).padStart(2, '0').toUpperCase()).join('')
        case 3: return encodeURIComponent(id).replace(/%[0-9A-F]{2}/g, (e) => e.toLowerCase())
        case 4: return encodeURIComponent(id).replace(/%20/g, '+')
        default: return encodeURI(id).replace(/[#&]/g, encodeURIComponent)
      }
    }
    const encodedId = fc.tuple(ids, fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 4, arbitrary: fc.integer({ min: 1, max: 4 }) }))
      .map(([id, how]) => encode(id, how))
    const junkValue = fc.constantFrom('%', '%zz', '%0', '%00', '%FF', '%C3%A9', '+', '%2B', '%20', '%0D%0A')
    const secretIdValue = fc.oneof({ weight: 10, arbitrary: encodedId }, { weight: 1, arbitrary: fc.tuple(encodedId, junkValue, fc.boolean()).map(([id, junk, before]) => before ? junk + id : id + junk) })
    const otherParam = fc.tuple(
      fc.constantFrom('versionStage', 'versionId', 'refreshNow', 'field', 'unknown', 'secretid', 'SecretId', 'secret%49d', '', 'secretId'),
      fc.constantFrom('AWSCURRENT', 'AWSPREVIOUS', 'BLUE', FIXTURE.jsonSecret.current.id, 'true', 'false', '1', 'maybe', 'password', 'nope', '', API_KEY)
    ).map(([k, v]) => `${k}=${v}`)
    const params = fc.oneof(
      { weight: 8, arbitrary: secretIdValue.map((v) => [`secretId=${v}`]) },
      { weight: 3, arbitrary: fc.tuple(secretIdValue, fc.array(otherParam, { minLength: 1, maxLength: 3 }), fc.nat(3)).map(([v, rest, at]) => { const all = [...rest]; all.splice(at % (rest.length + 1), 0, `secretId=${v}`); return all }) },
      { weight: 1, arbitrary: fc.array(otherParam, { maxLength: 3 }) },
      { weight: 1, arbitrary: fc.constantFrom(['secretId'], ['secretId='], []) }
    )
    const tail = fc.oneof({ weight: 10, arbitrary: fc.constant('') }, { weight: 1, arbitrary: fc.constantFrom('&', '&&', '#', '#frag', '&#x', ';') })
    const path = fc.oneof(
      { weight: 20, arbitrary: fc.constant('/secretsmanager/get') },
      { weight: 2, arbitrary: fc.constantFrom('/secretsmanager/get/', '/secretsmanager//get', '/secretsmanager/GET', '//secretsmanager/get', '/secretsmanager/get%2F', 'http://127.0.0.1/secretsmanager/get', '/secretsmanager/batch-get', '/secretsmanager/./get') }
    )
    const target = fc.oneof(
      { weight: 12, arbitrary: fc.tuple(path, params, tail, fc.boolean()).map(([p, ps, t, q]) => ps.length === 0 && !q ? p + t : `${p}?${ps.join('&')}${t}`) },
      { weight: 2, arbitrary: fc.tuple(encodedId, fc.option(otherParam, { nil: undefined })).map(([id, extra]) => `/v1/${id}${extra === undefined ? '' : '?' + extra}`) }
    )
    type TokenChoice = 'aws' | 'vault' | 'wrong' | 'none' | 'twice' | 'wrong-then-vault' | 'empty'
    const token = fc.oneof(
      { weight: 12, arbitrary: fc.constant<TokenChoice>('aws') },
      { weight: 3, arbitrary: fc.constantFrom<TokenChoice>('vault', 'wrong', 'none', 'twice', 'wrong-then-vault', 'empty') }
    )
    const tokenHeaders = (choice: TokenChoice, style: number): Array<[string, string]> => {
      const aws = casing(AWS_HEADER, style)
      const vault = casing(VAULT_HEADER, style)
      switch (choice) {
        case 'aws': return [[aws, TOKEN]]
        case 'vault': return [[vault, TOKEN]]
        case 'wrong': return [[aws, WRONG_TOKEN]]
        case 'none': return []
        case 'twice': return [[aws, TOKEN], [AWS_HEADER, TOKEN]]
        case 'wrong-then-vault': return [[aws, WRONG_TOKEN], [vault, TOKEN]]
        case 'empty': return [[aws, '']]
      }
    }
    const extra = fc.oneof(
      { weight: 12, arbitrary: fc.constant<Array<[string, string]>>([]) },
      {
        weight: 4,
        arbitrary: fc.array(fc.constantFrom<[string, string]>(
          ['X-Forwarded-For', '10.0.0.1'], ['x-forwarded-for', ''], ['Forwarded', 'for=1.2.3.4'], ['FORWARDED', ''],
          ['Connection', 'close'], ['Connection', 'keep-alive'], ['Accept', 'application/json'], ['Accept-Encoding', 'gzip'],
          ['X-Cache', 'MISS'], ['Cache-Control', 'no-cache'], ['If-None-Match', '*'], ['Origin', 'http://evil.example']
        ), { minLength: 1, maxLength: 2 })
      },
      { weight: 1, arbitrary: fc.integer({ min: 15_000, max: 17_000 }).map((n): Array<[string, string]> => [['X-Pad', 'p'.repeat(n)]]) }
    )
    const method = fc.oneof({ weight: 20, arbitrary: fc.constant('GET') }, { weight: 1, arbitrary: fc.constantFrom('HEAD', 'POST', 'OPTIONS', 'DELETE') })
    const version = fc.oneof({ weight: 15, arbitrary: fc.constant('HTTP/1.1') }, { weight: 1, arbitrary: fc.constant('HTTP/1.0') })
    const request = fc.record({ method, target, token, style: fc.nat(3), extra, version, tokenFirst: fc.boolean() }).map(({ method: m, target: t, token: tk, style, extra: e, version: v, tokenFirst }): RawRequest => {
      const tokens = tokenHeaders(tk, style)
      const headers = tokenFirst ? [...tokens, ...e] : [...e, ...tokens]
      if (m !== 'GET' && m !== 'HEAD') headers.push(['Content-Length', '0'])
      return { method: m, target: t, headers, version: v }
    })
    return fc.record({
      requests: fc.array(request, { minLength: 1, maxLength: 4 }),
      mode: fc.constantFrom<'sequential' | 'pipelined'>('sequential', 'pipelined'),
      advanceMs: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 3000 }) })
    })
  }

  /**
   * The requests up to the first one after which the server closes: pipelining past it races the
   * server's close (which can reset the connection before the client has read the answers).
   */
  function untilClosing (requests: RawRequest[]): RawRequest[] {
    const closes = (r: RawRequest): boolean => {
      const connection = r.headers.filter(([name]) => name.toLowerCase() === 'connection').map(([, value]) => value.toLowerCase()).join(',')
      return connection.includes('close') || (r.version === 'HTTP/1.0' && !connection.includes('keep-alive'))
    }
    const at = requests.findIndex(closes)
    return at === -1 ? requests : requests.slice(0, at + 1)
  }

  it(`gives the same answers as fastify (${RUNS} generated request sequences)`, async () => {
    let sent = 0
    const fastifyBefore = [pair.fast.fastify.count, pair.plain.fastify.count] as const
    await fc.assert(fc.asyncProperty(arbitraries(), async ({ requests, mode, advanceMs }) => {
      clock.advance(advanceMs)
      sent += requests.length
      await both(pair, mode === 'pipelined' ? untilClosing(requests) : requests, mode, { exactAge: true })
    }), { numRuns: RUNS, endOnFailure: true })
    // The property means something only if the fast path answered a good share of them: about a
    // fifth of the generated requests qualify (19 to 26 % over runs), so a tenth leaves room for
    // the draw while still failing if the fast path stopped answering.
    const byFastPath = (pair.plain.fastify.count - fastifyBefore[1]) - (pair.fast.fastify.count - fastifyBefore[0])
    assert.ok(byFastPath >= sent / 10, `the fast path answered ${byFastPath} of ${sent} requests`)
    console.log(`# fast-path: ${sent} requests, ${byFastPath} answered by the fast path`)
    assertSameItems(accessLines(pair.fast.h.logs()).map(accessKey), accessLines(pair.plain.h.logs()).map(accessKey), 'access-log lines')
    await assertSameMetrics(pair)
  })
})
