import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import fc from 'fast-check'
import { FIXTURE, SECRET_VALUES, openLocalApp, type LocalApp } from '../support/local-app.js'

const JSON_TYPE = 'application/json; charset=utf-8'
const db = FIXTURE.jsonSecret
const UNKNOWN_VERSION_ID = '99999999-9999-4999-a999-999999999999'

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH'

interface Case {
  name: string
  method?: Method
  url: string
  /** Headers besides the token; `token: false` sends none. */
  headers?: Record<string, string>
  token?: boolean
  payload?: string
  status: number
  type?: string
}

/** Every error this slice answers: the status, and where we fix it, the `__type`. */
const CASES: Case[] = [
  { name: 'a missing secretId', url: '/secretsmanager/get', status: 400, type: 'ValidationException' },
  { name: 'a missing secretId on batch-get', url: '/secretsmanager/batch-get', status: 400, type: 'ValidationException' },
  { name: 'a missing parameter name', url: '/systemsmanager/parameters/get', status: 400, type: 'ValidationException' },
  { name: 'an empty secretId', url: '/secretsmanager/get?secretId=', status: 400, type: 'ValidationException' },
  { name: 'an empty /v1/ id', url: '/v1/', status: 400, type: 'ValidationException' },
  { name: 'an unknown query parameter', url: `/secretsmanager/get?secretId=${db.name}&bogus=1`, status: 400, type: 'ValidationException' },
  { name: 'an unknown query parameter on /v1/', url: `/v1/${db.name}?secretId=${db.name}`, status: 400, type: 'ValidationException' },
  { name: 'an unknown query parameter on parameters/get', url: `/systemsmanager/parameters/get?name=${FIXTURE.stringParameter.name}&nope=1`, status: 400, type: 'ValidationException' },
  { name: 'a repeated secretId on /secretsmanager/get', url: '/secretsmanager/get?secretId=a&secretId=b', status: 400, type: 'ValidationException' },
  { name: 'a repeated name on parameters/get', url: '/systemsmanager/parameters/get?name=/a&name=/b', status: 400, type: 'ValidationException' },
  { name: 'a secretId of 2049 bytes', url: `/secretsmanager/get?secretId=${'x'.repeat(2049)}`, status: 400, type: 'ValidationException' },
  { name: 'a secretId of 1025 two-byte characters (2050 bytes)', url: `/secretsmanager/get?secretId=${encodeURIComponent('é'.repeat(1025))}`, status: 400, type: 'ValidationException' },
  { name: 'a /v1/ id of 2049 bytes', url: `/v1/${'x'.repeat(2049)}`, status: 400, type: 'ValidationException' },
  { name: 'a percent-encoded /v1/ id of 2050 bytes', url: `/v1/${encodeURIComponent('é'.repeat(1025))}`, status: 400, type: 'ValidationException' },
  { name: 'a parameter name of 2049 bytes', url: `/systemsmanager/parameters/get?name=/${'x'.repeat(2048)}`, status: 400, type: 'ValidationException' },
  { name: 'a secretId with %00', url: '/secretsmanager/get?secretId=a%00b', status: 400, type: 'ValidationException' },
  { name: 'a secretId with %0A', url: '/secretsmanager/get?secretId=a%0Ab', status: 400, type: 'ValidationException' },
  { name: 'a secretId with %7F', url: '/secretsmanager/get?secretId=a%7Fb', status: 400, type: 'ValidationException' },
  { name: 'a /v1/ id with %00', url: '/v1/a%00b', status: 400, type: 'ValidationException' },
  { name: 'a /v1/ id with %0A', url: '/v1/a%0Ab', status: 400, type: 'ValidationException' },
  { name: 'a /v1/ id with %1F', url: '/v1/a%1Fb', status: 400, type: 'ValidationException' },
  { name: 'a parameter name with %0A', url: '/systemsmanager/parameters/get?name=/a%0Ab', status: 400, type: 'ValidationException' },
  { name: 'a batch-get id with %00', url: '/secretsmanager/batch-get?secretId=a&secretId=b%00', status: 400, type: 'ValidationException' },
  { name: 'refreshNow=maybe', url: `/secretsmanager/get?secretId=${db.name}&refreshNow=maybe`, status: 400, type: 'ValidationException' },
  { name: 'withDecryption=yes', url: `/systemsmanager/parameters/get?name=${FIXTURE.secureParameter.name}&withDecryption=yes`, status: 400, type: 'ValidationException' },
  { name: 'a malformed versionId', url: `/secretsmanager/get?secretId=${db.name}&versionId=short`, status: 400, type: 'ValidationException' },
  { name: 'version and label together', url: `/systemsmanager/parameters/get?name=${FIXTURE.stringParameter.name}&version=1&label=Dev`, status: 400, type: 'ValidationException' },
  { name: 'version=0', url: `/systemsmanager/parameters/get?name=${FIXTURE.stringParameter.name}&version=0`, status: 400, type: 'ValidationException' },
  { name: 'field= on a binary secret', url: `/secretsmanager/get?secretId=${FIXTURE.binarySecret.name}&field=a`, status: 400, type: 'ValidationException' },
  { name: 'field= on a secret that is not JSON', url: `/secretsmanager/get?secretId=${FIXTURE.stringSecret.name}&field=a`, status: 400, type: 'ValidationException' },
  { name: 'a get-by-path path without a leading slash', url: '/systemsmanager/parameters/get-by-path?path=tree', status: 400, type: 'ValidationException' },
  { name: 'a reference parameter without decryption', url: `/systemsmanager/parameters/get?name=/aws/reference/secretsmanager/${db.name}`, status: 400, type: 'ValidationException' },
  { name: 'batch-get with 21 ids', url: `/secretsmanager/batch-get?${Array.from({ length: 21 }, (_, i) => `secretId=s${i}`).join('&')}`, status: 400, type: 'ValidationException' },
  { name: 'an X-Forwarded-For header', url: `/secretsmanager/get?secretId=${db.name}`, headers: { 'X-Forwarded-For': '203.0.113.7' }, status: 400, type: 'ForwardedRequestException' },
  { name: 'a Forwarded header', url: `/v1/${db.name}`, headers: { Forwarded: 'for=203.0.113.7' }, status: 400, type: 'ForwardedRequestException' },
  { name: 'an X-Forwarded-For header on parameters/get', url: `/systemsmanager/parameters/get?name=${FIXTURE.secureParameter.name}&withDecryption=true`, headers: { 'x-forwarded-for': '127.0.0.1' }, status: 400, type: 'ForwardedRequestException' },
  { name: 'no token on a secret route', url: `/secretsmanager/get?secretId=${db.name}`, token: false, status: 401, type: 'UnauthorizedException' },
  { name: 'no token on an unknown route', url: '/no/such/route', token: false, status: 401, type: 'UnauthorizedException' },
  { name: 'a wrong token', url: `/v1/${db.name}`, token: false, headers: { 'X-Aws-Parameters-Secrets-Token': 'wrong' }, status: 401, type: 'UnauthorizedException' },
  { name: 'an unknown secret', url: '/secretsmanager/get?secretId=no/such/secret', status: 404, type: 'ResourceNotFoundException' },
  { name: 'an unknown secret on /v1/', url: '/v1/no/such/secret', status: 404, type: 'ResourceNotFoundException' },
  { name: 'an unknown secret ARN', url: '/secretsmanager/get?secretId=arn:aws:secretsmanager:us-east-1:000000000000:secret:nope-AbCdEf', status: 404, type: 'ResourceNotFoundException' },
  { name: 'an unknown versionId', url: `/secretsmanager/get?secretId=${db.name}&versionId=${UNKNOWN_VERSION_ID}`, status: 404, type: 'ResourceNotFoundException' },
  { name: 'an unknown versionStage', url: `/secretsmanager/get?secretId=${db.name}&versionStage=NOPE`, status: 404, type: 'ResourceNotFoundException' },
  { name: 'an unknown parameter', url: '/systemsmanager/parameters/get?name=/no/such/parameter', status: 404, type: 'ParameterNotFound' },
  { name: 'an unknown parameter version', url: `/systemsmanager/parameters/get?name=${FIXTURE.stringParameter.name}&version=42`, status: 404 },
  { name: 'an unknown parameter label', url: `/systemsmanager/parameters/get?name=${FIXTURE.stringParameter.name}:Nope`, status: 404 },
  { name: 'an unknown field', url: `/secretsmanager/get?secretId=${db.name}&field=nope`, status: 404, type: 'ResourceNotFoundException' },
  { name: 'an unknown route with a valid token', url: '/no/such/route', status: 404 },
  { name: 'a path beside the /v1/ prefix with a valid token', url: '/v1', status: 404 }
]

