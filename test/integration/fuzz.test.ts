import assert from 'node:assert/strict'
import { request } from 'node:http'
import { after, before, describe, it } from 'node:test'
import fc from 'fast-check'
import { openLocalApp, SECRET_VALUES, type LocalApp } from '../support/local-app.js'

/**
 * Property tests over the whole HTTP app with generated requests: paths, query strings (repeated
 * keys, odd percent-encodings, huge values), methods, headers and bodies. FUZZ_RUNS sets how many
 * requests each property sends (default 8,000; three properties, so 24,000 per run).
 */
const RUNS = Number(process.env.FUZZ_RUNS ?? 8000)

const KNOWN_PATHS = [
  '/secretsmanager/get', '/secretsmanager/batch-get', '/systemsmanager/parameters/get',
  '/systemsmanager/parameters/get-by-path', '/v1/app/db/credentials', '/v1/', '/ping', '/ready',
  '/kms/encrypt', '/kms/decrypt', '/envelope/encrypt', '/metrics', '/', '/secretsmanager', '/v1'
]
const KNOWN_KEYS = ['secretId', 'versionId', 'versionStage', 'refreshNow', 'field', 'name', 'version', 'label', 'withDecryption', 'path', 'recursive']
const KNOWN_VALUES = ['app/db/credentials', 'app/api-key', 'app/tls/certificate', '/app/config/log-level', '/app/config/db-password', '/tree', 'AWSCURRENT', 'AWSPREVIOUS', 'true', 'false', '1', '0', 'password', 'Dev', '2', '/aws/reference/secretsmanager/app/api-key']

/** Visible ASCII without `#` (the HTTP parser takes nothing else in a request target), plus %XX and broken escapes. */
const urlChar = fc.oneof(
  fc.integer({ min: 0x21, max: 0x7e }).filter((c) => c !== 0x23).map((c) => String.fromCharCode(c)),
  fc.integer({ min: 0, max: 255 }).map((b) => '%' + b.toString(16).padStart(2, '0').toUpperCase()),
  fc.constantFrom('%', '%Z', '%0', '%%', '%u00', '%C0%80', '%E2%82', '%FF%FE', '%00', '%0A', '%0D%0A')
)
const urlText = (max: number): fc.Arbitrary<string> => fc.array(urlChar, { maxLength: max }).map((a) => a.join(''))

const value = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...KNOWN_VALUES) },
  { weight: 4, arbitrary: urlText(30) },
  { weight: 1, arbitrary: fc.integer({ min: 2000, max: 9000 }).map((n) => 'x'.repeat(n)) },
  { weight: 1, arbitrary: fc.constant('') }
)
const query = fc.array(fc.tuple(fc.oneof(fc.constantFrom(...KNOWN_KEYS), urlText(8)), value, fc.boolean()), { maxLength: 6 })
  .map((pairs) => pairs.map(([k, v, bare]) => bare && v === '' ? k : `${k}=${v}`).join('&'))
