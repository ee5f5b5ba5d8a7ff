import assert from 'node:assert/strict'
import { request } from 'node:http'
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import type { AddressInfo } from 'node:net'
import { pino } from 'pino'
import { loadToken } from '../../src/token.js'
import {
  openForTest as open, FIXTURE, SECRET_VALUES, until, type LocalApp
} from '../support/local-app.js'

const db = FIXTURE.jsonSecret

type Method = 'GET' | 'POST' | 'DELETE' | 'HEAD'

/** Every route of this slice, an unknown path, and ways in that a valid token would answer with a value. */
const PROTECTED: Array<{ method: Method, url: string }> = [
  { method: 'GET', url: `/secretsmanager/get?secretId=${db.name}` },
  { method: 'GET', url: `/secretsmanager/get?secretId=${db.name}&field=password` },
  { method: 'GET', url: `/secretsmanager/get?secretId=${FIXTURE.binarySecret.name}` },
  { method: 'GET', url: `/v1/${FIXTURE.stringSecret.name}` },
  { method: 'HEAD', url: `/v1/${FIXTURE.stringSecret.name}` },
  { method: 'GET', url: `/secretsmanager/batch-get?secretId=${db.name}&secretId=${FIXTURE.stringSecret.name}` },
  { method: 'GET', url: `/systemsmanager/parameters/get?name=${FIXTURE.secureParameter.name}&withDecryption=true` },
  { method: 'GET', url: `/systemsmanager/parameters/get?name=/aws/reference/secretsmanager/${db.name}&withDecryption=true` },
  { method: 'GET', url: `/systemsmanager/parameters/get-by-path?path=${FIXTURE.tree.root}&recursive=true&withDecryption=true` },
  { method: 'POST', url: '/kms/decrypt' },
  { method: 'DELETE', url: `/v1/${db.name}` },
  { method: 'GET', url: '/no/such/route' },
  { method: 'GET', url: '/' }
]

/** Fills the cache with every value, so a refused request could only leak it by a bug. */
async function warm (h: LocalApp): Promise<void> {
  for (const route of PROTECTED) {
    if (route.method === 'GET') await h.app.inject({ method: 'GET', url: route.url, headers: h.auth })
  }
}

function assertRefused (response: { statusCode: number, body: string }, what: string, method: Method = 'GET'): void {
  assert.equal(response.statusCode, 401, what)
  // A HEAD answer has no body to read.
  if (method !== 'HEAD') assert.equal((JSON.parse(response.body) as Record<string, unknown>).__type, 'UnauthorizedException', what)
  for (const value of SECRET_VALUES) assert.ok(!response.body.includes(value), `${what} leaked a secret value`)
}

async function refusedEverywhere (h: LocalApp, headers: Record<string, string>, what: string): Promise<void> {
  for (const route of PROTECTED) {
    const response = await h.app.inject({ method: route.method, url: route.url, headers })
    assertRefused(response, `${what}: ${route.method} ${route.url}`, route.method)
  }
}

