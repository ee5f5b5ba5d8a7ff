import assert from 'node:assert/strict'
import { afterEach, beforeEach, describe, it } from 'node:test'
import type { Fault } from '../support/fake-aws.js'
import { openAwsApp, type AwsApp } from '../support/aws-app.js'

/**
 * Every upstream fault the fake can make, on a cold key (nothing cached: the documented status)
 * and on a warm one past its TTL (the last good value, marked STALE), for secrets and parameters.
 */
const TIMEOUT_MS = 250
const TTL_S = 60

const FAULTS: Array<{ name: string, fault: Fault, cold: number, type?: string }> = [
  { name: 'throttling', fault: { kind: 'throttle' }, cold: 429, type: 'ThrottlingException' },
  { name: 'a 500', fault: { kind: 'error500' }, cold: 502 },
  { name: 'a slow answer past the timeout', fault: { kind: 'latency', ms: 2000 }, cold: 504 },
  { name: 'a connection reset', fault: { kind: 'reset' }, cold: 502 },
  { name: 'malformed JSON', fault: { kind: 'malformed' }, cold: 502 },
  { name: 'expired credentials', fault: { kind: 'expiredCredentials' }, cold: 403 }
]

const ROUTES = [
  { kind: 'secret', url: '/secretsmanager/get?secretId=app/db', operation: 'GetSecretValue', value: 'pw-Mx81' },
  { kind: 'parameter', url: '/systemsmanager/parameters/get?name=/app/level', operation: 'GetParameter', value: 'level-info-7' }
]

describe('fault matrix: (fault) × (cold, warm)', () => {
  let h: AwsApp
  beforeEach(async () => {
    h = await openAwsApp({
      provider: { secretsManagerTimeoutMillis: TIMEOUT_MS, ssmParameterStoreTimeoutMillis: TIMEOUT_MS },
      secretsTtlSeconds: TTL_S,
      parametersTtlSeconds: TTL_S
    })
    h.fake.putSecret({ name: 'app/db', secretString: '{"password":"pw-Mx81"}' })
    h.fake.putParameter({ name: '/app/level', value: 'level-info-7', type: 'String' })
  })
  afterEach(async () => { await h.close() })

  const get = async (url: string): Promise<{ statusCode: number, headers: Record<string, unknown>, body: string }> =>
    h.app.inject({ method: 'GET', url, headers: h.auth })

  for (const route of ROUTES) {
    for (const { name, fault, cold, type } of FAULTS) {
      it(`${route.kind}, cold, ${name}: answers ${cold}${type === undefined ? '' : ` ${type}`} with no value`, async () => {
        h.fake.inject(fault, { operation: route.operation })
        const answer = await get(route.url)
        assert.equal(answer.statusCode, cold, answer.body)
        const body = JSON.parse(answer.body) as { __type: string }
        if (type !== undefined) assert.equal(body.__type, type)
        if (cold === 429) assert.ok(Number(answer.headers['retry-after']) >= 1)
        assert.ok(!answer.body.includes(route.value))
      })

      it(`${route.kind}, warm, ${name}: serves the last good value marked STALE`, async () => {
        const first = await get(route.url)
        assert.equal(first.statusCode, 200)
        h.clock.advance((TTL_S + 1) * 1000)
        h.fake.inject(fault, { operation: route.operation })
        const calls = h.fake.count(route.operation)
        const answer = await get(route.url)
        assert.equal(answer.statusCode, 200, answer.body)
        assert.equal(answer.headers['x-cache'], 'STALE')
        assert.ok(answer.body.includes(route.value))
        assert.equal(h.fake.count(route.operation), calls + 1, 'one refresh was tried')
        // Within the backoff, further reads are answered stale at once, without calling upstream.
        const again = await get(route.url)
        assert.equal(again.headers['x-cache'], 'STALE')
        assert.equal(h.fake.count(route.operation), calls + 1)
      })
    }
  }
})
