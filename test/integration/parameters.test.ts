import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  openForTest as open, getWithToken as get, FIXTURE, json, lambdaExtensionResponses, shapeOf
} from '../support/local-app.js'

const JSON_TYPE = 'application/json; charset=utf-8'
const logLevel = FIXTURE.stringParameter
const password = FIXTURE.secureParameter
const db = FIXTURE.jsonSecret
const REFERENCE = `/aws/reference/secretsmanager/${db.name}`

type ParameterBody = Record<string, unknown>

function parameterOf (response: { body: string }): ParameterBody {
  return json(response).Parameter as ParameterBody
}

/** The `Parameter` shapes of the Lambda extension's captured answers whose path matches `filter`. */
async function fixtureShapes (filter: (path: string, parameter: ParameterBody) => boolean): Promise<Array<Record<string, string>>> {
  const fixtures = await lambdaExtensionResponses()
  const shapes = Object.entries(fixtures)
    .filter(([path, body]) => path.startsWith('/systemsmanager/parameters/get?') && body.Parameter !== undefined && filter(path, body.Parameter as ParameterBody))
    .map(([, body]) => shapeOf(body.Parameter as ParameterBody))
  assert.ok(shapes.length > 0, 'the fixture has entries of this kind')
  return shapes
}

describe('GET /systemsmanager/parameters/get', () => {
  it('returns the latest version of a String parameter by name', async (t) => {
    const h = await open(t)

    const response = await get(h, `/systemsmanager/parameters/get?name=${logLevel.name}`)

    assert.equal(response.statusCode, 200)
    assert.equal(response.headers['content-type'], JSON_TYPE)
    assert.equal(response.headers['cache-control'], 'no-store')
    const p = parameterOf(response)
    assert.equal(p.Name, logLevel.name)
    assert.equal(p.Type, 'String')
    assert.equal(p.Value, logLevel.versions[2])
    assert.equal(p.Version, 3)
    assert.equal(p.Selector, null)
    assert.equal(p.SourceResult, null)
    assert.equal(p.DataType, 'text')
    assert.equal(p.ARN, `arn:aws:ssm:us-east-1:000000000000:parameter${logLevel.name}`)
    assert.deepEqual(json(response).ResultMetadata, {})
  })

  it('answers with the keys, types and nulls of the Lambda extension for a plain read', async (t) => {
    const h = await open(t)
    const expected = await fixtureShapes((path, p) => p.Selector === null && p.SourceResult === null)

    const response = await get(h, `/systemsmanager/parameters/get?name=${logLevel.name}`)

    assert.deepEqual(Object.keys(json(response)).sort(), ['Parameter', 'ResultMetadata'])
    for (const shape of expected) assert.deepEqual(shapeOf(parameterOf(response)), shape)
  })

  it('answers with the keys, types and nulls of the Lambda extension for a read with a selector', async (t) => {
    const h = await open(t)
    const expected = await fixtureShapes((path, p) => p.Selector !== null && p.SourceResult === null)

    const response = await get(h, `/systemsmanager/parameters/get?name=${logLevel.name}&version=1`)

    for (const shape of expected) assert.deepEqual(shapeOf(parameterOf(response)), shape)
  })

  it('finds a parameter by its ARN', async (t) => {
    const h = await open(t)
    const arn = `arn:aws:ssm:us-east-1:000000000000:parameter${logLevel.name}`

    const response = await get(h, `/systemsmanager/parameters/get?name=${encodeURIComponent(arn)}`)

    assert.equal(response.statusCode, 200)
    assert.equal(parameterOf(response).Name, logLevel.name)
    assert.equal(parameterOf(response).Value, logLevel.versions[2])
  })

  it('reads the version named by a name:3 selector', async (t) => {
    const h = await open(t)

    const response = await get(h, `/systemsmanager/parameters/get?name=${logLevel.name}:2`)

    assert.equal(response.statusCode, 200)
    assert.equal(parameterOf(response).Value, logLevel.versions[1])
    assert.equal(parameterOf(response).Version, 2)
    assert.equal(parameterOf(response).Selector, ':2')
  })

  it('reads the version carrying the label of a name:Label selector', async (t) => {
    const h = await open(t)

    const response = await get(h, `/systemsmanager/parameters/get?name=${logLevel.name}:Old`)

    assert.equal(response.statusCode, 200)
    assert.equal(parameterOf(response).Value, logLevel.versions[0])
    assert.equal(parameterOf(response).Version, 1)
    assert.equal(parameterOf(response).Selector, ':Old')
  })

  it('reads a selector after an ARN name', async (t) => {
    const h = await open(t)
    const arn = `arn:aws:ssm:us-east-1:000000000000:parameter${logLevel.name}`

    const response = await get(h, `/systemsmanager/parameters/get?name=${arn}:Prod`)

    assert.equal(response.statusCode, 200)
    assert.equal(parameterOf(response).Value, logLevel.versions[2])
    assert.equal(parameterOf(response).Selector, ':Prod')
  })

  it('reads the version of version= and sets Selector ":1" as the Lambda extension does', async (t) => {
    const h = await open(t)

    const response = await get(h, `/systemsmanager/parameters/get?name=${logLevel.name}&version=1`)

    assert.equal(response.statusCode, 200)
    assert.equal(parameterOf(response).Value, logLevel.versions[0])
    assert.equal(parameterOf(response).Version, 1)
    assert.equal(parameterOf(response).Selector, ':1')
  })

  it('reads the version of label= and sets Selector ":Dev" as the Lambda extension does', async (t) => {
    const h = await open(t)

    const response = await get(h, `/systemsmanager/parameters/get?name=${logLevel.name}&label=Dev`)

    assert.equal(response.statusCode, 200)
    assert.equal(parameterOf(response).Value, logLevel.versions[2])
    assert.equal(parameterOf(response).Version, 3)
    assert.equal(parameterOf(response).Selector, ':Dev')
  })

  it('refuses a numeric label= with 400 rather than reading it as a version number', async (t) => {
    // Labels cannot start with a digit (the store refuses them too), so label=1 names nothing;
    // answering version 1 would hand out a value the caller did not ask for.
    const h = await open(t)

    for (const label of ['1', '1a', 'a:b', 'x'.repeat(101), 'with space']) {
      const response = await get(h, `/systemsmanager/parameters/get?name=${logLevel.name}&label=${encodeURIComponent(label)}`)

      assert.equal(response.statusCode, 400, label)
      assert.equal(json(response).__type, 'ValidationException')
    }
  })

  it('answers 400 for both version and label', async (t) => {
    const h = await open(t)

    const response = await get(h, `/systemsmanager/parameters/get?name=${logLevel.name}&version=1&label=Dev`)

    assert.equal(response.statusCode, 400)
    assert.equal(json(response).__type, 'ValidationException')
  })

  it('answers 400 for a selector in the name plus version=', async (t) => {
    const h = await open(t)

    const response = await get(h, `/systemsmanager/parameters/get?name=${logLevel.name}:1&version=1`)

    assert.equal(response.statusCode, 400)
    assert.equal(json(response).__type, 'ValidationException')
  })

  it('answers 400 for a selector in the name plus label=', async (t) => {
    const h = await open(t)

    const response = await get(h, `/systemsmanager/parameters/get?name=${logLevel.name}:Dev&label=Dev`)

    assert.equal(response.statusCode, 400)
  })

  it('answers 400 for version=0', async (t) => {
    const h = await open(t)

    const response = await get(h, `/systemsmanager/parameters/get?name=${logLevel.name}&version=0`)

    assert.equal(response.statusCode, 400)
    assert.equal(json(response).__type, 'ValidationException')
  })

  it('returns a SecureString without decryption as something other than its plaintext', async (t) => {
    const h = await open(t)

    const response = await get(h, `/systemsmanager/parameters/get?name=${password.name}`)

    assert.equal(response.statusCode, 200)
    const p = parameterOf(response)
    assert.equal(p.Type, 'SecureString')
    assert.equal(p.Version, 2)
    assert.equal(typeof p.Value, 'string')
    assert.notEqual(p.Value, password.versions[1])
    for (const plaintext of password.versions) {
      assert.ok(!response.body.includes(plaintext))
      assert.ok(!Buffer.from(p.Value as string, 'base64').includes(Buffer.from(plaintext)))
    }
  })

  it('returns a SecureString with withDecryption=true as its plaintext', async (t) => {
    const h = await open(t)

    const response = await get(h, `/systemsmanager/parameters/get?name=${password.name}&withDecryption=true`)

    assert.equal(response.statusCode, 200)
    assert.equal(parameterOf(response).Value, password.versions[1])
    assert.equal(parameterOf(response).Type, 'SecureString')
  })

  it('does not serve a decrypted SecureString from the cache to a read without decryption', async (t) => {
    const h = await open(t)
    await get(h, `/systemsmanager/parameters/get?name=${password.name}&withDecryption=true`)

    const response = await get(h, `/systemsmanager/parameters/get?name=${password.name}&withDecryption=false`)

    assert.equal(response.statusCode, 200)
    assert.ok(!response.body.includes(password.versions[1]))
  })

  it('decrypts the version a label names', async (t) => {
    const h = await open(t)

    const response = await get(h, `/systemsmanager/parameters/get?name=${password.name}:1&withDecryption=1`)

    assert.equal(parameterOf(response).Value, password.versions[0])
  })

  it('returns a StringList parameter', async (t) => {
    const h = await open(t)

    const response = await get(h, `/systemsmanager/parameters/get?name=${FIXTURE.stringListParameter.name}`)

    assert.equal(response.statusCode, 200)
    assert.equal(parameterOf(response).Type, 'StringList')
    assert.equal(parameterOf(response).Value, FIXTURE.stringListParameter.value)
  })

  it('answers X-Cache: MISS then HIT', async (t) => {
    const h = await open(t)
    const url = `/systemsmanager/parameters/get?name=${logLevel.name}`

    const first = await get(h, url)
    const second = await get(h, url)

    assert.equal(first.headers['x-cache'], 'MISS')
    assert.equal(second.headers['x-cache'], 'HIT')
    assert.match(String(second.headers.age), /^\d+$/)
  })

  it('answers 404 ParameterNotFound for an unknown parameter', async (t) => {
    const h = await open(t)

    const byName = await get(h, '/systemsmanager/parameters/get?name=/no/such/parameter')
    const byArn = await get(h, '/systemsmanager/parameters/get?name=arn:aws:ssm:us-east-1:000000000000:parameter/no/such/parameter')

    for (const response of [byName, byArn]) {
      assert.equal(response.statusCode, 404)
      assert.deepEqual(json(response), { __type: 'ParameterNotFound', message: json(response).message })
    }
  })

  it('answers 404 for a label no version carries', async (t) => {
    const h = await open(t)

    const response = await get(h, `/systemsmanager/parameters/get?name=${logLevel.name}&label=Nope`)

    assert.equal(response.statusCode, 404)
    assert.equal(typeof json(response).__type, 'string')
  })

  it('answers 404 for a version that does not exist', async (t) => {
    const h = await open(t)

    const byQuery = await get(h, `/systemsmanager/parameters/get?name=${logLevel.name}&version=9`)
    const bySelector = await get(h, `/systemsmanager/parameters/get?name=${logLevel.name}:9`)

    assert.equal(byQuery.statusCode, 404)
    assert.equal(bySelector.statusCode, 404)
  })
})

