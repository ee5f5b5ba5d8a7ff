import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { SecretCache, cacheKey, type CacheEvent, type Cached, type SecretCacheOptions } from '../../src/cache/secret-cache.js'
import { AccessDeniedError, NotFoundError, ThrottledError, UpstreamError, UpstreamTimeoutError } from '../../src/providers/errors.js'
import { FakeClock, settle } from '../support/fake-clock.js'

const TTL = 10_000

/** An upstream whose answers, failures and latency a test controls, counting its calls. */
class Upstream {
  calls = 0
  version = 1
  failure: Error | undefined
  latencyMs = 0
  constructor (private readonly clock: FakeClock, private readonly size = 10) {}
  readonly load = async (): Promise<Cached<string>> => {
    this.calls += 1
    if (this.latencyMs > 0) await this.clock.sleep(this.latencyMs)
    if (this.failure !== undefined) throw this.failure
    const value = `v${this.version}`
    return { body: Buffer.from(value.padEnd(this.size, '.')), value }
  }
}

function setup (options: Partial<SecretCacheOptions> = {}): { clock: FakeClock, cache: SecretCache, upstream: Upstream, events: CacheEvent[] } {
  const clock = new FakeClock()
  const events: CacheEvent[] = []
  const cache = new SecretCache({
    maxEntries: 100,
    maxBytes: 1024 * 1024,
    maxStaleMs: 3_600_000 * 24,
    staleIfError: true,
    now: clock.now,
    random: () => 0.5,
    onEvent: (e) => events.push(e),
    ...options
  })
  return { clock, cache, upstream: new Upstream(clock), events }
}