describe('the token check', () => {
  it('refuses every route, unknown paths included, when the header is missing', async (t) => {
    const h = await open(t)
    await warm(h)

    await refusedEverywhere(h, {}, 'no header')
  })

  it('refuses every route when the header is empty', async (t) => {
    const h = await open(t)
    await warm(h)

    await refusedEverywhere(h, { 'X-Aws-Parameters-Secrets-Token': '' }, 'empty header')
  })

  it('refuses every route for a wrong token of the same length', async (t) => {
    const h = await open(t)
    await warm(h)
    const wrong = h.token.slice(0, -1) + (h.token.endsWith('0') ? '1' : '0')

    await refusedEverywhere(h, { 'X-Aws-Parameters-Secrets-Token': wrong }, 'wrong value')
  })

  it('refuses a prefix or a suffix of the token, and the token with more around it', async (t) => {
    const h = await open(t)
    await warm(h)
    const candidates = [h.token.slice(0, -1), h.token.slice(1), h.token.slice(0, 8), `${h.token}x`, `x${h.token}`, `${h.token} ${h.token}`]

    for (const candidate of candidates) {
      await refusedEverywhere(h, { 'X-Aws-Parameters-Secrets-Token': candidate }, `candidate of length ${candidate.length}`)
      await refusedEverywhere(h, { 'X-Vault-Token': candidate }, `X-Vault-Token candidate of length ${candidate.length}`)
    }
  })

  it('accepts the token in X-Aws-Parameters-Secrets-Token', async (t) => {
    const h = await open(t)

    const response = await h.app.inject({ method: 'GET', url: `/v1/${FIXTURE.stringSecret.name}`, headers: { 'X-Aws-Parameters-Secrets-Token': h.token } })

    assert.equal(response.statusCode, 200)
    assert.equal(JSON.parse(response.body).SecretString, FIXTURE.stringSecret.value)
  })

  it('accepts the token in X-Vault-Token', async (t) => {
    const h = await open(t)

    const response = await h.app.inject({ method: 'GET', url: `/v1/${FIXTURE.stringSecret.name}`, headers: { 'X-Vault-Token': h.token } })

    assert.equal(response.statusCode, 200)
    assert.equal(JSON.parse(response.body).SecretString, FIXTURE.stringSecret.value)
  })

  it('accepts the token in X-Vault-Token when the first header holds a wrong one', async (t) => {
    const h = await open(t)

    const response = await h.app.inject({ method: 'GET', url: `/v1/${FIXTURE.stringSecret.name}`, headers: { 'X-Aws-Parameters-Secrets-Token': 'wrong', 'X-Vault-Token': h.token } })

    assert.equal(response.statusCode, 200)
  })

  it('honours a custom list of token headers, and then refuses the default ones', async (t) => {
    const h = await open(t, { tokenHeaders: ['X-My-Agent-Token'] })

    const custom = await h.app.inject({ method: 'GET', url: `/v1/${FIXTURE.stringSecret.name}`, headers: { 'x-my-agent-token': h.token } })
    const aws = await h.app.inject({ method: 'GET', url: `/v1/${FIXTURE.stringSecret.name}`, headers: { 'X-Aws-Parameters-Secrets-Token': h.token } })
    const vault = await h.app.inject({ method: 'GET', url: `/v1/${FIXTURE.stringSecret.name}`, headers: { 'X-Vault-Token': h.token } })

    assert.equal(custom.statusCode, 200)
    assertRefused(aws, 'default header with a custom list')
    assertRefused(vault, 'vault header with a custom list')
  })

  it('matches header names in any case over a real connection', async (t) => {
    // inject() may normalise names; on the wire they arrive as the client wrote them.
    const h = await open(t)
    await h.app.listen({ host: '127.0.0.1', port: 0 })
    const { port } = h.app.server.address() as AddressInfo
    const url = `/v1/${FIXTURE.stringSecret.name}`

    const variants: Array<Record<string, string>> = [
      { 'X-AWS-PARAMETERS-SECRETS-TOKEN': h.token },
      { 'x-aws-parameters-secrets-token': h.token },
      { 'x-VAULT-token': h.token },
      { 'X-AWS-PARAMETERS-SECRETS-TOKEN': `${h.token}x` }
    ]

    const statuses = await Promise.all(variants.map((headers) => rawGet(port, url, headers)))

    assert.deepEqual(statuses.map((s) => s.status), [200, 200, 200, 401])
    assert.equal(JSON.parse(statuses[0]?.body ?? '').SecretString, FIXTURE.stringSecret.value)
  })

  it('takes the first value of a token header sent twice, as the Secrets Manager Agent does', async (t) => {
    const h = await open(t)
    await h.app.listen({ host: '127.0.0.1', port: 0 })
    const { port } = h.app.server.address() as AddressInfo
    const url = `/v1/${FIXTURE.stringSecret.name}`

    const statuses = await Promise.all([
      rawGet(port, url, { 'X-Aws-Parameters-Secrets-Token': [h.token, h.token] }),
      rawGet(port, url, { 'X-Aws-Parameters-Secrets-Token': [h.token, 'wrong'] }),
      rawGet(port, url, { 'X-Aws-Parameters-Secrets-Token': ['wrong', h.token] })
    ])

    assert.deepEqual(statuses.map((s) => s.status), [200, 200, 401])
    assert.equal(JSON.parse(statuses[0]?.body ?? '').SecretString, FIXTURE.stringSecret.value)
  })

  it('answers /ping with 200 text "healthy" without a token', async (t) => {
    const h = await open(t)

    const response = await h.app.inject({ method: 'GET', url: '/ping' })

    assert.equal(response.statusCode, 200)
    assert.equal(response.body, 'healthy')
    assert.match(String(response.headers['content-type']), /^text\/plain/)
    assert.equal(response.headers['cache-control'], 'no-store')
  })

  it('answers /ready with 200 without a token', async (t) => {
    const h = await open(t)

    const response = await h.app.inject({ method: 'GET', url: '/ready' })

    assert.equal(response.statusCode, 200)
  })

  it('does not let a path that only starts like /ping through without a token', async (t) => {
    const h = await open(t)

    const responses = await Promise.all(['/ping/../v1/app/api-key', '/ping/', '/pingx', '/ready/x'].map((url) => h.app.inject({ method: 'GET', url })))

    for (const response of responses) assertRefused(response, 'a /ping look-alike')
  })

  it('gives the same 401 for a known and an unknown path, so the route map stays hidden', async (t) => {
    const h = await open(t)

    const known = await h.app.inject({ method: 'GET', url: `/secretsmanager/get?secretId=${db.name}` })
    const unknown = await h.app.inject({ method: 'GET', url: '/no/such/route' })
    const wrongMethod = await h.app.inject({ method: 'POST', url: '/secretsmanager/get' })

    assert.equal(known.statusCode, 401)
    assert.equal(unknown.statusCode, 401)
    assert.equal(wrongMethod.statusCode, 401)
    assert.equal(unknown.body, known.body)
    assert.equal(wrongMethod.body, known.body)
    assert.equal(unknown.headers.allow, undefined)
    assert.equal(wrongMethod.headers.allow, undefined)
  })

  it('answers 401 before looking at a malformed path', async (t) => {
    const h = await open(t)

    const response = await h.app.inject({ method: 'GET', url: '/v1/%ZZ' })

    assertRefused(response, 'GET /v1/%ZZ without a token')
  })
})