describe('GET /systemsmanager/parameters/get for /aws/reference/secretsmanager/', () => {
  it('returns the secret with withDecryption=true, as the Lambda extension does', async (t) => {
    const h = await open(t)

    const response = await get(h, `/systemsmanager/parameters/get?name=${REFERENCE}&withDecryption=true`)

    assert.equal(response.statusCode, 200)
    const p = parameterOf(response)
    assert.equal(p.Name, REFERENCE)
    assert.equal(p.Type, 'SecureString')
    assert.equal(p.Version, 0)
    assert.equal(p.DataType, null)
    assert.equal(p.Selector, null)
    assert.match(p.ARN as string, /^arn:aws:secretsmanager:us-east-1:000000000000:secret:app\/db\/credentials-/)
    assert.deepEqual(JSON.parse(p.Value as string), db.current.value)
    const source = JSON.parse(p.SourceResult as string) as Record<string, unknown>
    assert.equal(source.ARN, p.ARN)
    assert.equal(source.name, db.name)
    assert.equal(source.versionId, db.current.id)
    assert.deepEqual(source.versionStages, ['AWSCURRENT'])
    assert.equal(source.secretString, p.Value)
  })

  it('answers with the keys, types and nulls of the Lambda extension', async (t) => {
    const h = await open(t)
    const expected = await fixtureShapes((path, p) => p.SourceResult !== null && p.Value !== null && p.Selector === null)

    const response = await get(h, `/systemsmanager/parameters/get?name=${REFERENCE}&withDecryption=true`)

    for (const shape of expected) assert.deepEqual(shapeOf(parameterOf(response)), shape)
  })

  it('answers a binary secret with Value null, in the shape of the Lambda extension', async (t) => {
    const h = await open(t)
    const expected = await fixtureShapes((path, p) => p.SourceResult !== null && p.Value === null)

    const response = await get(h, `/systemsmanager/parameters/get?name=/aws/reference/secretsmanager/${FIXTURE.binarySecret.name}&label=AWSCURRENT&withDecryption=true`)

    assert.equal(response.statusCode, 200)
    for (const shape of expected) assert.deepEqual(shapeOf(parameterOf(response)), shape)
  })

  it('reads the stage a label names', async (t) => {
    const h = await open(t)

    const response = await get(h, `/systemsmanager/parameters/get?name=${REFERENCE}&label=AWSPREVIOUS&withDecryption=true`)

    assert.equal(response.statusCode, 200)
    assert.deepEqual(JSON.parse(parameterOf(response).Value as string), db.previous.value)
    assert.equal(parameterOf(response).Selector, ':AWSPREVIOUS')
  })

  it('reads the version a label= names by a staging label or version id that is no Parameter Store label', async (t) => {
    // Secrets Manager's rules, not Parameter Store's: a stage may begin with a digit, a version id is a UUID.
    const h = await open(t, { storeText: `secrets:\n  rotated:\n    versions:\n      - id: ${db.current.id}\n        stages: [AWSCURRENT]\n        value: now\n      - id: ${db.previous.id}\n        stages: [2024-rotation]\n        value: then\n` })

    for (const label of ['2024-rotation', db.previous.id]) {
      const response = await get(h, `/systemsmanager/parameters/get?name=/aws/reference/secretsmanager/rotated&label=${label}&withDecryption=true`)

      assert.equal(response.statusCode, 200, label)
      assert.equal(parameterOf(response).Value, 'then')
      assert.equal(parameterOf(response).Selector, `:${label}`)
    }
    const colon = await get(h, '/systemsmanager/parameters/get?name=/aws/reference/secretsmanager/rotated&label=a:b&withDecryption=true')
    assert.equal(colon.statusCode, 400)
  })

  it('answers 400 without withDecryption=true, and sends no secret value', async (t) => {
    const h = await open(t)

    const response = await get(h, `/systemsmanager/parameters/get?name=${REFERENCE}`)

    assert.equal(response.statusCode, 400)
    assert.equal(json(response).__type, 'ValidationException')
    assert.ok(!response.body.includes(db.current.value.password))
  })

  it('answers 404 for a secret that does not exist', async (t) => {
    const h = await open(t)

    const response = await get(h, '/systemsmanager/parameters/get?name=/aws/reference/secretsmanager/no/such/secret&withDecryption=true')

    assert.equal(response.statusCode, 404)
  })
})

