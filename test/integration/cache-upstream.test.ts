import assert from 'node:assert/strict'
import { afterEach, describe, it } from 'node:test'
import type { Fault } from '../support/fake-aws.js'
import { openAwsApp, type AwsApp } from '../support/aws-app.js'

/**
 * The cache engine (DESIGN §3) through the HTTP app and the real AWS provider, counting the
 * calls that reach the fake AWS server.
 */
const HOUR = 3_600_000

describe('the cache, counted at the fake AWS server', () => {
  let h: AwsApp | undefined
  afterEach(async () => { await h?.close(); h = undefined })

  const open = async (options: Parameters<typeof openAwsApp>[0] = {}): Promise<AwsApp> => {
    h = await openAwsApp(options)
    h.fake.putSecret({ name: 'app/db', secretString: 'v1-Tq4' })
    return h
  }
  const read = async (app: AwsApp, id = 'app/db'): Promise<{ statusCode: number, headers: Record<string, unknown>, body: string }> =>
    app.app.inject({ method: 'GET', url: `/secretsmanager/get?secretId=${id}`, headers: app.auth })

  it('makes exactly 1 upstream call for 1,000 concurrent reads of one cold key, and all 1,000 get the value', async () => {
    const app = await open()
    app.fake.latencyMs = 100
    const answers = await Promise.all(Array.from({ length: 1000 }, async () => read(app)))
    assert.equal(app.fake.count('GetSecretValue'), 1)
    assert.ok(answers.every((a) => a.statusCode === 200 && a.body.includes('v1-Tq4')))
  })

  it('refreshes a continuously read key ahead of its TTL: with 300 ms upstream latency no read after the first waits, about one call per TTL', async () => {
    // Real time here (the fake's latency is real): TTL 4 s, read every 50 ms for a little over 2
    // TTLs. A refresh starts at 90% of the TTL at the latest, so 300 ms of latency must fit in the
    // last 10% (400 ms): it does, with room for a loaded machine.
    h = await openAwsApp({ secretsTtlSeconds: 4, cache: { now: () => performance.now(), random: Math.random } })
    h.fake.putSecret({ name: 'app/db', secretString: 'v1-Tq4' })
    h.fake.latencyMs = 300
    const outcomes: string[] = []
    const started = performance.now()
    while (performance.now() - started < 8400) {
      outcomes.push(String((await read(h)).headers['x-cache']))
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    assert.equal(outcomes[0], 'MISS')
    assert.deepEqual([...new Set(outcomes.slice(1))], ['HIT'], 'every read after the first was answered from the cache')
    // The first fetch, then one refresh ahead per TTL (started at 75% to 90% of it): 3, or 4 when
    // the third refresh point (at 9 s at the earliest) nearly falls inside the run.
    const calls = h.fake.count('GetSecretValue')
    assert.ok(calls >= 3 && calls <= 4, `upstream calls: ${calls}`)
  })

  const FAULTS: Array<[string, Fault, number, { secretsManagerTimeoutMillis?: number }]> = [
    ['throttled', { kind: 'throttle' }, 429, {}],
    ['failing with 500', { kind: 'error500' }, 502, {}],
    ['timing out', { kind: 'latency', ms: 1000 }, 504, { secretsManagerTimeoutMillis: 50 }]
  ]
  for (const [what, fault, status, provider] of FAULTS) {
    it(`serves the last good value STALE while upstream is ${what} for an hour, backs off, recovers within one retry interval, and answers ${status} past max_stale`, async () => {
      const app = await open({ provider, cache: { maxStaleMs: 2 * HOUR, backoffBaseMs: 1000, backoffMaxMs: 300_000 } })
      assert.equal((await read(app)).statusCode, 200)
      const injected = app.fake.inject(fault, { operation: 'GetSecretValue' })
      const before = app.fake.count('GetSecretValue')
      // A read a minute for an hour. Between reads, real time enough for a background refresh
      // (at the fake, over HTTP) to finish, so the clock does not outrun it.
      const settle = Number(provider.secretsManagerTimeoutMillis ?? 0) + 10
      for (let t = 0; t < HOUR; t += 60_000) {
        app.clock.advance(60_000)
        const answer = await read(app)
        assert.equal(answer.statusCode, 200)
        assert.ok(answer.body.includes('v1-Tq4'))
        if (t >= 300_000) assert.equal(answer.headers['x-cache'], 'STALE')
        await new Promise((resolve) => setTimeout(resolve, settle))
      }
      const retries = app.fake.count('GetSecretValue') - before
      // Backoff doubles from 1 s to a 5 min cap: about 15 tries in the hour, not one per read (60).
      assert.ok(retries >= 8 && retries <= 30, `retries in an hour: ${retries}`)

      injected.remove()
      app.fake.putSecret({ name: 'app/db', secretString: 'v2-Rw9' })
      let waited = 0
      while (!(await read(app)).body.includes('v2-Rw9')) {
        assert.ok(waited <= 300_000, 'fresh value back within one retry interval (5 min)')
        app.clock.advance(10_000)
        waited += 10_000
        await new Promise((resolve) => setTimeout(resolve, 10))
      }

      app.fake.inject(fault, { operation: 'GetSecretValue' })
      app.clock.advance(3 * HOUR)
      const expired = await read(app)
      assert.equal(expired.statusCode, status, expired.body)
      assert.ok(!expired.body.includes('v2-Rw9'))
    })
  }

  it('stops serving a secret deleted upstream at the next refresh (404)', async () => {
    const app = await open()
    assert.equal((await read(app)).statusCode, 200)
    app.fake.deleteSecret('app/db')
    app.clock.advance(301_000)
    const answer = await read(app)
    assert.equal(answer.statusCode, 404)
    assert.ok(!answer.body.includes('v1-Tq4'))
  })

  it('stops serving a secret whose access was revoked at the next refresh ahead (403)', async () => {
    const app = await open()
    assert.equal((await read(app)).statusCode, 200)
    app.fake.denyAccess('app/db')
    app.clock.advance(280_000) // past the refresh point (at most 90% of 300 s), inside the TTL
    assert.equal((await read(app)).headers['x-cache'], 'HIT', 'served while the refresh ahead runs')
    await new Promise((resolve) => setTimeout(resolve, 100))
    const answer = await read(app)
    assert.equal(answer.statusCode, 403)
    assert.ok(!answer.body.includes('v1-Tq4'))
  })

  it('evicts the least recently used past cache_size, by its own accounting', async () => {
    const app = await open({ cache: { maxEntries: 3 } })
    for (const id of ['a', 'b', 'c', 'd']) app.fake.putSecret({ name: id, secretString: `value-${id}` })
    for (const id of ['a', 'b', 'c']) await read(app, id)
    await read(app, 'a')
    await read(app, 'd')
    assert.equal(app.cache.size, 3)
    const before = app.fake.count('GetSecretValue')
    assert.equal((await read(app, 'a')).headers['x-cache'], 'HIT')
    assert.equal((await read(app, 'b')).headers['x-cache'], 'MISS', 'b was the least recently used')
    assert.equal(app.fake.count('GetSecretValue'), before + 1)
  })

  it('answers 200 to each of more concurrent first reads than cache_size holds, each with its own secret', async () => {
    // Each new key's fetch evicts the one before it while both wait on upstream.
    const app = await open({ cache: { maxEntries: 1 } })
    const ids = ['a', 'b', 'c', 'd', 'e']
    for (const id of ids) app.fake.putSecret({ name: id, secretString: `value-${id}` })
    app.fake.latencyMs = 50
    const answers = await Promise.all(ids.map(async (id) => read(app, id)))
    assert.deepEqual(answers.map((a) => a.statusCode), [200, 200, 200, 200, 200])
    assert.deepEqual(answers.map((a) => (JSON.parse(a.body) as { SecretString: string }).SecretString), ids.map((id) => `value-${id}`))
  })

  it('answers a read waiting on upstream with the value a batch-get stored meanwhile', async () => {
    const app = await open()
    const slow = app.fake.inject({ kind: 'latency', ms: 300 }, { operation: 'GetSecretValue' })
    const single = read(app)
    await new Promise((resolve) => setTimeout(resolve, 20))
    const batch = await app.app.inject({ method: 'GET', url: '/secretsmanager/batch-get?secretId=app/db', headers: app.auth })
    assert.equal(batch.statusCode, 200)
    const answer = await single
    slow.remove()
    assert.equal(answer.statusCode, 200)
    assert.ok(answer.body.includes('v1-Tq4'))
  })

  it('evicts by bytes past cache_max_bytes, and serves a value over the bound without caching it', async () => {
    const app = await open({ cache: { maxBytes: 12_000 } })
    for (const id of ['a', 'b', 'c']) app.fake.putSecret({ name: id, secretString: id.repeat(4000) })
    app.fake.putSecret({ name: 'huge', secretString: 'h'.repeat(20_000) })
    for (const id of ['a', 'b', 'c']) await read(app, id)
    assert.ok(app.cache.bytes <= 12_000, `bytes: ${app.cache.bytes}`)
    assert.equal(app.cache.size, 2, 'a went to make room for c')
    for (let i = 0; i < 2; i++) assert.equal((await read(app, 'huge')).statusCode, 200)
    assert.equal(app.fake.count('GetSecretValue', (c) => JSON.stringify(c.input).includes('huge')), 2, 'the oversize value was not cached')
  })
})

describe('batch-get through the cache, counted at the fake AWS server', () => {
  let h: AwsApp | undefined
  afterEach(async () => { await h?.close(); h = undefined })

  const open = async (): Promise<AwsApp> => {
    h = await openAwsApp()
    for (const id of ['a', 'b', 'c']) h.fake.putSecret({ name: id, secretString: `value-${id}` })
    return h
  }
  interface Batch { statusCode: number, values: string[], errors: Array<[string, string]> }
  const batch = async (app: AwsApp, ids: string[], query = ''): Promise<Batch> => {
    const answer = await app.app.inject({ method: 'GET', url: `/secretsmanager/batch-get?${ids.map((id) => `secretId=${id}`).join('&')}${query}`, headers: app.auth })
    if (answer.statusCode !== 200) return { statusCode: answer.statusCode, values: [], errors: [] }
    const body = JSON.parse(answer.body) as { SecretValues: Array<{ SecretString: string }>, Errors: Array<{ SecretId: string, ErrorCode: string }> }
    return { statusCode: 200, values: body.SecretValues.map((v) => v.SecretString), errors: body.Errors.map((e) => [e.SecretId, e.ErrorCode]) }
  }
  const read = async (app: AwsApp, id: string): Promise<{ statusCode: number, headers: Record<string, unknown>, body: string }> =>
    app.app.inject({ method: 'GET', url: `/secretsmanager/get?secretId=${id}`, headers: app.auth })
  const batchCalls = (app: AwsApp): number => app.fake.count('BatchGetSecretValue')

  it('makes 1 upstream call for 50 concurrent identical batch-gets of cold ids', async () => {
    const app = await open()
    app.fake.latencyMs = 100
    const answers = await Promise.all(Array.from({ length: 50 }, async () => batch(app, ['a', 'b'])))
    assert.ok(answers.every((a) => a.statusCode === 200 && a.values.join() === 'value-a,value-b'))
    assert.equal(batchCalls(app), 1)
  })

  it('serves the last good values while upstream fails, lists ids without one in Errors, and answers 502 when no id has one', async () => {
    const app = await open()
    assert.deepEqual((await batch(app, ['a', 'b'])).values, ['value-a', 'value-b'])
    app.fake.inject({ kind: 'error500' })
    app.clock.advance(301_000)
    const stale = await batch(app, ['a', 'b'])
    assert.deepEqual([stale.statusCode, stale.values, stale.errors], [200, ['value-a', 'value-b'], []])
    const partly = await batch(app, ['a', 'c'])
    assert.deepEqual([partly.statusCode, partly.values, partly.errors], [200, ['value-a'], [['c', 'InternalServiceError']]])
    assert.equal((await batch(app, ['c'])).statusCode, 502)
  })

  it('while upstream fails, asks again only once the backoff has passed, serving the last good values meanwhile', async () => {
    const app = await open()
    await batch(app, ['a', 'b'])
    app.fake.inject({ kind: 'error500' })
    app.clock.advance(301_000)
    const before = batchCalls(app)
    for (let i = 0; i < 5; i++) assert.deepEqual((await batch(app, ['a', 'b'])).values, ['value-a', 'value-b'])
    assert.equal(batchCalls(app) - before, 1, 'one failed call, then the backoff (0.5 to 1 s)')
    app.clock.advance(1000)
    assert.deepEqual((await batch(app, ['a', 'b'])).values, ['value-a', 'value-b'])
    assert.equal(batchCalls(app) - before, 2, 'asked again once the backoff had passed')
    assert.equal(app.fake.count('GetSecretValue'), 0)
  })

  it('counts one failed call once in the backoff, however many identical batch-gets shared it', async () => {
    const app = await open()
    await batch(app, ['a', 'b'])
    app.fake.inject({ kind: 'error500' })
    app.fake.latencyMs = 50
    app.clock.advance(301_000)
    const before = batchCalls(app)
    const answers = await Promise.all(Array.from({ length: 20 }, async () => batch(app, ['a', 'b'])))
    assert.ok(answers.every((a) => a.values.join() === 'value-a,value-b'))
    assert.equal(batchCalls(app) - before, 1, 'one shared call')
    app.clock.advance(1000)
    await batch(app, ['a', 'b'])
    assert.equal(batchCalls(app) - before, 2, 'asked again after one failure\'s backoff (0.5 to 1 s), not twenty failures\'')
  })

  it('refreshes ahead the values it reads, so that a batch-get read through the TTLs never waits on upstream', async () => {
    const app = await open()
    await batch(app, ['a', 'b'])
    for (let i = 0; i < 6; i++) {
      app.clock.advance(280_000) // past the refresh point (at most 90 % of 300 s), inside the TTL
      assert.deepEqual((await batch(app, ['a', 'b'])).values, ['value-a', 'value-b'])
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    assert.equal(batchCalls(app), 1, 'only the first batch-get went upstream as a batch')
    assert.equal(app.fake.count('GetSecretValue'), 12, 'each id refreshed once a TTL')
  })

  it('with refreshNow fetches at most once a second, and drops an id upstream no longer has', async () => {
    const app = await open()
    await batch(app, ['a', 'b'])
    await batch(app, ['a', 'b'], '&refreshNow=true')
    assert.equal(batchCalls(app), 1, 'fetched under a second ago')
    app.clock.advance(1000)
    app.fake.deleteSecret('a')
    const refreshed = await batch(app, ['a', 'b'], '&refreshNow=true')
    assert.deepEqual([refreshed.values, refreshed.errors], [['value-b'], [['a', 'ResourceNotFoundException']]])
    assert.equal(batchCalls(app), 2)
    const single = await read(app, 'a')
    assert.equal(single.statusCode, 404)
    assert.ok(!single.body.includes('value-a'))
  })
})
