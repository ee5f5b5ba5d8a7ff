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
