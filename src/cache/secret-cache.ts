import { performance } from 'node:perf_hooks'
import { LRUCache } from 'lru-cache'
import { backoffMs, jittered } from '../backoff.js'
import { NotFoundError, isProviderError, type ProviderError } from '../providers/errors.js'
import { Slabs } from './slabs.js'

/**
 * The secret cache: lru-cache's `fetch()` gives coalescing and background refresh; on top of it
 * this adds what lru-cache does not have (DESIGN §3):
 *
 * - freshness of our own, so an entry can outlive its TTL by `maxStaleMs` and still be served
 *   while refreshes fail transiently (lru-cache's own TTL is the hard end of an entry's life);
 * - refresh ahead: a fresh entry read past a jittered point of its TTL is refreshed in the
 *   background, so steady readers never wait for upstream;
 * - capped exponential backoff with jitter between failed refreshes;
 * - eviction on authoritative errors (not found, access denied): lru-cache deletes the entry
 *   when the fetch rejects, and only transient failures are turned into "keep the old value";
 * - TTL 0 meaning "do not cache" (lru-cache reads 0 as "never expires").
 */

export type CacheOutcome = 'HIT' | 'MISS' | 'STALE'

/** What the cache stores: the response bytes, built once, and the value they were built from. */
export interface Cached<V> {
  body: Buffer
  value: V
}

export interface CacheEntry<V> extends Cached<V> {
  /** When the value was fetched, on the cache's clock (ms). */
  readonly fetchedAt: number
  readonly ttlMs: number
  /** Past this point a read triggers a background refresh. */
  readonly refreshAt: number
  /** Failed refreshes in a row, and the earliest time the next may start. */
  failures: number
  retryAt: number
  /** A remembered "not found" (negative caching), served as that error. */
  readonly notFound?: ProviderError
}

export interface CacheResult<V> {
  entry: CacheEntry<V>
  outcome: CacheOutcome
  /** Whole seconds since the value was fetched. */
  ageSeconds: number
}

export type Loader<V> = (signal: AbortSignal) => Promise<Cached<V>>

export interface GetOptions {
  /** Life of a fresh value; 0 means do not cache (calls are still coalesced). */
  ttlMs: number
  /** Fetch upstream now (at most once a second per key). */
  refreshNow?: boolean
}

export type CacheEvent =
  | { type: 'hit' | 'miss' | 'stale' }
  | { type: 'refresh', ok: boolean }
  | { type: 'evict' }

export interface SecretCacheOptions {
  /** Most entries held. */
  maxEntries: number
  /** Most bytes held, counted from the stored response bytes. */
  maxBytes: number
  /** How long past its TTL a value may be served while refreshes fail transiently. */
  maxStaleMs: number
  /** False turns stale-if-error off: a failed refresh of an expired value answers the error. */
  staleIfError: boolean
  /** Refresh-ahead window, as fractions of the TTL (default 0.75 to 0.9). */
  refreshWindow?: readonly [number, number]
  /** Backoff between failed refreshes: first delay and cap (default 1 s, 5 min). */
  backoffBaseMs?: number
  backoffMaxMs?: number
  /** Remember "not found" this long; 0 (default) does not. */
  negativeTtlMs?: number
  /** The clock (ms); tests pass a fake one. */
  now?: () => number
  /** Random numbers in [0, 1) for jitter; tests pass a fixed one. */
  random?: () => number
  /** Called for every countable event (metrics). */
  onEvent?: (event: CacheEvent) => void
}

interface FetchContext {
  load: Loader<unknown>
  ttlMs: number
}

// Made once, not on every hit.
const HIT_EVENT: CacheEvent = Object.freeze({ type: 'hit' })
const PEEK = { allowStale: true } as const
/**
 * How long lru-cache keeps an entry past the hard end of life the cache itself enforces (#peek).
 * A refresh or a read's fetch runs at the entry's place in lru-cache, so that place must not
 * expire while the call runs: dropping expired entries (#purgeSoon) would give the call up.
 */
const LINGER_MS = 10 * 60 * 1000

/** Bytes an entry costs beyond its body: the key, the value object, bookkeeping. */
const ENTRY_OVERHEAD = 256
const REFRESH_NOW_MIN_INTERVAL_MS = 1000