describe('SecretCache', () => {
  it('makes one upstream call for 1,000 concurrent reads of a cold key, and all get the value', async () => {
    const { clock, cache, upstream } = setup()
    upstream.latencyMs = 300
    const reads = Array.from({ length: 1000 }, async () => cache.get('k', upstream.load, { ttlMs: TTL }))
    await settle()
    await clock.advance(300)
    const results = await Promise.all(reads)
    assert.equal(upstream.calls, 1)
    assert.ok(results.every((r) => r.entry.value === 'v1' && r.outcome === 'MISS'))
  })

  it('answers a second read from the cache with HIT and its age', async () => {
    const { clock, cache, upstream } = setup()
    await cache.get('k', upstream.load, { ttlMs: TTL })
    await clock.advance(2500)
    const second = await cache.get('k', upstream.load, { ttlMs: TTL })
    assert.equal(second.outcome, 'HIT')
    assert.equal(second.ageSeconds, 2)
    assert.equal(upstream.calls, 1)
  })

  it('refreshes ahead: a key read continuously for 10 TTLs with 300 ms upstream latency never waits after the first read', async () => {
    const { clock, cache, upstream } = setup({ random: Math.random })
    upstream.latencyMs = 300
    const first = cache.get('k', upstream.load, { ttlMs: TTL })
    await clock.advance(300)
    await first
    let waited = 0
    for (let t = 0; t < 10 * TTL; t += 100) {
      let done = false
      const read = cache.get('k', upstream.load, { ttlMs: TTL }).then((r) => { done = true; return r })
      await settle()
      if (!done) waited += 1
      const result = await (done ? read : clock.advance(300).then(async () => read))
      assert.equal(result.outcome, 'HIT')
      await clock.advance(100)
    }
    assert.equal(waited, 0, 'no read after the first waited for upstream')
    // One refresh per TTL, started between 75% and 90% of it: 10 TTLs make 11 to 14 calls.
    assert.ok(upstream.calls >= 11 && upstream.calls <= 14, `upstream calls: ${upstream.calls}`)
  })

  it('does not refresh entries nobody reads: they age out', async () => {
    const { clock, cache, upstream } = setup()
    await cache.get('k', upstream.load, { ttlMs: TTL })
    await clock.advance(10 * TTL)
    assert.equal(upstream.calls, 1)
    const later = await cache.get('k', upstream.load, { ttlMs: TTL })
    assert.equal(later.outcome, 'MISS')
    assert.equal(upstream.calls, 2)
  })

  for (const [fault, error] of [
    ['throttled', new ThrottledError()],
    ['failing with 500', new UpstreamError()],
    ['timing out', new UpstreamTimeoutError()]
  ] as const) {
    it(`serves the last good value marked STALE while upstream is ${fault} for an hour, backing off between retries`, async () => {
      const { clock, cache, upstream } = setup({ maxStaleMs: 2 * 3_600_000, backoffBaseMs: 1000, backoffMaxMs: 300_000 })
      await cache.get('k', upstream.load, { ttlMs: TTL })
      upstream.failure = error
      const callsBefore = upstream.calls
      let stale = 0
      for (let t = 0; t < 3_600_000; t += 1000) {
        await clock.advance(1000)
        const r = await cache.get('k', upstream.load, { ttlMs: TTL })
        assert.equal(r.entry.value, 'v1')
        if (r.outcome === 'STALE') stale += 1
      }
      const retries = upstream.calls - callsBefore
      // Backoff doubles from 1 s to a 5 min cap (jittered over its upper half): about 20 tries
      // in the hour, where a retry per read would have been 3,600.
      assert.ok(retries >= 10 && retries <= 40, `retries in an hour: ${retries}`)
      assert.ok(stale > 3500, `stale answers: ${stale}`)

      upstream.failure = undefined
      upstream.version = 2
      let recoveredAfter = -1
      for (let t = 1000; t <= 300_000 + 1000; t += 1000) {
        await clock.advance(1000)
        const r = await cache.get('k', upstream.load, { ttlMs: TTL })
        await settle()
        if (r.entry.value === 'v2') { recoveredAfter = t; break }
      }
      assert.ok(recoveredAfter > 0 && recoveredAfter <= 301_000, `fresh value back within one retry interval (took ${recoveredAfter} ms)`)
    })
  }

  it('answers the upstream error once the value is older than max stale', async () => {
    const { clock, cache, upstream } = setup({ maxStaleMs: 60_000 })
    await cache.get('k', upstream.load, { ttlMs: TTL })
    upstream.failure = new ThrottledError()
    await clock.advance(TTL + 1000)
    assert.equal((await cache.get('k', upstream.load, { ttlMs: TTL })).outcome, 'STALE')
    await clock.advance(60_000)
    await assert.rejects(cache.get('k', upstream.load, { ttlMs: TTL }), ThrottledError)
  })

  it('with stale-if-error off, answers the error as soon as the value expires', async () => {
    const { clock, cache, upstream } = setup({ staleIfError: false })
    await cache.get('k', upstream.load, { ttlMs: TTL })
    upstream.failure = new UpstreamError()
    await clock.advance(TTL)
    await assert.rejects(cache.get('k', upstream.load, { ttlMs: TTL }), UpstreamError)
  })

  it('with stale-if-error off, keeps serving a value within its TTL when a refresh ahead fails, then answers the error', async () => {
    const { clock, cache, upstream } = setup({ staleIfError: false, backoffBaseMs: 1000, backoffMaxMs: 1000 })
    await cache.get('k', upstream.load, { ttlMs: TTL })
    upstream.failure = new UpstreamError()
    await clock.advance(TTL * 0.83)
    // This read is due for a refresh ahead (from 82.5 % of the TTL here), which fails.
    assert.equal((await cache.get('k', upstream.load, { ttlMs: TTL })).outcome, 'HIT')
    await settle()
    assert.equal(upstream.calls, 2)
    await clock.advance(TTL * 0.12)
    const later = await cache.get('k', upstream.load, { ttlMs: TTL })
    assert.deepEqual([later.outcome, later.entry.value], ['HIT', 'v1'])
    await settle()
    assert.equal(upstream.calls, 3, 'retried once the backoff had passed')
    await clock.advance(TTL * 0.05)
    await assert.rejects(cache.get('k', upstream.load, { ttlMs: TTL }), UpstreamError)
  })

  for (const [what, error] of [['deleted upstream', new NotFoundError()], ['access revoked', new AccessDeniedError()]] as const) {
    it(`stops serving a value ${what} at the next refresh`, async () => {
      const { clock, cache, upstream } = setup()
      await cache.get('k', upstream.load, { ttlMs: TTL })
      upstream.failure = error
      await clock.advance(TTL * 0.95)
      // This read is fresh, and starts the refresh ahead that learns of the deletion.
      assert.equal((await cache.get('k', upstream.load, { ttlMs: TTL })).outcome, 'HIT')
      await settle()
      await assert.rejects(cache.get('k', upstream.load, { ttlMs: TTL }), error.constructor as typeof Error)
      assert.equal(cache.size, 0)
    })
  }

  it('refreshNow fetches now, at most once a second per key', async () => {
    const { clock, cache, upstream } = setup()
    await cache.get('k', upstream.load, { ttlMs: TTL })
    await clock.advance(1000)
    upstream.version = 2
    const forced = await cache.get('k', upstream.load, { ttlMs: TTL, refreshNow: true })
    assert.equal(forced.entry.value, 'v2')
    assert.equal(forced.outcome, 'MISS')
    const again = await cache.get('k', upstream.load, { ttlMs: TTL, refreshNow: true })
    assert.equal(again.outcome, 'HIT', 'a second refreshNow within a second is served from the cache')
    assert.equal(upstream.calls, 2)
  })

  it('refreshNow while upstream fails waits out the backoff between retries, serving the last good value', async () => {
    const { clock, cache, upstream } = setup({ backoffBaseMs: 1000, backoffMaxMs: 60_000 })
    await cache.get('k', upstream.load, { ttlMs: TTL })
    upstream.failure = new UpstreamError()
    for (let i = 0; i < 40; i++) {
      await clock.advance(1500)
      assert.equal((await cache.get('k', upstream.load, { ttlMs: TTL, refreshNow: true })).entry.value, 'v1')
      await settle()
    }
    // A minute of refreshNow every 1.5 s: retries at 1.5, 3, 4.5, 7.5, 13.5, 25.5 and 49.5 s as
    // the backoff doubles, not 40.
    assert.equal(upstream.calls - 1, 7)
  })

  it('with TTL 0 caches nothing but still coalesces concurrent reads', async () => {
    const { clock, cache, upstream } = setup()
    upstream.latencyMs = 50
    const reads = Array.from({ length: 10 }, async () => cache.get('k', upstream.load, { ttlMs: 0 }))
    await settle()
    await clock.advance(50)
    await Promise.all(reads)
    assert.equal(upstream.calls, 1)
    upstream.latencyMs = 0
    await cache.get('k', upstream.load, { ttlMs: 0 })
    assert.equal(upstream.calls, 2)
    assert.equal(cache.size, 0)
  })

  it('evicts the least recently used entry past cache_size', async () => {
    const { cache, upstream, events } = setup({ maxEntries: 3 })
    for (const k of ['a', 'b', 'c']) await cache.get(k, upstream.load, { ttlMs: TTL })
    await cache.get('a', upstream.load, { ttlMs: TTL }) // a is now the most recent
    await cache.get('d', upstream.load, { ttlMs: TTL })
    assert.equal(cache.size, 3)
    assert.equal(upstream.calls, 4)
    await cache.get('a', upstream.load, { ttlMs: TTL })
    assert.equal(upstream.calls, 4, 'a stayed')
    await cache.get('b', upstream.load, { ttlMs: TTL })
    assert.equal(upstream.calls, 5, 'b was evicted')
    assert.ok(events.filter((e) => e.type === 'evict').length >= 1)
  })

  it('evicts by bytes past cache_max_bytes, by its own accounting, and serves an oversize value uncached', async () => {
    const clock = new FakeClock()
    const big = new Upstream(clock, 4000)
    const cache = new SecretCache({ maxEntries: 100, maxBytes: 10_000, maxStaleMs: 0, staleIfError: true, now: clock.now })
    await cache.get('a', big.load, { ttlMs: TTL })
    await cache.get('b', big.load, { ttlMs: TTL })
    assert.equal(cache.size, 2)
    assert.ok(cache.bytes > 8000 && cache.bytes <= 10_000, `bytes: ${cache.bytes}`)
    await cache.get('c', big.load, { ttlMs: TTL })
    assert.equal(cache.size, 2, 'the least recently used went to make room')
    assert.ok(cache.bytes <= 10_000)

    const huge = new Upstream(clock, 20_000)
    const r = await cache.get('h', huge.load, { ttlMs: TTL })
    assert.equal(r.entry.body.length, 20_000)
    await cache.get('h', huge.load, { ttlMs: TTL })
    assert.equal(huge.calls, 2, 'a value over the byte bound is not stored')
  })

  it('remembers "not found" for the negative TTL when that is on', async () => {
    const { clock, cache, upstream } = setup({ negativeTtlMs: 5000 })
    upstream.failure = new NotFoundError()
    await assert.rejects(cache.get('k', upstream.load, { ttlMs: TTL }), NotFoundError)
    await assert.rejects(cache.get('k', upstream.load, { ttlMs: TTL }), NotFoundError)
    assert.equal(upstream.calls, 1)
    upstream.failure = undefined
    await clock.advance(5000)
    assert.equal((await cache.get('k', upstream.load, { ttlMs: TTL })).entry.value, 'v1')
    assert.equal(upstream.calls, 2)
  })

  it('does not remember "not found" by default', async () => {
    const { cache, upstream } = setup()
    upstream.failure = new NotFoundError()
    await assert.rejects(cache.get('k', upstream.load, { ttlMs: TTL }), NotFoundError)
    await assert.rejects(cache.get('k', upstream.load, { ttlMs: TTL }), NotFoundError)
    assert.equal(upstream.calls, 2)
  })

  it('clear() drops everything, so the next read goes upstream', async () => {
    const { cache, upstream } = setup()
    await cache.get('k', upstream.load, { ttlMs: TTL })
    cache.clear()
    assert.equal((await cache.get('k', upstream.load, { ttlMs: TTL })).outcome, 'MISS')
    assert.equal(upstream.calls, 2)
  })

  it('set() fills an entry that a later get serves, and peek() sees only fresh ones', async () => {
    const { clock, cache, upstream } = setup()
    cache.set('k', { body: Buffer.from('x'), value: 'filled' }, TTL)
    assert.equal(cache.peek<string>('k')?.entry.value, 'filled')
    assert.equal((await cache.get('k', upstream.load, { ttlMs: TTL })).entry.value, 'filled')
    await clock.advance(TTL)
    assert.equal(cache.peek('k'), undefined)
  })

  it('holds its own copy of each body, and every body reads right while entries are replaced and evicted', async () => {
    const { clock, cache } = setup({ maxEntries: 300 })
    const given = new Map<string, Buffer>()
    const bodyOf = (key: string, round: number): string => `${key}@${round}:`.padEnd(100 + (key.length * 37 + round * 211) % 1500, '#')
    for (let round = 0; round < 4; round++) {
      await clock.advance(TTL + 1)
      for (let i = 0; i < 500; i++) {
        const key = `k${(i * 7 + round) % 500}`
        const load = async (): Promise<Cached<string>> => {
          const body = Buffer.from(bodyOf(key, round))
          given.set(key, body)
          return { body, value: key }
        }
        const result = await cache.get(key, load, { ttlMs: TTL })
        assert.equal(result.entry.body.toString(), bodyOf(key, round))
      }
      // What the loaders returned is theirs: the cache kept copies.
      for (const body of given.values()) body.fill(0)
      let held = 0
      for (let i = 0; i < 500; i++) {
        const hit = cache.peek(`k${i}`)
        if (hit === undefined) continue
        held++
        assert.equal(hit.entry.body.toString(), bodyOf(`k${i}`, round), `k${i} in round ${round}`)
      }
      assert.equal(held, 300)
    }
  })

  it('reports the age of the oldest value held', async () => {
    const { clock, cache, upstream } = setup()
    await cache.get('a', upstream.load, { ttlMs: TTL })
    const first = clock.now()
    await clock.advance(3000)
    await cache.get('b', upstream.load, { ttlMs: TTL })
    assert.equal(cache.oldestFetchedAt(), first)
    // While the oldest is refreshed ahead it is still held, and still the oldest.
    upstream.latencyMs = 300
    await clock.advance(TTL * 0.9 - 3000)
    assert.equal((await cache.get('a', upstream.load, { ttlMs: TTL })).outcome, 'HIT')
    await settle()
    assert.equal(cache.oldestFetchedAt(), first, 'during the refresh')
    await clock.advance(300)
    assert.equal(cache.oldestFetchedAt(), first + 3000, 'after it: b is the oldest')
  })

  it('counts only values a read would be served: not one past its TTL that nobody read, but a stale one while upstream fails', async () => {
    const { clock, cache, upstream } = setup()
    await cache.get('a', upstream.load, { ttlMs: TTL })
    const fetched = clock.now()
    await clock.advance(TTL * 3)
    assert.equal(cache.oldestFetchedAt(), undefined, 'held, unread since its TTL ended: the next read fetches')
    upstream.failure = new UpstreamError()
    assert.equal((await cache.get('a', upstream.load, { ttlMs: TTL })).outcome, 'STALE')
    assert.equal(cache.oldestFetchedAt(), fetched, 'served stale while upstream fails')
  })

  it('counts hits, misses, stale answers and refreshes as events', async () => {
    const { clock, cache, upstream, events } = setup()
    await cache.get('k', upstream.load, { ttlMs: TTL })
    await cache.get('k', upstream.load, { ttlMs: TTL })
    upstream.failure = new UpstreamError()
    await clock.advance(TTL)
    await cache.get('k', upstream.load, { ttlMs: TTL })
    const count = (type: string): number => events.filter((e) => e.type === type).length
    assert.equal(count('miss'), 1)
    assert.equal(count('hit'), 1)
    assert.equal(count('stale'), 1)
    assert.deepEqual(events.filter((e) => e.type === 'refresh'), [{ type: 'refresh', ok: true }, { type: 'refresh', ok: false }])
  })
})

