import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { SecretCache } from '../../src/cache/secret-cache.js'
import type { BatchGetSecretsResult, Provider, SecretValue } from '../../src/providers/types.js'
import { Reads } from '../../src/server/reads.js'

const secret = (name: string, value: string): SecretValue => ({
  arn: `arn:aws:secretsmanager:us-east-1:123456789012:secret:${name}-AbCdEf`, name, versionId: 'v1', secretString: value, versionStages: ['AWSCURRENT'], createdDate: new Date(0)
})

/** Reads over a provider whose batch answer each test sets, counting single gets. */
function reads (answer: () => BatchGetSecretsResult): { reads: Reads, cache: SecretCache, singleGets: () => number, advance: (ms: number) => void } {
  let singles = 0
  let now = 1_000_000
  const provider = {
    getSecret: async ({ secretId }: { secretId: string }) => { singles += 1; return secret(secretId, `single-${secretId}`) },
    batchGetSecrets: async () => answer()
  } as unknown as Provider
  const cache = new SecretCache({ maxEntries: 100, maxBytes: 1024 * 1024, maxStaleMs: 60_000, staleIfError: true, now: () => now })
  return { reads: new Reads(provider, cache, { secretsMs: 60_000, parametersMs: 60_000 }), cache, singleGets: () => singles, advance: (ms) => { now += ms } }
}

describe('Reads.batch', () => {
  it('drops a cached secret that upstream says is gone, but keeps one whose region\'s whole call was refused', async () => {
    let answer: BatchGetSecretsResult = { values: [], errors: [] }
    const { reads: r, singleGets, advance } = reads(() => answer)
    await r.secret({ secretId: 'gone' })
    await r.secret({ secretId: 'far' })
    advance(2000) // past refreshNow's once a second
    answer = {
      values: [],
      errors: [
        { secretId: 'gone', errorCode: 'ResourceNotFoundException', message: 'not found', transient: false },
        { secretId: 'far', errorCode: 'AccessDeniedException', message: 'denied', transient: false, whole: true }
      ]
    }

    const result = await r.batch(['gone', 'far'], true)

    assert.deepEqual(result.errors.map((e) => e.secretId), ['gone', 'far'])
    const before = singleGets()
    assert.equal((await r.secret({ secretId: 'far' })).outcome, 'HIT', 'kept: the refusal was of the call, not of the secret')
    assert.equal((await r.secret({ secretId: 'gone' })).outcome, 'MISS', 'dropped: the next read goes upstream')
    assert.equal(singleGets() - before, 1)
  })
})

describe('Reads.batch, answered after the cache learnt something newer', () => {
  /** A batch whose answer (what upstream held when asked) arrives when the test says. */
  function slowBatch (): { reads: Reads, cache: SecretCache, rotate: (value: string) => void, answer: () => void, advance: (ms: number) => void } {
    let now = 1_000_000
    let current = 'v1'
    let release = (): void => {}
    const provider = {
      getSecret: async ({ secretId }: { secretId: string }) => secret(secretId, current),
      batchGetSecrets: async (ids: string[]) => {
        const held = current
        await new Promise<void>((resolve) => { release = resolve })
        return { values: ids.map((id) => secret(id, held)), errors: [] }
      }
    } as unknown as Provider
    const cache = new SecretCache({ maxEntries: 100, maxBytes: 1024 * 1024, maxStaleMs: 60_000, staleIfError: true, now: () => now })
    return {
      reads: new Reads(provider, cache, { secretsMs: 60_000, parametersMs: 60_000 }),
      cache,
      rotate: (value) => { current = value },
      answer: () => { release() },
      advance: (ms) => { now += ms }
    }
  }
  const valueOf = (result: { entry: { body: Buffer } }): unknown => (JSON.parse(result.entry.body.toString()) as { SecretString: unknown }).SecretString

  it('keeps the value a refreshNow fetched while the batch was out, not the batch\'s older one', async () => {
    const { reads: r, rotate, answer, advance } = slowBatch()
    const batch = r.batch(['db'])
    advance(10)
    rotate('v2')
    const refreshed = await r.secret({ secretId: 'db' }, true)
    answer()
    const batched = await batch

    assert.equal(valueOf(refreshed), 'v2')
    assert.equal(batched.values[0]?.secretString, 'v1', 'the batch itself answers what upstream said')
    const next = await r.secret({ secretId: 'db' })
    assert.deepEqual([next.outcome, valueOf(next)], ['HIT', 'v2'])
  })

  it('stores nothing from a batch that was out when the cache was cleared (a store edit)', async () => {
    const { reads: r, cache, rotate, answer, advance } = slowBatch()
    const batch = r.batch(['db'])
    advance(10)
    rotate('v2')
    cache.clear()
    answer()
    await batch

    const next = await r.secret({ secretId: 'db' })
    assert.deepEqual([next.outcome, valueOf(next)], ['MISS', 'v2'])
  })
})
