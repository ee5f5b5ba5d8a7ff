import type { IncomingMessage, ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import { parse as parseQuery } from 'fast-querystring'
import type { CacheResult } from '../cache/secret-cache.js'
import type { Token } from '../token.js'
import type { AllowList } from './allow.js'
import { hasValidToken, isForwarded } from './auth.js'
import { headerBytes, isOverLimit } from './connection-limits.js'
import { JSON_TYPE, MAX_HEADER_BYTES } from './limits.js'
import type { Reads } from './reads.js'
import type { RequestRecorder } from './app.js'

export interface FastPathOptions {
  reads: Reads
  token: Token
  /** Header names that may carry the token. */
  tokenHeaders: readonly string[]
  allow: AllowList
  /** Counts and logs answered requests: the same recorder fastify's requests go through. */
  recorder: Pick<RequestRecorder, 'fixed'>
  /**
   * True once the server is closing. Hits then go to fastify, which tells each client
   * `Connection: close`; a hit taken before, and answered after, says the same.
   */
  closing?: () => boolean
}

/** The one request shape answered here: the Lambda extension's and the Agent's secret read. */
const PREFIX = '/secretsmanager/get?'
const ROUTE = '/secretsmanager/get'
/** Longer URLs are left to fastify (its limit is 64 KiB); a plain id fits in far less. */
const MAX_URL = 8192
/**
 * Ids answered here: the characters of secret names and ARNs, nothing that needs a second look
 * (no control characters, spaces, `%`, `#`, `;`, or non-ASCII). Anything else goes to fastify,
 * whose checks and error answers stay the only ones.
 */
const PLAIN_ID = /^[A-Za-z0-9/_+=.@:-]{1,2048}$/
/** Hits in a turn of the event loop from which on the loop counts as busy (see `fastPath`). */
const BUSY_TURN_HITS = 4
/** URLs whose reading is remembered (see `readOf`), and the longest one remembered. */
const MEMO_SIZE = 1024
const MEMO_URL = 1024

/** The read a URL asks for: its fresh hit at `at` (performance.now()), or undefined (Reads.secretHits). */
type Read = (at: number) => CacheResult<null> | undefined

/**
 * Answers fresh cache hits of `GET /secretsmanager/get?secretId=ID` before fastify sees them:
 * the agent's hottest request, and fastify's request pipeline (hooks, schema check, promises)
 * costs more than the rest of the hit together.
 *
 * It answers only when it is sure of the same answer fastify would give: a valid token, no sign
 * of a proxy, headers within limits, a connection under the cap, `secretId` the only parameter
 * and a plain id, allowed by the allow-list, and a fresh value in the cache. Then it writes the
 * same status, headers and bytes, counts the request in the same metrics and writes the same
 * access line. Anything else, and any exception before the answer is written, returns false and
 * the request goes to fastify untouched: every error, every other route and every miss is
 * fastify's alone. test/integration/fast-path.test.ts holds the two paths to the same answers.
 *
 * While the agent is busy (the last turn of the event loop that read a hit read several), the
 * first hit of a turn is answered at once and the hits read after it in the same turn together
 * at its end (`setImmediate`, after the loop's poll phase has read every request that came in).
 * Under load, an answer written at once reaches a client asleep waiting for it, and waking it is
 * the kernel's work on the agent's core, for every answer; answers written together find their
 * clients awake, and the next requests come in together too. That took about a quarter off the
 * CPU time of a hit under wrk (docs/bench/findings.md, twelfth round). Otherwise every hit is
 * answered as soon as it is read: waiting for the end of the turn would only add latency when a
 * few requests come in at once.
 */
export function fastPath (options: FastPathOptions): (request: IncomingMessage, response: ServerResponse) => boolean {
  const { reads, token, allow } = options
  const answered = options.recorder.fixed({ method: 'GET', route: ROUTE, status: 200, cache: 'HIT' })
  const names = options.tokenHeaders.map((h) => h.toLowerCase())
  // The answer's headers in writeHead's flat form, [name, value, ...]: no object is made for a hit,
  // and Node walks a list without the own-property check it makes for each key of an object.
  // One list serves every hit: writeHead reads it before it returns and keeps nothing of it.
  const headers = ['cache-control', 'no-store', 'x-cache', 'HIT', 'age', '0', 'content-type', JSON_TYPE, 'content-length', '0']
  const age = headers.indexOf('age') + 1
  const length = headers.indexOf('content-length') + 1
  // What the URLs seen lately ask for, or null for one left to fastify: parsing and checking a
  // URL costs more than the lookup it leads to, and a URL's answer never changes (the parser and
  // the allow-list are fixed). Bounded in count and length; emptied when full.
  // The last URL is compared first: an app reads the same few secrets over and over, and
  // comparing a URL costs less than hashing it for the map.
  const memo = new Map<string, Read | null>()
  let lastUrl = ''
  let lastRead: Read | null = null
  const readOf = (url: string): Read | null => {
    if (url === lastUrl) return lastRead
    let read = memo.get(url)
    if (read === undefined) {
      const secretId = onlySecretId(url.slice(PREFIX.length))
      read = secretId === undefined || !allow.allows('secrets', secretId) ? null : reads.secretHits({ secretId })
      if (url.length > MEMO_URL) return read
      if (memo.size >= MEMO_SIZE) memo.clear()
      memo.set(url, read)
    }
    lastUrl = url
    lastRead = read
    return read
  }
  const freshHit = (request: IncomingMessage, at: number): CacheResult<null> | undefined => {
    const url = request.url
    if (request.method !== 'GET' || url === undefined || url.length > MAX_URL || !url.startsWith(PREFIX)) return undefined
    const headers = request.headers
    if (isForwarded(headers)) return undefined
    if (isOverLimit(request.socket) || headerBytes(request.rawHeaders) > MAX_HEADER_BYTES) return undefined
    if (!hasValidToken(token, names, headers)) return undefined
    const read = readOf(url)
    return read === null ? undefined : read(at)
  }

  const closing = options.closing ?? (() => false)
  // While closing, the same headers and `Connection: close`.
  const closingHeaders = [...headers, 'connection', 'close']
  const answer = (response: ServerResponse, hit: CacheResult<null>, start: number): void => {
    try {
      const list = closing() ? closingHeaders : headers
      const body = hit.entry.body
      list[age] = String(hit.ageSeconds)
      list[length] = String(body.length)
      response.writeHead(200, list)
      response.end(body)
      const end = performance.now()
      answered(end - start, end)
    } catch {
      // Nothing here throws on a live response, nor on one whose client has gone. Were it to, the
      // answer's bytes on the connection are unknown: the connection closes (destroy), and the
      // turn's other hits and the process go on.
      response.destroy()
    }
  }

  /** Hits read in this turn of the event loop (its first schedules `endTurn`). */
  let hits = 0
  /** Hits read in the last turn that read any: a busy loop's turns read several. */
  let lastHits = 0
  let taken: Taken[] = []
  const endTurn = (): void => {
    lastHits = hits
    hits = 0
    const answering = taken
    taken = []
    for (const { response, hit, start } of answering) answer(response, hit, start)
  }

  return function answerFreshHit (request, response) {
    if (closing()) return false
    const start = performance.now()
    let hit: CacheResult<null> | undefined
    try {
      hit = freshHit(request, start)
    } catch {
      // Whatever went wrong, fastify answers it, with its error handling.
      return false
    }
    if (hit === undefined) return false
    hits += 1
    if (hits === 1) {
      setImmediate(endTurn)
      answer(response, hit, start)
    } else if (lastHits >= BUSY_TURN_HITS) {
      taken.push({ response, hit, start })
    } else {
      answer(response, hit, start)
    }
    return true
  }
}

/** A hit to answer, and when its request came in (performance.now()). */
interface Taken {
  response: ServerResponse
  hit: CacheResult<null>
  start: number
}

/** The secretId of a query string holding that one parameter, when it is a plain id. */
function onlySecretId (query: string): string | undefined {
  const parsed = parseQuery(query) as Record<string, unknown>
  let keys = 0
  for (const key in parsed) {
    if (key !== 'secretId' || ++keys > 1) return undefined
  }
  const id = parsed.secretId
  return typeof id === 'string' && PLAIN_ID.test(id) ? id : undefined
}