describe('SecretCache, entries past their end of life', () => {
  it('lets go of values past their hard end once new values fill slabs, rather than holding them until evicted', async () => {
    const { clock, cache } = setup({ maxEntries: 10_000, maxBytes: 64 * 1024 * 1024, maxStaleMs: 0 })
    const upstream = new Upstream(clock, 4000)
    for (let i = 0; i < 200; i++) await cache.get(`read-once-${i}`, upstream.load, { ttlMs: TTL })
    // Past the hard end (max stale is 0), and the 10 minutes lru-cache keeps them beyond it.
    await clock.advance(TTL + 10 * 60 * 1000 + 1)
    const held = cache.size

    // Enough new bodies (a dozen slabs of 256 KiB) for the slabs to look at what the cache holds.
    for (let i = 0; i < 800; i++) await cache.get(`fresh-${i}`, upstream.load, { ttlMs: TTL })
    await new Promise((resolve) => setImmediate(resolve))

    assert.equal(held, 200)
    assert.equal(cache.size, 800, 'only the live values are held')
    assert.ok(cache.bytes < 900 * 4000, `${cache.bytes} bytes counted`)
  })

  it('does not give up a fetch that runs past its value\'s hard end when it lets go of such values', async () => {
    const { clock, cache } = setup({ maxEntries: 10_000, maxBytes: 64 * 1024 * 1024, maxStaleMs: 0 })
    const slow = new Upstream(clock, 4000)
    const filler = new Upstream(clock, 4000)
    await cache.get('slow', slow.load, { ttlMs: TTL })
    slow.latencyMs = 3000
    slow.version = 2
    await clock.advance(TTL * 0.95)
    await cache.get('slow', slow.load, { ttlMs: TTL }) // a HIT that starts the refresh ahead
    await clock.advance(TTL * 0.1) // the value is past its hard end; the refresh still runs
    const waiting = cache.get('slow', slow.load, { ttlMs: TTL })

    // Enough new bodies for the slabs to look, and the cache to let go of dead values.
    for (let i = 0; i < 800; i++) await cache.get(`fresh-${i}`, filler.load, { ttlMs: TTL })
    await new Promise((resolve) => setImmediate(resolve))
    await clock.advance(3000)
    const read = await waiting

    assert.equal(read.entry.value, 'v2')
    assert.equal(slow.calls, 2, 'the first fetch and the refresh, which the waiting read shared')
    assert.equal((await cache.get('slow', slow.load, { ttlMs: TTL })).outcome, 'HIT')
  })
})