const METHOD_CASES: Case[] = ['/secretsmanager/get?secretId=x', '/v1/x', '/systemsmanager/parameters/get?name=/a', '/systemsmanager/parameters/get-by-path?path=/a', '/secretsmanager/batch-get?secretId=x']
  .flatMap((url) => (['POST', 'PUT', 'DELETE', 'PATCH'] as const).map((method): Case => ({
    name: `${method} ${url.split('?')[0] ?? url}`, method, url, status: 405, type: 'MethodNotAllowedException'
  })))

describe('error answers', () => {
  let h: LocalApp
  before(async () => { h = await openLocalApp() })
  after(async () => { await h.close() })

  async function send (c: Case): Promise<Awaited<ReturnType<LocalApp['app']['inject']>>> {
    return h.app.inject({
      method: c.method ?? 'GET',
      url: c.url,
      headers: { ...(c.token === false ? {} : h.auth), ...c.headers },
      ...(c.payload === undefined ? {} : { payload: c.payload })
    })
  }

  function assessError (response: Awaited<ReturnType<LocalApp['app']['inject']>>, c: Case): Record<string, unknown> {
    assert.equal(response.statusCode, c.status, response.body)
    assert.equal(response.headers['content-type'], JSON_TYPE)
    assert.equal(response.headers['cache-control'], 'no-store')
    const body = JSON.parse(response.body) as Record<string, unknown>
    assert.deepEqual(Object.keys(body).sort(), ['__type', 'message'])
    assert.equal(typeof body.__type, 'string')
    assert.equal(typeof body.message, 'string')
    assert.notEqual(body.message, '')
    if (c.type !== undefined) assert.equal(body.__type, c.type)
    for (const value of SECRET_VALUES) assert.ok(!response.body.includes(value), `the ${c.name} answer holds a secret value`)
    return body
  }

  for (const c of CASES) {
    it(`answers ${c.status} with {__type, message} for ${c.name}`, async () => {
      const response = await send(c)

      assessError(response, c)
    })
  }

  for (const c of METHOD_CASES) {
    it(`answers 405 with an Allow header for ${c.name}`, async () => {
      const response = await send(c)

      assessError(response, c)
      assert.match(String(response.headers.allow), /\bGET\b/)
    })
  }

  for (const payload of ['', '{not json', JSON.stringify({ pad: 'x'.repeat(70_000) })]) {
    it(`answers 405 with an Allow header for a POST with a JSON content type and a body of ${payload.length} bytes to a GET-only path`, async () => {
      const c: Case = { name: 'POST JSON', method: 'POST', url: `/secretsmanager/get?secretId=${db.name}`, headers: { 'Content-Type': 'application/json' }, payload, status: 405, type: 'MethodNotAllowedException' }

      const response = await send(c)

      assessError(response, c)
      assert.equal(response.headers.allow, 'GET, HEAD')
    })
  }

  it('answers a POST with a non-JSON body to a GET-only path with a 4xx in the same shape', async () => {
    const c: Case = { name: 'POST text/plain', method: 'POST', url: `/secretsmanager/get?secretId=${db.name}`, headers: { 'Content-Type': 'text/plain' }, payload: 'hello', status: 0 }

    const response = await send(c)

    assert.ok(response.statusCode >= 400 && response.statusCode < 500, String(response.statusCode))
    assessError(response, { ...c, status: response.statusCode })
  })

  it('answers a GET with an unparseable JSON body without a 5xx', async () => {
    const c: Case = { name: 'GET with bad JSON', url: `/secretsmanager/get?secretId=${db.name}`, headers: { 'Content-Type': 'application/json' }, payload: '{bad', status: 0 }

    const response = await send(c)

    assert.ok(response.statusCode < 500, String(response.statusCode))
  })

  it('accepts a secretId of exactly 2048 bytes (404 for a missing secret, not 400)', async () => {
    const query = await send({ name: '2048 bytes', url: `/secretsmanager/get?secretId=${encodeURIComponent('é'.repeat(1024))}`, status: 404 })
    const path = await send({ name: '2048 bytes', url: `/v1/${'x'.repeat(2048)}`, status: 404 })

    assert.equal(query.statusCode, 404)
    assert.equal(path.statusCode, 404)
  })

  it('answers a malformed percent-encoding in a /v1/ path with 400 in the same {__type, message} shape', async () => {
    const response = await send({ name: '/v1/%ZZ', url: '/v1/%ZZ', status: 400 })

    assessError(response, { name: 'a malformed percent-encoding', url: '/v1/%ZZ', status: 400 })
  })

  it('never answers 5xx, and always JSON, for any secretId or parameter name', async () => {
    const id = fc.string({ unit: 'binary', minLength: 0, maxLength: 40 })

    await fc.assert(fc.asyncProperty(id, fc.constantFrom('secret', 'v1', 'parameter', 'path', 'batch'), async (value, route) => {
      const encoded = encodeURIComponent(value)
      const url = {
        secret: `/secretsmanager/get?secretId=${encoded}`,
        v1: `/v1/${encoded}`,
        parameter: `/systemsmanager/parameters/get?name=${encoded}&withDecryption=true`,
        path: `/systemsmanager/parameters/get-by-path?path=${encoded}&recursive=true`,
        batch: `/secretsmanager/batch-get?secretId=${encoded}&secretId=${db.name}`
      }[route]

      const response = await h.app.inject({ method: 'GET', url, headers: h.auth })

      assert.ok(response.statusCode < 500, `${response.statusCode} for ${url}`)
      assert.doesNotThrow(() => JSON.parse(response.body))
    }), { numRuns: 300 })
  })

  it('never answers 5xx for raw, possibly malformed, paths and query strings', async () => {
    const raw = fc.string({ unit: fc.constantFrom('%', '/', 'a', '0', 'F', 'C', '3', '?', '&', '=', ':', '.', '+', '~', '*'), maxLength: 24 })

    await fc.assert(fc.asyncProperty(raw, fc.constantFrom('/v1/', '/secretsmanager/get?secretId=', '/systemsmanager/parameters/get?name=/'), async (value, prefix) => {
      const response = await h.app.inject({ method: 'GET', url: prefix + value, headers: h.auth })

      assert.ok(response.statusCode < 500, `${response.statusCode} for ${prefix + value}`)
    }), { numRuns: 300 })
  })
})