const path = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...KNOWN_PATHS) },
  { weight: 2, arbitrary: urlText(40).map((p) => '/v1/' + p) },
  { weight: 1, arbitrary: urlText(40).map((p) => '/' + p) }
)
const method = fc.constantFrom('GET', 'GET', 'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS')
const body = fc.option(fc.oneof(fc.string({ maxLength: 200 }), fc.json({ maxDepth: 3 })), { nil: undefined })
const contentType = fc.option(fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=utf-16', 'multipart/form-data; boundary=x'), { nil: undefined })

type TokenChoice = 'valid' | 'valid-vault' | 'wrong' | 'prefix' | 'empty' | 'absent' | 'padded'
const tokenChoice = fc.constantFrom<TokenChoice>('valid', 'valid-vault', 'wrong', 'prefix', 'empty', 'absent', 'padded')
const extraHeaders = fc.dictionary(
  fc.oneof(fc.constantFrom('x-forwarded-for', 'forwarded', 'x-cache', 'accept', 'x-aws-parameters-secrets-token-2', 'content-encoding'), fc.stringMatching(/^x-[a-z-]{1,12}$/)),
  fc.stringMatching(/^[ -~]{0,40}$/),
  { maxKeys: 3 }
)

function tokenHeaders (choice: TokenChoice, token: string): Record<string, string> {
  switch (choice) {
    case 'valid': return { 'x-aws-parameters-secrets-token': token }
    case 'valid-vault': return { 'x-vault-token': token }
    case 'wrong': return { 'x-aws-parameters-secrets-token': 'not-the-token' }
    case 'prefix': return { 'x-aws-parameters-secrets-token': token.slice(0, -1) }
    case 'empty': return { 'x-aws-parameters-secrets-token': '' }
    case 'padded': return { 'x-aws-parameters-secrets-token': token + 'x' }
    case 'absent': return {}
  }
}

describe('generated requests (fast-check)', () => {
  let local: LocalApp
  const forbidden = (): string[] => [...SECRET_VALUES, local.token]

  let port = 0
  before(async () => {
    local = await openLocalApp({ watch: false, logLevel: 'none' })
    await local.app.listen({ host: '127.0.0.1', port: 0 })
    const address = local.app.server.address()
    port = typeof address === 'object' && address !== null ? address.port : 0
  })
  after(async () => { await local.close() })

  async function send (m: string, url: string, headers: Record<string, string>, payload: unknown, type: string | undefined): Promise<{ status: number, body: string, contentType: string }> {
    const allHeaders = { ...headers, ...(type === undefined ? {} : { 'content-type': type }) }
    const data = payload === undefined || m === 'GET' || m === 'HEAD' ? undefined : typeof payload === 'string' ? payload : JSON.stringify(payload)
    try {
      const response = await local.app.inject({ method: m as 'GET', url, headers: allHeaders, ...(data === undefined ? {} : { payload: data }) })
      return { status: response.statusCode, body: response.body, contentType: String(response.headers['content-type'] ?? '') }
    } catch (error) {
      // inject() parses the URL with WHATWG rules and refuses some targets (`/\\`) that
      // Node's HTTP server passes on as they are: send those over a real connection.
      if (!(error instanceof TypeError)) throw error
      return sendOverHttp(m, url, allHeaders, data)
    }
  }

  function sendOverHttp (m: string, url: string, headers: Record<string, string>, data: string | undefined): Promise<{ status: number, body: string, contentType: string }> {
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method: m, path: url, headers: { ...headers, connection: 'close' } }, (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => { text += chunk })
        res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: text, contentType: String(res.headers['content-type'] ?? '') }) })
      })
      req.on('error', reject)
      req.end(data)
    })
  }

  function assertErrorShape (status: number, body: string, contentType: string, m: string): void {
    if (status < 400 || m === 'HEAD') return
    assert.match(contentType, /^application\/json; charset=utf-8$/)
    const parsed = JSON.parse(body) as Record<string, unknown>
    assert.deepEqual(Object.keys(parsed).sort(), ['__type', 'message'])
    assert.equal(typeof parsed.__type, 'string')
    assert.equal(typeof parsed.message, 'string')
  }

  it(`never answers 5xx or crashes, and every error is {__type, message} (${RUNS} requests)`, async () => {
    await fc.assert(fc.asyncProperty(method, path, query, tokenChoice, extraHeaders, body, contentType, async (m, p, q, t, extra, payload, type) => {
      const url = q === '' ? p : `${p}?${q}`
      const { status, body: text, contentType: ct } = await send(m, url, { ...extra, ...tokenHeaders(t, local.token) }, payload, type)
      assert.ok(status < 500, `${m} ${url.slice(0, 200)} → ${status} ${text.slice(0, 200)}`)
      assertErrorShape(status, text, ct, m)
    }), { numRuns: RUNS })
  })

  it(`never gives secret bytes without the valid token, on any path (${RUNS} requests)`, async () => {
    const invalid = tokenChoice.filter((t) => t !== 'valid' && t !== 'valid-vault')
    await fc.assert(fc.asyncProperty(method, path, query, invalid, extraHeaders, body, contentType, async (m, p, q, t, extra, payload, type) => {
      delete extra['x-aws-parameters-secrets-token']
      const url = q === '' ? p : `${p}?${q}`
      const { status, body: text, contentType: ct } = await send(m, url, { ...extra, ...tokenHeaders(t, local.token) }, payload, type)
      const bare = url.split('?')[0]
      if (bare !== '/ping' && bare !== '/ready') assert.ok(status === 401 || status === 400 || status === 414 || status === 431, `${m} ${url.slice(0, 200)} → ${status}`)
      for (const secret of forbidden()) assert.ok(!text.includes(secret), `${m} ${url.slice(0, 200)} leaked a secret`)
      assertErrorShape(status, text, ct, m)
    }), { numRuns: RUNS })
  })

  it(`answers reads with a valid token with 200 or a documented 4xx (${RUNS} requests)`, async () => {
    const read = fc.constantFrom('/secretsmanager/get', '/systemsmanager/parameters/get', '/systemsmanager/parameters/get-by-path', '/secretsmanager/batch-get', '/v1/app/db/credentials', '/v1/app/api-key')
    await fc.assert(fc.asyncProperty(read, query, async (p, q) => {
      const url = q === '' ? p : `${p}?${q}`
      const { status, body: text, contentType: ct } = await send('GET', url, tokenHeaders('valid', local.token), undefined, undefined)
      assert.ok([200, 400, 403, 404].includes(status), `GET ${url.slice(0, 200)} → ${status} ${text.slice(0, 200)}`)
      assertErrorShape(status, text, ct, 'GET')
    }), { numRuns: RUNS })
  })
})
