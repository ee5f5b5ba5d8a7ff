import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  openForTest as open, getWithToken as get, FIXTURE, SECRET_VALUES, fakeClock, json, lambdaExtensionResponses, shapeOf, type LocalApp
} from '../support/local-app.js'

const JSON_TYPE = 'application/json; charset=utf-8'
const db = FIXTURE.jsonSecret

/** The ARN the agent gives a secret, read from its own answer. */
async function arnOf (h: LocalApp, name: string): Promise<string> {
  const response = await get(h, `/secretsmanager/get?secretId=${encodeURIComponent(name)}`)
  assert.equal(response.statusCode, 200)
  return json(response).ARN as string
}

function secretString (response: { body: string }): unknown {
  return JSON.parse(json(response).SecretString as string)
}

describe('GET /secretsmanager/get', () => {
  it('returns the AWSCURRENT version when no version is asked for', async (t) => {
    const h = await open(t)

    const response = await get(h, `/secretsmanager/get?secretId=${db.name}`)

    assert.equal(response.statusCode, 200)
    const body = json(response)
    assert.equal(body.Name, db.name)
    assert.equal(body.VersionId, db.current.id)
    assert.deepEqual(body.VersionStages, ['AWSCURRENT'])
    assert.deepEqual(secretString(response), db.current.value)
    assert.equal(body.SecretBinary, null)
    assert.equal(body.CreatedDate, db.createdDate)
    assert.deepEqual(body.ResultMetadata, {})
    assert.match(body.ARN as string, /^arn:aws:secretsmanager:us-east-1:000000000000:secret:app\/db\/credentials-[A-Za-z0-9]{6}$/)
  })

  it('answers with exactly the keys, types and nulls of the Lambda extension for a string secret', async (t) => {
    const h = await open(t)
    const fixtures = await lambdaExtensionResponses()
    const expected = Object.entries(fixtures)
      .filter(([path, body]) => path.startsWith('/secretsmanager/get?') && body.error === undefined && body.SecretBinary === null)
      .map(([, body]) => shapeOf(body))
    assert.ok(expected.length > 0)

    const response = await get(h, `/secretsmanager/get?secretId=${FIXTURE.stringSecret.name}`)

    assert.equal(response.statusCode, 200)
    for (const shape of expected) assert.deepEqual(shapeOf(json(response)), shape)
  })

  it('answers with exactly the keys, types and nulls of the Lambda extension for a binary secret', async (t) => {
    const h = await open(t)
    const fixtures = await lambdaExtensionResponses()
    const expected = Object.entries(fixtures)
      .filter(([path, body]) => path.startsWith('/secretsmanager/get?') && body.error === undefined && body.SecretString === null)
      .map(([, body]) => shapeOf(body))
    assert.ok(expected.length > 0)

    const response = await get(h, `/secretsmanager/get?secretId=${FIXTURE.binarySecret.name}`)

    assert.equal(response.statusCode, 200)
    for (const shape of expected) assert.deepEqual(shapeOf(json(response)), shape)
  })

  it('returns a binary secret as base64 SecretBinary with SecretString null', async (t) => {
    const h = await open(t)

    const response = await get(h, `/secretsmanager/get?secretId=${FIXTURE.binarySecret.name}`)

    assert.equal(response.statusCode, 200)
    const body = json(response)
    assert.equal(body.SecretString, null)
    assert.deepEqual(Buffer.from(body.SecretBinary as string, 'base64'), FIXTURE.binarySecret.bytes)
  })

  it('returns a plain-string secret as it is stored', async (t) => {
    const h = await open(t)

    const response = await get(h, `/secretsmanager/get?secretId=${FIXTURE.stringSecret.name}`)

    assert.equal(response.statusCode, 200)
    assert.equal(json(response).SecretString, FIXTURE.stringSecret.value)
  })

  it('returns the AWSPREVIOUS version when versionStage=AWSPREVIOUS', async (t) => {
    const h = await open(t)

    const response = await get(h, `/secretsmanager/get?secretId=${db.name}&versionStage=AWSPREVIOUS`)

    assert.equal(response.statusCode, 200)
    assert.equal(json(response).VersionId, db.previous.id)
    assert.deepEqual(json(response).VersionStages, ['AWSPREVIOUS'])
    assert.deepEqual(secretString(response), db.previous.value)
  })

  it('returns the version carrying a custom stage when versionStage names it', async (t) => {
    const h = await open(t)

    const response = await get(h, `/secretsmanager/get?secretId=${db.name}&versionStage=${db.blue.stage}`)

    assert.equal(response.statusCode, 200)
    assert.equal(json(response).VersionId, db.blue.id)
    assert.deepEqual(secretString(response), db.blue.value)
  })

  it('returns the version named by versionId', async (t) => {
    const h = await open(t)

    const response = await get(h, `/secretsmanager/get?secretId=${db.name}&versionId=${db.previous.id}`)

    assert.equal(response.statusCode, 200)
    assert.equal(json(response).VersionId, db.previous.id)
    assert.deepEqual(secretString(response), db.previous.value)
  })

  it('takes any versionId of 32 to 64 characters, as AWS does (a ClientRequestToken need not be a UUID)', async (t) => {
    const id = 'rotation_2024.11.30+0000000000001'
    const h = await open(t, { storeText: `secrets:\n  tokened:\n    versions:\n      - id: '${id}'\n        stages: [AWSCURRENT]\n        value: by-token\n` })

    const response = await get(h, `/secretsmanager/get?secretId=tokened&versionId=${encodeURIComponent(id)}`)

    assert.equal(response.statusCode, 200)
    assert.equal(json(response).VersionId, id)
    assert.equal(json(response).SecretString, 'by-token')
    for (const bad of ['short-id', 'x'.repeat(65), `${'x'.repeat(31)}\u0001`]) {
      const refused = await get(h, `/secretsmanager/get?secretId=tokened&versionId=${encodeURIComponent(bad)}`)
      assert.equal(refused.statusCode, 400, JSON.stringify(bad))
      assert.equal(json(refused).__type, 'ValidationException')
    }
  })

  it('returns the version when versionId and versionStage both name it', async (t) => {
    const h = await open(t)

    const response = await get(h, `/secretsmanager/get?secretId=${db.name}&versionId=${db.blue.id}&versionStage=${db.blue.stage}`)

    assert.equal(response.statusCode, 200)
    assert.deepEqual(secretString(response), db.blue.value)
  })

  it('answers 404 when versionId and versionStage name different versions', async (t) => {
    const h = await open(t)

    const response = await get(h, `/secretsmanager/get?secretId=${db.name}&versionId=${db.previous.id}&versionStage=AWSCURRENT`)

    assert.equal(response.statusCode, 404)
    assert.equal(json(response).__type, 'ResourceNotFoundException')
  })

  it('finds a secret by its full ARN', async (t) => {
    const h = await open(t)
    const arn = await arnOf(h, db.name)

    const response = await get(h, `/secretsmanager/get?secretId=${encodeURIComponent(arn)}`)

    assert.equal(response.statusCode, 200)
    assert.equal(json(response).Name, db.name)
    assert.deepEqual(secretString(response), db.current.value)
  })

  it('finds a secret by its partial ARN (without the six-character suffix)', async (t) => {
    const h = await open(t)
    const arn = await arnOf(h, db.name)

    const response = await get(h, `/secretsmanager/get?secretId=${arn.slice(0, -7)}`)

    assert.equal(response.statusCode, 200)
    assert.equal(json(response).ARN, arn)
  })

  it('percent-decodes the secretId', async (t) => {
    const h = await open(t)

    const response = await get(h, `/secretsmanager/get?secretId=${encodeURIComponent(db.name)}&versionStage=AWSPREVIOUS`)

    assert.equal(response.statusCode, 200)
    assert.deepEqual(secretString(response), db.previous.value)
  })

  it('sends JSON with Cache-Control: no-store', async (t) => {
    const h = await open(t)

    const response = await get(h, `/secretsmanager/get?secretId=${db.name}`)

    assert.equal(response.headers['content-type'], JSON_TYPE)
    assert.equal(response.headers['cache-control'], 'no-store')
  })

  it('sends Cache-Control: no-store on an error answer too', async (t) => {
    const h = await open(t)

    const response = await get(h, '/secretsmanager/get?secretId=no/such/secret')

    assert.equal(response.statusCode, 404)
    assert.equal(response.headers['cache-control'], 'no-store')
    assert.equal(response.headers['content-type'], JSON_TYPE)
  })

  it('answers X-Cache: MISS, then HIT for the same secret, with an Age header', async (t) => {
    const h = await open(t)
    const url = `/secretsmanager/get?secretId=${db.name}`

    const first = await get(h, url)
    const second = await get(h, url)

    assert.equal(first.headers['x-cache'], 'MISS')
    assert.equal(first.headers.age, '0')
    assert.equal(second.headers['x-cache'], 'HIT')
    assert.match(String(second.headers.age), /^\d+$/)
    assert.equal(second.body, first.body)
  })

  it('counts Age in whole seconds since the value was fetched', async (t) => {
    const clock = fakeClock()
    const h = await open(t, { now: clock.now })
    const url = `/secretsmanager/get?secretId=${db.name}`
    await get(h, url)

    clock.advance(7_400)
    const response = await get(h, url)

    assert.equal(response.headers['x-cache'], 'HIT')
    assert.equal(response.headers.age, '7')
  })

  it('keeps a version asked by stage apart from the current version in the cache', async (t) => {
    const h = await open(t)
    await get(h, `/secretsmanager/get?secretId=${db.name}`)

    const previous = await get(h, `/secretsmanager/get?secretId=${db.name}&versionStage=AWSPREVIOUS`)

    assert.equal(previous.headers['x-cache'], 'MISS')
    assert.deepEqual(secretString(previous), db.previous.value)
  })

  it('does not go upstream for a second read within the TTL', async (t) => {
    const h = await open(t)
    const calls = h.countSecretCalls()
    const url = `/secretsmanager/get?secretId=${db.name}`
    await get(h, url)

    const response = await get(h, url)

    assert.equal(response.headers['x-cache'], 'HIT')
    assert.equal(calls.count, 1)
  })

  // In any case, as the Secrets Manager Agent takes them: Python's requests sends True.
  for (const value of ['true', 'True', 'TRUE', 'tRuE', '1']) {
    it(`goes upstream again when refreshNow=${value}`, async (t) => {
      // refreshNow is rate-limited to once a second per key: step the cache's clock past that.
      const clock = fakeClock()
      const h = await open(t, { now: clock.now })
      const calls = h.countSecretCalls()
      const url = `/secretsmanager/get?secretId=${db.name}`
      await get(h, url)
      clock.advance(2_000)

      const refreshed = await get(h, `${url}&refreshNow=${value}`)
      const after = await get(h, url)

      assert.equal(refreshed.statusCode, 200)
      assert.equal(calls.count, 2)
      assert.equal(refreshed.headers['x-cache'], 'MISS')
      assert.equal(refreshed.headers.age, '0')
      assert.equal(after.headers['x-cache'], 'HIT')
      assert.equal(calls.count, 2)
    })
  }

  it('accepts refreshNow=false (in any case) and refreshNow=0 as a normal read', async (t) => {
    const h = await open(t)
    const calls = h.countSecretCalls()
    const url = `/secretsmanager/get?secretId=${db.name}`
    await get(h, url)

    for (const value of ['false', 'FaLsE', '0']) {
      assert.equal((await get(h, `${url}&refreshNow=${value}`)).headers['x-cache'], 'HIT', value)
    }
    assert.equal(calls.count, 1)
  })

  for (const value of ['maybe', 'yes', 'truth', '01', '']) {
    it(`answers 400 for refreshNow=${value}, saying what it takes`, async (t) => {
      const h = await open(t)

      const response = await get(h, `/secretsmanager/get?secretId=${db.name}&refreshNow=${value}`)

      assert.equal(response.statusCode, 400)
      assert.equal(json(response).__type, 'ValidationException')
      assert.equal(json(response).message, 'The query parameter "refreshNow" must be true or false (in any case), 1 or 0.')
    })
  }
})