describe('GET /systemsmanager/parameters/get-by-path', () => {
  function names (response: { body: string }): unknown[] {
    return (json(response).Parameters as ParameterBody[]).map((p) => p.Name)
  }

  it('returns every parameter below the path, sorted, when recursive=true', async (t) => {
    const h = await open(t)

    const response = await get(h, `/systemsmanager/parameters/get-by-path?path=${FIXTURE.tree.root}&recursive=true`)

    assert.equal(response.statusCode, 200)
    assert.equal(response.headers['content-type'], JSON_TYPE)
    assert.equal(response.headers['cache-control'], 'no-store')
    assert.deepEqual(names(response), FIXTURE.tree.all)
  })

  it('returns only the direct children of the path by default', async (t) => {
    const h = await open(t)

    const response = await get(h, `/systemsmanager/parameters/get-by-path?path=${FIXTURE.tree.root}`)

    assert.equal(response.statusCode, 200)
    assert.deepEqual(names(response), FIXTURE.tree.direct)
  })

  it('reads a path with a trailing slash like one without', async (t) => {
    const h = await open(t)

    const response = await get(h, `/systemsmanager/parameters/get-by-path?path=${FIXTURE.tree.root}/&recursive=true`)

    assert.deepEqual(names(response), FIXTURE.tree.all)
  })

  it('answers parameters in the shape of a single get', async (t) => {
    const h = await open(t)
    const single = await get(h, '/systemsmanager/parameters/get?name=/tree/a')

    const response = await get(h, `/systemsmanager/parameters/get-by-path?path=${FIXTURE.tree.root}`)

    assert.deepEqual((json(response).Parameters as ParameterBody[])[0], parameterOf(single))
  })

  it('keeps SecureString values encrypted unless withDecryption=true', async (t) => {
    const h = await open(t)

    const hidden = await get(h, `/systemsmanager/parameters/get-by-path?path=${FIXTURE.tree.root}&recursive=true`)
    const shown = await get(h, `/systemsmanager/parameters/get-by-path?path=${FIXTURE.tree.root}&recursive=true&withDecryption=true`)

    assert.ok(!hidden.body.includes(FIXTURE.tree.secureValue))
    const secure = (json(shown).Parameters as ParameterBody[]).find((p) => p.Name === '/tree/b/s')
    assert.equal(secure?.Value, FIXTURE.tree.secureValue)
  })

  it('returns an empty list for a path with nothing below it', async (t) => {
    const h = await open(t)

    const response = await get(h, '/systemsmanager/parameters/get-by-path?path=/nothing/here&recursive=true')

    assert.equal(response.statusCode, 200)
    assert.deepEqual(json(response), { Parameters: [] })
  })

  it('answers 400 for a path without a leading slash', async (t) => {
    const h = await open(t)

    const response = await get(h, '/systemsmanager/parameters/get-by-path?path=tree&recursive=true')

    assert.equal(response.statusCode, 400)
    assert.equal(json(response).__type, 'ValidationException')
  })

  it('answers 400 for a missing path', async (t) => {
    const h = await open(t)

    const response = await get(h, '/systemsmanager/parameters/get-by-path?recursive=true')

    assert.equal(response.statusCode, 400)
  })
})