describe('SecretCache, when its entry goes while a reader waits on upstream', () => {
  it('answers every reader of a cache of one entry, though each new key evicts the fetch before it', async () => {
    const { clock, cache, upstream } = setup({ maxEntries: 1 })
    upstream.latencyMs = 300
    const reads = ['a', 'b', 'c'].map(async (key) => cache.get(key, upstream.load, { ttlMs: TTL }))
    const answers = Promise.all(reads)
    await settle()
    await clock.advance(300)
    await clock.advance(300)
    const results = await answers
    assert.deepEqual(results.map((r) => [r.entry.value, r.outcome]), [['v1', 'MISS'], ['v1', 'MISS'], ['v1', 'MISS']])
    // a's and b's fetches were given up by the cache: each is asked once more, c's is not.
    assert.equal(upstream.calls, 5)
  })

  /** A read of 'k' that waits 300 ms on upstream, with `meanwhile` done while it waits. */
  const readWhile = async (meanwhile: (cache: SecretCache, upstream: Upstream) => void): Promise<{ result: Awaited<ReturnType<SecretCache['get']>>, upstream: Upstream }> => {
    const { clock, cache, upstream } = setup()
    upstream.latencyMs = 300
    const read = cache.get('k', upstream.load, { ttlMs: TTL })
    await settle()
    meanwhile(cache, upstream)
    await clock.advance(300)
    await clock.advance(300)
    return { result: await read, upstream }
  }

  it('answers a reader with the value stored meanwhile (a batch-get), without asking upstream again', async () => {
    const { result, upstream } = await readWhile((cache) => { cache.set('k', { body: Buffer.from('from a batch'), value: 'batch' }, TTL) })
    assert.equal(result.entry.value, 'batch')
    assert.equal(upstream.calls, 1)
  })

  it('asks upstream again for a reader whose entry a store edit cleared', async () => {
    const { result, upstream } = await readWhile((cache, upstream) => { upstream.version = 2; cache.clear() })
    assert.equal(result.entry.value, 'v2')
    assert.equal(upstream.calls, 2)
  })
})