describe('a token file', () => {
  it('is re-read when replaced by rename: the new token is accepted and the old one refused', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'secrets-agent-token-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    const tokenFile = join(dir, 'token')
    await writeFile(tokenFile, 'old-token-value-1234567890\n', { mode: 0o600 })
    const token = await loadToken({ tokenFile, generate: false, fileMode: 0o600, envVariables: [], env: {}, logger: pino({ level: 'silent' }) })
    t.after(() => token.close())
    const h = await open(t, { token })
    token.watchFile()
    const url = `/v1/${FIXTURE.stringSecret.name}`
    const statusWith = async (value: string): Promise<number> =>
      (await h.app.inject({ method: 'GET', url, headers: { 'X-Aws-Parameters-Secrets-Token': value } })).statusCode
    assert.equal(await statusWith('old-token-value-1234567890'), 200)

    await writeFile(join(dir, 'token.tmp'), '  new-token-value-abcdef  \n', { mode: 0o600 })
    await rename(join(dir, 'token.tmp'), tokenFile)

    await until(async () => await statusWith('new-token-value-abcdef') === 200, 3000)
    assert.equal(await statusWith('old-token-value-1234567890'), 401)
  })
})

async function rawGet (port: number, path: string, headers: Record<string, string | string[]>): Promise<{ status: number, body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }) })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}