describe('GET /secretsmanager/get?field=', () => {
  it('returns a string field as text/plain', async (t) => {
    const h = await open(t)

    const response = await get(h, `/secretsmanager/get?secretId=${db.name}&field=password`)

    assert.equal(response.statusCode, 200)
    assert.equal(response.headers['content-type'], 'text/plain; charset=utf-8')
    assert.equal(response.headers['cache-control'], 'no-store')
    assert.equal(response.body, db.current.value.password)
  })

  it('returns a number field as its JSON text', async (t) => {
    const h = await open(t)

    const response = await get(h, `/secretsmanager/get?secretId=${db.name}&field=port`)

    assert.equal(response.statusCode, 200)
    assert.equal(response.headers['content-type'], 'text/plain; charset=utf-8')
    assert.equal(response.body, '5432')
  })

  it('returns a boolean field as its JSON text', async (t) => {
    const h = await open(t)

    const response = await get(h, `/secretsmanager/get?secretId=${db.name}&field=enabled`)

    assert.equal(response.body, 'true')
  })

  it('reads the field of the version asked for', async (t) => {
    const h = await open(t)

    const response = await get(h, `/v1/${db.name}?versionStage=AWSPREVIOUS&field=password`)

    assert.equal(response.statusCode, 200)
    assert.equal(response.body, db.previous.value.password)
  })

  it('answers 404 for a field the secret does not have', async (t) => {
    const h = await open(t)

    const response = await get(h, `/secretsmanager/get?secretId=${db.name}&field=nope`)

    assert.equal(response.statusCode, 404)
    assert.equal(response.headers['content-type'], JSON_TYPE)
    assert.equal(json(response).__type, 'ResourceNotFoundException')
  })

  it('answers 404, not an inherited property, for field=constructor', async (t) => {
    const h = await open(t)

    const response = await get(h, `/secretsmanager/get?secretId=${db.name}&field=constructor`)

    assert.equal(response.statusCode, 404)
  })

  it('answers 400 for a binary secret', async (t) => {
    const h = await open(t)

    const response = await get(h, `/secretsmanager/get?secretId=${FIXTURE.binarySecret.name}&field=x`)

    assert.equal(response.statusCode, 400)
    assert.equal(json(response).__type, 'ValidationException')
  })

  it('answers 400 for a secret that is not JSON, without echoing it', async (t) => {
    const h = await open(t)

    const response = await get(h, `/secretsmanager/get?secretId=${FIXTURE.stringSecret.name}&field=x`)

    assert.equal(response.statusCode, 400)
    assert.equal(json(response).__type, 'ValidationException')
    assert.ok(!response.body.includes(FIXTURE.stringSecret.value))
  })
})