describe('SecretCache.failed, stale and backingOff, for a batch that asks upstream itself', () => {
  it('serves the value after a failed call, to its TTL\'s end with stale-if-error off, and holds the key back until the backoff passes', async () => {
    const { clock, cache, upstream } = setup({ staleIfError: false, backoffBaseMs: 1000, backoffMaxMs: 1000 })
    await cache.get('k', upstream.load, { ttlMs: TTL })
    await clock.advance(TTL / 2)
    assert.equal(cache.backingOff('k'), undefined, 'no failure yet')
    cache.failed('k')
    assert.equal(cache.stale<string>('k')?.entry.value, 'v1')
    assert.equal(cache.backingOff<string>('k')?.outcome, 'STALE', 'within the backoff (750 ms here)')
    await clock.advance(750)
    assert.equal(cache.backingOff('k'), undefined, 'the backoff has passed')
    await clock.advance(TTL / 2)
    assert.equal(cache.stale('k'), undefined, 'past the TTL, with stale-if-error off')
  })
})

describe('SecretCache.hit, given the time the caller read', () => {
  it('takes it as the cache\'s now on the real clock, and keeps a fake clock\'s own time', async () => {
    let calls = 0
    const load = async (): Promise<Cached<string>> => { calls += 1; return { body: Buffer.from('v1'), value: 'v1' } }
    const real = new SecretCache({ maxEntries: 10, maxBytes: 1024 * 1024, maxStaleMs: 0, staleIfError: true })
    await real.get('k', load, { ttlMs: TTL })
    const at = performance.now()
    assert.equal(real.hit('k', load, { ttlMs: TTL }, at + 5_000)?.ageSeconds, 5)
    assert.equal(real.hit('k', load, { ttlMs: TTL }, at + TTL + 1), undefined)
    assert.equal(real.hit('k', load, { ttlMs: TTL })?.ageSeconds, 0)
    assert.equal(calls, 1)

    const { clock, cache: faked, upstream } = setup()
    await faked.get('k', upstream.load, { ttlMs: TTL })
    await clock.advance(3_000)
    assert.equal(faked.hit('k', upstream.load, { ttlMs: TTL }, performance.now() + 9_000)?.ageSeconds, 3)
  })
})