export class SecretCache {
  readonly #lru: LRUCache<string, CacheEntry<unknown>, FetchContext>
  readonly #inflight = new Map<string, Promise<Cached<unknown>>>()
  /** Why lru-cache gave up fetches (its abort reasons), so that get() can tell them from upstream's errors. */
  readonly #givenUp = new WeakSet<object>()
  /** The stored entries' bodies (slabs.ts). */
  readonly #slabs = new Slabs()
  readonly #now: () => number
  readonly #random: () => number
  readonly #options: Required<Omit<SecretCacheOptions, 'now' | 'random' | 'onEvent'>>
  readonly #emit: (event: CacheEvent) => void
  readonly #enabled: boolean
  /** Whether `#now` is performance.now() (not a test's fake clock). */
  readonly #realClock: boolean
  /** A purge of expired entries is scheduled (#purgeSoon). */
  #purging = false
  /** When clear() last dropped everything, on the cache's clock. */
  #clearedAt = -Infinity

  constructor (options: SecretCacheOptions) {
    this.#now = options.now ?? (() => performance.now())
    this.#realClock = options.now === undefined
    this.#random = options.random ?? Math.random
    this.#emit = options.onEvent ?? (() => {})
    this.#options = {
      maxEntries: options.maxEntries,
      maxBytes: options.maxBytes,
      maxStaleMs: options.maxStaleMs,
      staleIfError: options.staleIfError,
      refreshWindow: options.refreshWindow ?? [0.75, 0.9],
      backoffBaseMs: options.backoffBaseMs ?? 1000,
      backoffMaxMs: options.backoffMaxMs ?? 5 * 60 * 1000,
      negativeTtlMs: options.negativeTtlMs ?? 0
    }
    this.#enabled = options.maxEntries > 0 && options.maxBytes > 0
    this.#lru = new LRUCache<string, CacheEntry<unknown>, FetchContext>({
      max: Math.max(1, options.maxEntries),
      maxSize: Math.max(1, options.maxBytes),
      // A value larger than the byte bound is served but not stored.
      maxEntrySize: Math.max(1, options.maxBytes),
      sizeCalculation: (entry, key) => entry.body.length + key.length + ENTRY_OVERHEAD,
      perf: { now: this.#now },
      // lru-cache otherwise memoises "now" for 1 ms of real time, which a fake clock outruns.
      ttlResolution: 0,
      fetchMethod: (key, old, { signal, options: fetchOptions, context }) => this.#fetch(key, old, signal, fetchOptions, context),
      dispose: (_value, _key, reason) => { if (reason === 'evict') this.#emit({ type: 'evict' }) }
    })
  }

  /** Entries held now. */
  get size (): number { return this.#lru.size }
  /** Bytes held now, by the cache's own accounting. */
  get bytes (): number { return this.#lru.calculatedSize }

  /**
   * The value for `key`: from the cache when fresh, else from `load` (coalesced with any other
   * caller of the same key). Throws the provider's error when there is nothing to serve.
   */
  async get<V> (key: string, load: Loader<V>, options: GetOptions): Promise<CacheResult<V>> {
    if (options.ttlMs <= 0 || !this.#enabled) return this.#uncached(key, load)
    const now = this.#now()
    let entry = this.#peek(key, now)

    // At most once a second, and while upstream fails, not before the backoff has passed.
    const wantsRefresh = options.refreshNow === true && (entry === undefined || (now - entry.fetchedAt >= REFRESH_NOW_MIN_INTERVAL_MS && now >= entry.retryAt))
    if (entry !== undefined && !wantsRefresh) {
      if (entry.notFound !== undefined) {
        if (now - entry.fetchedAt < entry.ttlMs) { this.#emit(HIT_EVENT); throw entry.notFound }
      } else if (now - entry.fetchedAt < entry.ttlMs) {
        return this.#hit(key, entry, load, options.ttlMs, now)
      } else if (entry.failures > 0 && this.#options.staleIfError) {
        // Expired while upstream is failing: serve the last good value without making the
        // reader wait, and retry in the background once the backoff has passed.
        if (now >= entry.retryAt) this.#refreshInBackground(key, load, options.ttlMs)
        this.#emit({ type: 'stale' })
        return this.#result(entry, 'STALE', now)
      }
      // Expired, nobody refreshed it ahead (it was not read near its end): fetch and wait.
    }

    const previous = entry
    // forceRefresh: whatever lru-cache holds for the key is not servable (we checked); an
    // in-flight fetch is still joined rather than repeated.
    try {
      entry = await this.#lru.fetch(key, { forceRefresh: true, context: { load, ttlMs: options.ttlMs } }) as CacheEntry<V> | undefined
    } catch (error) {
      if (!this.#givenUp.has(error as object)) throw error
      entry = undefined
    }
    if (entry === undefined) {
      // lru-cache gave the fetch up: the entry was evicted by others, replaced (a batch-get
      // stored it) or deleted (a store edit cleared the cache) meanwhile. Answer with what
      // replaced it, or else straight from upstream.
      const now = this.#now()
      const replaced = this.#fresh(key, now)
      if (replaced === undefined) return this.#uncached(key, load)
      this.#emit({ type: 'miss' })
      return this.#result(replaced, 'MISS', now)
    }
    if (entry.notFound !== undefined) throw entry.notFound
    const outcome = entry === previous ? 'STALE' : 'MISS'
    this.#emit({ type: outcome === 'STALE' ? 'stale' : 'miss' })
    return this.#result(entry, outcome, this.#now())
  }

  /**
   * The synchronous part of `get()`: the result when `key` holds a fresh value (refreshing it
   * ahead in the background when due, as `get()` does), else undefined, and then `get()` has
   * the answer. For the server's fast path, which answers hits without a promise.
   *
   * `at` is performance.now() as the caller read it just before: the cache takes it as its now
   * when its clock is that one (not a test's fake clock), sparing the hit a clock read.
   */
  hit<V> (key: string, load: Loader<V>, options: GetOptions, at?: number): CacheResult<V> | undefined {
    if (options.ttlMs <= 0 || !this.#enabled || options.refreshNow === true) return undefined
    const now = at !== undefined && this.#realClock ? at : this.#now()
    const entry = this.#fresh(key, now)
    return entry === undefined ? undefined : this.#hit(key, entry, load, options.ttlMs, now)
  }

  /**
   * A fresh value held for `key`, without going upstream; counts as a hit when found. With
   * `refreshNow`, only one fetched within the last second: refreshNow fetches a key at most once
   * a second, as in get().
   */
  peek<V> (key: string, refreshNow = false): CacheResult<V> | undefined {
    const now = this.#now()
    const entry = this.#fresh(key, now)
    if (entry === undefined || (refreshNow && now - entry.fetchedAt >= REFRESH_NOW_MIN_INTERVAL_MS)) return undefined
    this.#emit(HIT_EVENT)
    return this.#result(entry, 'HIT', now)
  }

  /**
   * Counts a transient failure of an upstream call made for `key` elsewhere (a batch-get's), as
   * get()'s failed refreshes count: the key then backs off before upstream is asked for it again
   * (`backingOff`). Once per call, however many readers shared it.
   */
  failed (key: string): void {
    const now = this.#now()
    const entry = this.#servable(key, now)
    if (entry !== undefined) this.#backOff(entry, now)
  }

  /**
   * The last good value held for `key`, for a caller whose own upstream call for it failed
   * transiently (a batch-get): served as get() serves it while upstream fails, marked STALE. Up to
   * its hard end of life with stale-if-error on; to the end of its TTL with it off.
   */
  stale<V> (key: string): CacheResult<V> | undefined {
    const now = this.#now()
    const entry = this.#servable(key, now)
    if (entry === undefined) return undefined
    this.#emit({ type: 'stale' })
    return this.#result(entry, 'STALE', now)
  }

  /**
   * The last good value held for `key` while its retries back off after failures (get()'s or a
   * batch's), for a caller about to ask upstream itself (a batch-get): served STALE instead, as
   * get() serves it without asking upstream until the backoff has passed.
   */
  backingOff<V> (key: string): CacheResult<V> | undefined {
    const now = this.#now()
    const entry = this.#servable(key, now)
    if (entry === undefined || entry.failures === 0 || now >= entry.retryAt) return undefined
    this.#emit({ type: 'stale' })
    return this.#result(entry, 'STALE', now)
  }

  /** The entry for `key` when its value may be served while upstream fails (see stale()). */
  #servable (key: string, now: number): CacheEntry<unknown> | undefined {
    const entry = this.#peek(key, now)
    if (entry === undefined || entry.notFound !== undefined) return undefined
    return now < this.#servedUntil(entry) ? entry : undefined
  }

  /**
   * Until when `entry`'s value may be served while upstream fails: its hard end of life with
   * stale-if-error on, the end of its TTL with it off.
   */
  #servedUntil (entry: CacheEntry<unknown>): number {
    return entry.fetchedAt + entry.ttlMs + (this.#options.staleIfError ? this.#options.maxStaleMs : 0)
  }

  /** The cache's clock now: what `set` and `delete` take as the time their upstream call began. */
  time (): number {
    return this.#now()
  }

  /**
   * Drops `key`: upstream answered authoritatively (not found, access denied) elsewhere, in a call
   * that began at `askedAt` (see `set`).
   */
  delete (key: string, askedAt?: number): void {
    if (askedAt !== undefined && this.#newerThan(key, askedAt)) return
    this.#lru.delete(key)
  }

  /**
   * Stores a value fetched elsewhere (a batch-get fills the entries single gets would). With
   * `askedAt`, the time the upstream call began (`time()`), a value that arrived since then, or a
   * clear since then, wins: the answer is older than what the cache learnt meanwhile.
   */
  set<V> (key: string, value: Cached<V>, ttlMs: number, askedAt?: number): void {
    if (ttlMs <= 0 || !this.#enabled) return
    if (askedAt !== undefined && this.#newerThan(key, askedAt)) return
    this.#lru.set(key, this.#entry(this.#stored(value), ttlMs), { ttl: ttlMs + this.#options.maxStaleMs + LINGER_MS })
  }

  /** Drops every entry: the provider's data changed under us. */
  clear (): void {
    this.#clearedAt = this.#now()
    this.#lru.clear()
  }

  /** Whether the cache learnt of `key` after `askedAt`: a clear, or a value that arrived since. */
  #newerThan (key: string, askedAt: number): boolean {
    if (this.#clearedAt > askedAt) return true
    const entry = this.#lru.get(key, PEEK)
    return entry !== undefined && entry.fetchedAt > askedAt
  }

  /**
   * The oldest fetch time among the values a read would be served now, on the cache's clock;
   * undefined when there are none. A value counts within its TTL, and past it while upstream
   * fails (stale if error), up to its hard end. A value past its TTL that nobody read since is
   * held but not served (the next read fetches), so it does not count: far above the TTL, this
   * says that refreshes are failing, not that a value was read once long ago.
   */
  oldestFetchedAt (): number | undefined {
    const now = this.#now()
    let oldest: number | undefined
    for (const entry of this.#held()) {
      if (entry.notFound !== undefined) continue
      const age = now - entry.fetchedAt
      const served = age < entry.ttlMs || (entry.failures > 0 && now < this.#servedUntil(entry))
      if (served && (oldest === undefined || entry.fetchedAt < oldest)) oldest = entry.fetchedAt
    }
    return oldest
  }

  #peek (key: string, now: number): CacheEntry<unknown> | undefined {
    // allowStale returns the value being refreshed; past its hard end of life it is not ours to serve.
    const entry = this.#lru.get(key, PEEK)
    if (entry === undefined) return undefined
    const hardEnd = entry.fetchedAt + entry.ttlMs + (entry.notFound !== undefined ? 0 : this.#options.maxStaleMs)
    return now < hardEnd ? entry : undefined
  }

  /** The entry for `key` when it holds a value within its TTL (not a remembered "not found"). */
  #fresh (key: string, now: number): CacheEntry<unknown> | undefined {
    const entry = this.#peek(key, now)
    return entry === undefined || entry.notFound !== undefined || now - entry.fetchedAt >= entry.ttlMs ? undefined : entry
  }

  #hit<V> (key: string, entry: CacheEntry<unknown>, load: Loader<V>, ttlMs: number, now: number): CacheResult<V> {
    if (now >= entry.refreshAt && now >= entry.retryAt) this.#refreshInBackground(key, load, ttlMs)
    this.#emit(HIT_EVENT)
    return this.#result(entry, 'HIT', now)
  }

  #refreshInBackground (key: string, load: Loader<unknown>, ttlMs: number): void {
    // forceRefresh + allowStale: lru-cache answers the current value now and refreshes once,
    // however many readers ask meanwhile.
    this.#lru.fetch(key, { forceRefresh: true, allowStale: true, context: { load, ttlMs } }).catch(() => {
      // Authoritative failures were handled in #fetch (the entry is gone); nothing else to do.
    })
  }

  async #fetch (key: string, old: CacheEntry<unknown> | undefined, signal: AbortSignal, fetchOptions: LRUCache.FetcherFetchOptions<string, CacheEntry<unknown>, FetchContext>, context: FetchContext): Promise<CacheEntry<unknown>> {
    let value: Cached<unknown>
    signal.addEventListener('abort', () => { if (typeof signal.reason === 'object' && signal.reason !== null) this.#givenUp.add(signal.reason as object) }, { once: true })
    try {
      value = await context.load(signal)
    } catch (error) {
      // Given up by lru-cache (see get()): not a failed refresh, and nobody waits for this answer.
      if (signal.aborted) throw error
      const now = this.#now()
      if (isProviderError(error) && error.transient && old !== undefined && old.notFound === undefined) {
        // Keep the last good value until its hard end of life (with stale-if-error off, the end
        // of its TTL: a refresh ahead that fails does not cut it short), and back off before retrying.
        const hardEnd = this.#servedUntil(old)
        if (now < hardEnd) {
          this.#backOff(old, now)
          fetchOptions.ttl = hardEnd - now + LINGER_MS
          this.#emit({ type: 'refresh', ok: false })
          return old
        }
      }
      this.#emit({ type: 'refresh', ok: false })
      if (error instanceof NotFoundError && this.#options.negativeTtlMs > 0) {
        fetchOptions.ttl = this.#options.negativeTtlMs + LINGER_MS
        return { ...this.#entry({ body: Buffer.alloc(0), value: undefined }, this.#options.negativeTtlMs), notFound: error }
      }
      // Authoritative (or nothing to fall back on): lru-cache deletes the entry and rejects.
      throw error
    }
    this.#emit({ type: 'refresh', ok: true })
    fetchOptions.ttl = context.ttlMs + this.#options.maxStaleMs + LINGER_MS
    return this.#entry(this.#stored(value), context.ttlMs)
  }

  /** `value` with its body moved into the slabs, for an entry the cache keeps. */
  #stored<V> (value: Cached<V>): Cached<V> {
    return { body: this.#slabs.store(value.body, () => { this.#purgeSoon(); return this.#held() }), value: value.value }
  }

  /**
   * Drops, once the current fetch has been stored, the entries past their hard end of life. lru-cache
   * keeps them until they are read or evicted, and its iteration skips them, so the slabs' look
   * cannot see their bodies: each could hold a whole slab. Not now: the fetch being stored may be
   * for such an entry, and dropping it would give the fetch up.
   */
  #purgeSoon (): void {
    if (this.#purging) return
    this.#purging = true
    setImmediate(() => {
      this.#purging = false
      this.#lru.purgeStale()
    }).unref()
  }

  /** Every entry held, those being refreshed included (lru-cache's values() leaves them out). */
  #held (): Array<CacheEntry<unknown>> {
    const entries: Array<CacheEntry<unknown>> = []
    this.#lru.forEach((entry) => { entries.push(entry) })
    return entries
  }

  #entry<V> (value: Cached<V>, ttlMs: number): CacheEntry<V> {
    const now = this.#now()
    const [lo, hi] = this.#options.refreshWindow
    return {
      body: value.body,
      value: value.value,
      fetchedAt: now,
      ttlMs,
      refreshAt: now + ttlMs * (lo + (hi - lo) * this.#random()),
      failures: 0,
      retryAt: 0
    }
  }

  /**
   * Counts one more failed upstream call for `entry`, and puts its next off by capped exponential
   * backoff with equal jitter.
   */
  #backOff (entry: CacheEntry<unknown>, now: number): void {
    entry.failures += 1
    entry.retryAt = now + jittered(backoffMs(entry.failures - 1, this.#options.backoffBaseMs, this.#options.backoffMaxMs), this.#random)
  }

  async #uncached<V> (key: string, load: Loader<V>): Promise<CacheResult<V>> {
    let pending = this.#inflight.get(key) as Promise<Cached<V>> | undefined
    if (pending === undefined) {
      pending = load(new AbortController().signal).finally(() => { this.#inflight.delete(key) })
      this.#inflight.set(key, pending)
    }
    const value = await pending
    this.#emit({ type: 'miss' })
    return this.#result(this.#entry(value, 0), 'MISS', this.#now())
  }

  #result<V> (entry: CacheEntry<unknown>, outcome: CacheOutcome, now: number): CacheResult<V> {
    return { entry: entry as CacheEntry<V>, outcome, ageSeconds: Math.max(0, Math.floor((now - entry.fetchedAt) / 1000)) }
  }
}

/** The cache key of DESIGN §3: kind, id exactly as asked, version id, stage, decryption. */
export function cacheKey (kind: string, id: string, parts: { versionId?: string, versionStage?: string, withDecryption?: boolean, recursive?: boolean } = {}): string {
  const stage = parts.versionStage ?? (parts.versionId === undefined && kind === 'secret' ? 'AWSCURRENT' : '')
  return JSON.stringify([kind, id, parts.versionId ?? '', stage, parts.withDecryption === true, parts.recursive === true])
}