describe('GET /v1/{secretId}', () => {
  it('takes the rest of the path as the id, slashes included', async (t) => {
    const h = await open(t)

    const response = await get(h, `/v1/${db.name}`)

    assert.equal(response.statusCode, 200)
    assert.equal(response.headers['content-type'], JSON_TYPE)
    assert.equal(response.headers['cache-control'], 'no-store')
    assert.equal(json(response).Name, db.name)
    assert.deepEqual(secretString(response), db.current.value)
  })

  it('percent-decodes the id, %2F included', async (t) => {
    const h = await open(t)

    const response = await get(h, `/v1/${encodeURIComponent(db.name)}`)

    assert.equal(response.statusCode, 200)
    assert.equal(json(response).Name, db.name)
  })

  it('finds a secret by its full ARN', async (t) => {
    const h = await open(t)
    const arn = await arnOf(h, db.name)

    const response = await get(h, `/v1/${arn}`)

    assert.equal(response.statusCode, 200)
    assert.equal(json(response).ARN, arn)
  })

  it('finds a secret by its percent-encoded partial ARN', async (t) => {
    const h = await open(t)
    const arn = await arnOf(h, db.name)

    const response = await get(h, `/v1/${encodeURIComponent(arn.slice(0, -7))}`)

    assert.equal(response.statusCode, 200)
    assert.equal(json(response).ARN, arn)
  })

  it('honours versionStage and versionId', async (t) => {
    const h = await open(t)

    const byStage = await get(h, `/v1/${db.name}?versionStage=AWSPREVIOUS`)
    const byId = await get(h, `/v1/${db.name}?versionId=${db.blue.id}`)

    assert.deepEqual(secretString(byStage), db.previous.value)
    assert.deepEqual(secretString(byId), db.blue.value)
  })

  it('returns a binary secret as base64 SecretBinary with SecretString null', async (t) => {
    const h = await open(t)

    const response = await get(h, `/v1/${FIXTURE.binarySecret.name}`)

    assert.equal(json(response).SecretString, null)
    assert.deepEqual(Buffer.from(json(response).SecretBinary as string, 'base64'), FIXTURE.binarySecret.bytes)
  })

  it('shares its cache entry with /secretsmanager/get for the same id', async (t) => {
    const h = await open(t)
    const calls = h.countSecretCalls()
    await get(h, `/secretsmanager/get?secretId=${db.name}`)

    const response = await get(h, `/v1/${db.name}`)

    assert.equal(response.headers['x-cache'], 'HIT')
    assert.equal(calls.count, 1)
  })

  it('answers 404 for a secret that does not exist', async (t) => {
    const h = await open(t)

    const response = await get(h, '/v1/no/such/secret')

    assert.equal(response.statusCode, 404)
    assert.equal(json(response).__type, 'ResourceNotFoundException')
  })

  it('takes all that follows a path_prefix without its trailing slash as the id, as the Secrets Manager Agent does', async (t) => {
    const storeText = 'secrets:\n  /prod/db: with-slash-Q1\n  prod/db: without-slash-Q2\n'
    const bare = await open(t, { storeText, pathPrefix: '/v1' })
    const slashed = await open(t, { storeText })

    const leading = await get(bare, '/v1/prod/db')
    const plain = await get(slashed, '/v1/prod/db')

    assert.equal(json(leading).Name, '/prod/db')
    assert.equal(json(leading).SecretString, 'with-slash-Q1')
    assert.equal(json(plain).Name, 'prod/db')
  })
})