describe('SecretCache, when a loader fails unexpectedly', () => {
  it('never lets an error in a background refresh escape as an unhandled rejection', async () => {
    const unhandled: unknown[] = []
    const onUnhandled = (reason: unknown): void => { unhandled.push(reason) }
    process.on('unhandledRejection', onUnhandled)
    try {
      const { clock, cache, upstream } = setup()
      await cache.get('k', upstream.load, { ttlMs: TTL })
      upstream.failure = new TypeError('a bug in a loader')
      await clock.advance(TTL * 0.95)
      assert.equal((await cache.get('k', upstream.load, { ttlMs: TTL })).outcome, 'HIT')
      await settle()
      // The bug is not a reason to keep serving: the entry is gone, and the next read says so.
      await assert.rejects(cache.get('k', upstream.load, { ttlMs: TTL }), TypeError)
      await settle()
      assert.deepEqual(unhandled, [])
    } finally {
      process.off('unhandledRejection', onUnhandled)
    }
  })
})

describe('cacheKey', () => {
  it('treats an omitted stage without a version id as AWSCURRENT', () => {
    assert.equal(cacheKey('secret', 'a'), cacheKey('secret', 'a', { versionStage: 'AWSCURRENT' }))
    assert.notEqual(cacheKey('secret', 'a', { versionId: 'v' }), cacheKey('secret', 'a', { versionId: 'v', versionStage: 'AWSCURRENT' }))
  })

  it('keeps a name and its ARN, and decrypted and not, apart', () => {
    assert.notEqual(cacheKey('secret', 'a'), cacheKey('secret', 'arn:aws:secretsmanager:r:1:secret:a-AbCdEf'))
    assert.notEqual(cacheKey('parameter', '/p', { withDecryption: true }), cacheKey('parameter', '/p', { withDecryption: false }))
    assert.notEqual(cacheKey('secret', 'a"b'), cacheKey('secret', 'a', { versionId: 'b' }))
  })
})