describe('GET /secretsmanager/batch-get', () => {
  it('returns several secrets and lists a missing one in Errors as ResourceNotFoundException', async (t) => {
    const h = await open(t)

    const response = await get(h, `/secretsmanager/batch-get?secretId=${db.name}&secretId=no/such/secret&secretId=${FIXTURE.binarySecret.name}&secretId=${FIXTURE.stringSecret.name}`)

    assert.equal(response.statusCode, 200)
    assert.equal(response.headers['content-type'], JSON_TYPE)
    assert.equal(response.headers['cache-control'], 'no-store')
    const body = json(response) as { SecretValues: Array<Record<string, unknown>>, Errors: Array<Record<string, unknown>> }
    assert.deepEqual(body.SecretValues.map((v) => v.Name), [db.name, FIXTURE.binarySecret.name, FIXTURE.stringSecret.name])
    assert.deepEqual(JSON.parse(body.SecretValues[0]?.SecretString as string), db.current.value)
    assert.equal(body.SecretValues[1]?.SecretString, null)
    assert.deepEqual(Buffer.from(body.SecretValues[1]?.SecretBinary as string, 'base64'), FIXTURE.binarySecret.bytes)
    assert.equal(body.SecretValues[2]?.SecretString, FIXTURE.stringSecret.value)
    assert.equal(body.Errors.length, 1)
    assert.equal(body.Errors[0]?.SecretId, 'no/such/secret')
    assert.equal(body.Errors[0]?.ErrorCode, 'ResourceNotFoundException')
    assert.equal(typeof body.Errors[0]?.Message, 'string')
  })

  it('answers 400 for 21 ids', async (t) => {
    const h = await open(t)
    const query = Array.from({ length: 21 }, (_, i) => `secretId=s${i}`).join('&')

    const response = await get(h, `/secretsmanager/batch-get?${query}`)

    assert.equal(response.statusCode, 400)
    assert.equal(json(response).__type, 'ValidationException')
  })

  it('accepts 20 ids', async (t) => {
    const h = await open(t)
    const query = Array.from({ length: 20 }, (_, i) => `secretId=s${i}`).join('&')

    const response = await get(h, `/secretsmanager/batch-get?${query}`)

    assert.equal(response.statusCode, 200)
    assert.equal((json(response).Errors as unknown[]).length, 20)
  })

  it('fills the cache so that a single get of one of its ids afterwards is a HIT', async (t) => {
    const h = await open(t)
    const calls = h.countSecretCalls()
    await get(h, `/secretsmanager/batch-get?secretId=${db.name}&secretId=${FIXTURE.stringSecret.name}`)
    const callsAfterBatch = calls.count

    const single = await get(h, `/secretsmanager/get?secretId=${FIXTURE.stringSecret.name}`)

    assert.equal(callsAfterBatch, 2)
    assert.equal(single.statusCode, 200)
    assert.equal(single.headers['x-cache'], 'HIT')
    assert.equal(json(single).SecretString, FIXTURE.stringSecret.value)
    assert.equal(calls.count, 2)
  })

  it('takes cached secrets from the cache rather than upstream', async (t) => {
    const h = await open(t)
    const calls = h.countSecretCalls()
    await get(h, `/secretsmanager/get?secretId=${db.name}`)

    const response = await get(h, `/secretsmanager/batch-get?secretId=${db.name}&secretId=${FIXTURE.stringSecret.name}`)

    assert.equal((json(response).SecretValues as unknown[]).length, 2)
    assert.equal(calls.count, 2)
  })

  it('names no secret value in Errors', async (t) => {
    const h = await open(t)

    const response = await get(h, '/secretsmanager/batch-get?secretId=a&secretId=b')

    for (const value of SECRET_VALUES) assert.ok(!response.body.includes(value))
  })
})
