import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { startAgent, type RunningAgent } from '../../src/agent.js'
import { loadConfig } from '../../src/config/index.js'
import { createLogger } from '../../src/logger.js'
import { loadToken } from '../../src/token.js'
import { eventually } from '../support/agent.js'

/**
 * Every value below is distinctive, so that finding one in the logs cannot be a coincidence.
 * The test drives a full scenario through the agent as `serve` wires it (startAgent, the real
 * logger with its redaction, at trace level), then looks for each of them in everything logged.
 */
const SECRET_STRING = 'sv-string-Q7x2mWk'
const JSON_PASSWORD = 'sv-json-pass-H3n8Lq'
const JSON_PREVIOUS = 'sv-json-prev-Z5c1Rt'
const BINARY = Buffer.from('sv-binary-bytes-J9d4Vp')
const SECURE_PARAMETER = 'pv-secure-N6b3Ys'
const SECURE_OLD = 'pv-secure-old-D2f7Gu'
const STRING_PARAMETER = 'pv-plain-K8w5Ea'
const REFERENCE_SECRET = 'sv-reference-X1j6Oi'
const RELOADED_SECRET = 'sv-reloaded-C4h9Pm'
const BROKEN_SECRET = 'sv-broken-file-B7k2Nz'
const TOKEN = 'tok-valid-F5r8Tq2LmA'
const ROTATED_TOKEN = 'tok-rotated-V3n6Hs9Wd'
const WRONG_TOKENS = ['tok-wrong-A9s4Jd', 'tok-vault-wrong-M2p7Kc', 'tok-bearer-wrong-U6e1Xf', 'tok-query-wrong-R4t8Ob']
const KMS_PLAINTEXT = 'kms-plain-G1y5Cn'
const ENVELOPE_PLAINTEXT = 'env-plain-W7q3Ii'

const IDS = ['app/string', 'app/json', 'app/binary', 'app/reference-target', 'app/missing', '/app/secure', '/app/plain', '/app/nested/deep', '/app/none']

const STORE = `secrets:
  app/string: ${SECRET_STRING}
  app/json:
    versions:
      - stages: [AWSCURRENT]
        json: { username: app, password: ${JSON_PASSWORD} }
      - stages: [AWSPREVIOUS]
        json: { username: app, password: ${JSON_PREVIOUS} }
  app/binary:
    binary: ${BINARY.toString('base64')}
  app/reference-target: ${REFERENCE_SECRET}
parameters:
  /app/plain: ${STRING_PARAMETER}
  /app/list: { type: StringList, value: "a,b" }
  /app/secure:
    type: SecureString
    versions:
      - value: ${SECURE_OLD}
      - value: ${SECURE_PARAMETER}
        labels: [live]
  /app/nested/deep: { type: SecureString, value: ${SECURE_PARAMETER}-deep }
`

interface Answer { status: number, body: string, json: Record<string, unknown> }

describe('logs', () => {
  let dir: string
  let agent: RunningAgent
  let captured = ''
  /** Plaintexts and data keys that only exist once the agent has made them. */
  const produced: string[] = []
  const statuses = new Map<string, number>()
  let token = TOKEN

  const call = async (what: string, path: string, init: { method?: string, headers?: Record<string, string>, body?: string } = {}): Promise<Answer> => {
    const headers = init.headers ?? { 'X-Aws-Parameters-Secrets-Token': token, ...(init.body === undefined ? {} : { 'content-type': 'application/json' }) }
    const response = await fetch(agent.url + path, { method: init.method ?? 'GET', headers, ...(init.body === undefined ? {} : { body: init.body }) })
    const body = await response.text()
    let json: Record<string, unknown> = {}
    try { json = JSON.parse(body) as Record<string, unknown> } catch { /* text */ }
    statuses.set(what, response.status)
    return { status: response.status, body, json }
  }
  const post = (what: string, path: string, body: unknown): Promise<Answer> => call(what, path, { method: 'POST', body: JSON.stringify(body) })

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sa-logs-'))
    const storeFile = join(dir, 'store.yaml')
    const tokenFile = join(dir, 'token')
    await writeFile(storeFile, STORE)
    await writeFile(tokenFile, `${TOKEN}\n`, { mode: 0o600 })

    // Everything the process writes goes through as usual and is kept as well: pino's lines, and
    // anything that would bypass the logger.
    const sink = new Writable({ write (chunk: Buffer, _encoding, callback) { captured += chunk.toString('utf8'); callback() } })
    const logger = createLogger({ level: 'trace', destination: sink })
    const { config: defaults } = await loadConfig({ env: {}, defaults: { provider: 'local' } })
    const config = {
      ...defaults,
      httpPort: 0,
      store: storeFile,
      tokenFile,
      logLevel: 'trace' as const,
      allow: { ...defaults.allow, kmsKeys: ['alias/aws/ssm', 'alias/secrets-agent/*', 'arn:aws:kms:*'] },
      prefetch: { secrets: ['app/string', 'app/missing'], parameters: ['/app/secure'], parameterPaths: ['/app'] }
    }
    const loaded = await loadToken({ tokenFile, generate: false, fileMode: 0o600, envVariables: [], env: {}, logger })
    agent = await startAgent({ config, token: loaded, logger, env: {} })
    await eventually(() => agent.readiness.state().ready, 5000, 'the agent to be ready')

    await scenario(storeFile, tokenFile)
    // Let the logger's last lines through before the checks read them.
    await agent.close()
    logger.flush()
  })

  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  async function scenario (storeFile: string, tokenFile: string): Promise<void> {
    const { stdout, stderr } = process
    const writes = { out: stdout.write.bind(stdout), err: stderr.write.bind(stderr) }
    const tee = (original: typeof writes.out) => ((chunk: unknown, ...rest: unknown[]) => {
      captured += typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8')
      return (original as (...args: unknown[]) => boolean)(chunk, ...rest)
    }) as typeof writes.out
    stdout.write = tee(writes.out)
    stderr.write = tee(writes.err)
    try {
      await readsThatSucceed()
      await kms()
      await errors()
      await storeReloads(storeFile)
      await tokenRotation(tokenFile)
    } finally {
      stdout.write = writes.out
      stderr.write = writes.err
    }
  }

  async function readsThatSucceed (): Promise<void> {
    await call('secret', '/secretsmanager/get?secretId=app/string')
    await call('secret again (hit)', '/secretsmanager/get?secretId=app/string')
    await call('secret refreshNow', '/secretsmanager/get?secretId=app/string&refreshNow=true')
    await call('secret by /v1/', '/v1/app/json')
    await call('field=', '/secretsmanager/get?secretId=app/json&field=password')
    await call('previous stage field=', '/secretsmanager/get?secretId=app/json&versionStage=AWSPREVIOUS&field=password')
    await call('binary', '/secretsmanager/get?secretId=app/binary')
    await call('batch-get', '/secretsmanager/batch-get?secretId=app/string&secretId=app/json&secretId=app/binary&secretId=app/missing')
    await call('parameter', '/systemsmanager/parameters/get?name=/app/plain')
    await call('StringList', '/systemsmanager/parameters/get?name=/app/list')
    await call('SecureString encrypted', '/systemsmanager/parameters/get?name=/app/secure')
    await call('SecureString decrypted', '/systemsmanager/parameters/get?name=/app/secure&withDecryption=true')
    await call('SecureString by label', '/systemsmanager/parameters/get?name=/app/secure&label=live&withDecryption=true')
    await call('SecureString version 1', '/systemsmanager/parameters/get?name=/app/secure:1&withDecryption=true')
    await call('get-by-path', '/systemsmanager/parameters/get-by-path?path=/app&recursive=true')
    await call('get-by-path decrypted', '/systemsmanager/parameters/get-by-path?path=/app&recursive=true&withDecryption=true')
    await call('reference', '/systemsmanager/parameters/get?name=/aws/reference/secretsmanager/app/reference-target&withDecryption=true')
    await call('ping', '/ping', { headers: {} })
    await call('ready', '/ready', { headers: {} })
  }

  async function kms (): Promise<void> {
    const plaintext = Buffer.from(KMS_PLAINTEXT).toString('base64')
    const encrypted = await post('kms encrypt', '/kms/encrypt', { KeyId: 'alias/aws/ssm', Plaintext: plaintext, EncryptionContext: { purpose: 'logs-test' } })
    await post('kms decrypt', '/kms/decrypt', { CiphertextBlob: encrypted.json.CiphertextBlob, EncryptionContext: { purpose: 'logs-test' } })
    await post('kms decrypt, wrong context', '/kms/decrypt', { CiphertextBlob: encrypted.json.CiphertextBlob, EncryptionContext: { purpose: 'other' } })
    const dataKey = await post('generate-data-key', '/kms/generate-data-key', { KeyId: 'alias/aws/ssm', KeySpec: 'AES_256' })
    if (typeof dataKey.json.Plaintext === 'string') produced.push(dataKey.json.Plaintext, Buffer.from(dataKey.json.Plaintext, 'base64').toString('hex'))
    await post('kms key refused by the allow-list', '/kms/encrypt', { KeyId: 'alias/not-allowed', Plaintext: plaintext })
    await post('kms unknown key', '/kms/encrypt', { KeyId: 'alias/secrets-agent/none', Plaintext: plaintext })
    await post('kms plaintext over 4 KiB', '/kms/encrypt', { KeyId: 'alias/aws/ssm', Plaintext: Buffer.alloc(4097, KMS_PLAINTEXT).toString('base64') })
    const envelope = await post('envelope encrypt', '/envelope/encrypt', { KeyId: 'alias/secrets-agent/default', Plaintext: Buffer.from(ENVELOPE_PLAINTEXT).toString('base64'), EncryptionContext: { app: 'logs' } })
    await post('envelope decrypt', '/envelope/decrypt', { Ciphertext: envelope.json.Ciphertext, EncryptionContext: { app: 'logs' } })
    await post('envelope decrypt, wrong context', '/envelope/decrypt', { Ciphertext: envelope.json.Ciphertext, EncryptionContext: { app: 'other' } })
    await post('envelope decrypt, garbage', '/envelope/decrypt', { Ciphertext: Buffer.from(ENVELOPE_PLAINTEXT).toString('base64') })
    await call('kms, not JSON', '/kms/encrypt', { method: 'POST', headers: { 'X-Aws-Parameters-Secrets-Token': token, 'content-type': 'text/plain' }, body: KMS_PLAINTEXT })
    await call('kms, broken JSON', '/kms/encrypt', { method: 'POST', headers: { 'X-Aws-Parameters-Secrets-Token': token, 'content-type': 'application/json' }, body: `{"Plaintext": ${KMS_PLAINTEXT}` })
    await call('kms, body too large', '/kms/encrypt', { method: 'POST', body: JSON.stringify({ KeyId: 'alias/aws/ssm', Plaintext: Buffer.alloc(70_000, KMS_PLAINTEXT).toString('base64') }) })
  }

  async function errors (): Promise<void> {
    await call('no token', '/secretsmanager/get?secretId=app/string', { headers: {} })
    await call('wrong token', '/secretsmanager/get?secretId=app/string', { headers: { 'X-Aws-Parameters-Secrets-Token': WRONG_TOKENS[0]! } })
    await call('wrong vault token', '/v1/app/string', { headers: { 'X-Vault-Token': WRONG_TOKENS[1]! } })
    await call('token as bearer', '/secretsmanager/get?secretId=app/string', { headers: { authorization: `Bearer ${WRONG_TOKENS[2]!}` } })
    await call('token in the query', `/secretsmanager/get?secretId=app/string&token=${WRONG_TOKENS[3]!}`)
    await call('missing secret', '/secretsmanager/get?secretId=app/missing')
    await call('missing stage', '/secretsmanager/get?secretId=app/json&versionStage=NOPE')
    await call('missing field', '/secretsmanager/get?secretId=app/json&field=none')
    await call('field= on binary', '/secretsmanager/get?secretId=app/binary&field=x')
    await call('field= on a non-JSON secret', '/secretsmanager/get?secretId=app/string&field=x')
    await call('missing parameter', '/systemsmanager/parameters/get?name=/app/none')
    await call('missing label', '/systemsmanager/parameters/get?name=/app/secure&label=gone&withDecryption=true')
    await call('version and label', '/systemsmanager/parameters/get?name=/app/secure&version=1&label=live')
    await call('reference without decryption', '/systemsmanager/parameters/get?name=/aws/reference/secretsmanager/app/reference-target')
    await call('missing query', '/secretsmanager/get')
    await call('bad refreshNow', '/secretsmanager/get?secretId=app/string&refreshNow=maybe')
    await call('control characters', '/secretsmanager/get?secretId=app%2Fstring%01')
    await call('path without slash', '/systemsmanager/parameters/get-by-path?path=app')
    await call('forwarded', '/secretsmanager/get?secretId=app/string', { headers: { 'X-Aws-Parameters-Secrets-Token': token, 'X-Forwarded-For': '10.0.0.1' } })
    await call('unknown route', '/no/such/route')
    await call('wrong method', '/secretsmanager/get?secretId=app/string', { method: 'POST', body: JSON.stringify({ SecretString: SECRET_STRING }) })
  }

  async function storeReloads (storeFile: string): Promise<void> {
    const waitFor = (pattern: RegExp, what: string): Promise<void> => eventually(() => pattern.test(captured), 3000, what)
    await writeFile(storeFile, `secrets:\n  app/string: "${BROKEN_SECRET}\n  : [${BROKEN_SECRET}\n`)
    await waitFor(/local store not reloaded/, 'the reload of the broken store to fail')
    await call('served from the last good store', '/secretsmanager/get?secretId=app/string')
    await writeFile(storeFile, STORE.replace(SECRET_STRING, RELOADED_SECRET))
    await waitFor(/local store reloaded/, 'the good store to reload')
    await call('served from the reloaded store', '/secretsmanager/get?secretId=app/string')
  }

  async function tokenRotation (tokenFile: string): Promise<void> {
    await writeFile(tokenFile, `${ROTATED_TOKEN}\n`)
    await eventually(() => /token file changed/.test(captured), 3000, 'the rotated token')
    token = ROTATED_TOKEN
    await call('with the rotated token', '/secretsmanager/get?secretId=app/string')
    await call('with the old token', '/secretsmanager/get?secretId=app/string', { headers: { 'X-Aws-Parameters-Secrets-Token': TOKEN } })
  }

  const lines = (): Array<Record<string, unknown>> => captured.split('\n').filter((l) => l.startsWith('{"level"')).map((l) => JSON.parse(l) as Record<string, unknown>)

  it('went through every route and error path it meant to', () => {
    const expected: Record<string, number> = {
      secret: 200, 'secret by /v1/': 200, 'field=': 200, binary: 200, 'batch-get': 200, 'SecureString decrypted': 200, 'get-by-path decrypted': 200, reference: 200,
      'kms encrypt': 200, 'kms decrypt': 200, 'generate-data-key': 200, 'envelope encrypt': 200, 'envelope decrypt': 200,
      'kms key refused by the allow-list': 403, 'kms unknown key': 404, 'kms plaintext over 4 KiB': 400, 'kms, not JSON': 415, 'kms, broken JSON': 400, 'kms, body too large': 413,
      'no token': 401, 'wrong token': 401, 'wrong vault token': 401, 'token as bearer': 401, 'token in the query': 400,
      'missing secret': 404, 'missing stage': 404, 'missing field': 404, 'field= on binary': 400, 'missing parameter': 404, 'missing label': 404,
      'version and label': 400, 'missing query': 400, 'bad refreshNow': 400, 'control characters': 400, forwarded: 400, 'unknown route': 404, 'wrong method': 405,
      'served from the last good store': 200, 'served from the reloaded store': 200, 'with the rotated token': 200, 'with the old token': 401
    }
    for (const [what, status] of Object.entries(expected)) assert.equal(statuses.get(what), status, what)
    assert.ok((statuses.get('kms decrypt, wrong context') ?? 0) >= 400)
    assert.ok((statuses.get('envelope decrypt, garbage') ?? 0) >= 400)
    assert.ok(lines().some((l) => l.level === 10 || l.level === 20), 'debug lines were captured too')
  })

  it('never carry a secret value, parameter value, token, plaintext or data key, nor their base64', () => {
    const secrets = [
      SECRET_STRING, JSON_PASSWORD, JSON_PREVIOUS, BINARY.toString('utf8'), SECURE_PARAMETER, SECURE_OLD, STRING_PARAMETER, REFERENCE_SECRET,
      RELOADED_SECRET, BROKEN_SECRET, TOKEN, ROTATED_TOKEN, ...WRONG_TOKENS, KMS_PLAINTEXT, ENVELOPE_PLAINTEXT, ...produced
    ]
    const forms = secrets.flatMap((s) => {
      const bytes = Buffer.from(s)
      // Every alignment of the base64: a value inside a larger encoded blob shifts by 0, 1 or 2 bytes.
      const b64 = [0, 1, 2].map((pad) => Buffer.concat([Buffer.alloc(pad), bytes]).toString('base64').slice(pad === 0 ? 0 : 4, -4))
      return [s, ...b64, bytes.toString('base64url').slice(0, -3), bytes.toString('hex')]
    })
    assert.ok(captured.length > 5000, `a full scenario logs a lot (${captured.length} bytes)`)
    for (const form of forms) {
      assert.ok(form.length >= 8)
      const at = captured.indexOf(form)
      assert.equal(at, -1, `found ${JSON.stringify(form)} in the logs: ${captured.slice(Math.max(0, at - 200), at + 100)}`)
    }
  })

  it('writes access lines with route, status and ms, and never the URL or an id', () => {
    const access = lines().filter((l) => l.msg === 'request')
    assert.ok(access.length >= 50, `one access line per request (${access.length})`)
    for (const line of access) {
      assert.equal(typeof line.route, 'string')
      assert.equal(typeof line.status, 'number')
      assert.equal(typeof line.ms, 'number')
      assert.ok(!('url' in line), JSON.stringify(line))
      assert.ok(!JSON.stringify(line).includes('"url"'))
      const text = JSON.stringify(line)
      for (const id of IDS) assert.ok(!text.includes(id), `access line names ${id}: ${text}`)
    }
  })

  it('names ids above debug only in an allow-list refusal, and never logs a URL', () => {
    const allowed = new Set(['KMS key refused by the allow-list', 'local store not reloaded; the last good store stays in service'])
    for (const line of lines().filter((l) => (l.level as number) >= 30 && !allowed.has(String(l.msg)))) {
      const text = JSON.stringify(line)
      for (const id of IDS) assert.ok(!text.includes(id), `a level ${String(line.level)} line names ${id}: ${text}`)
      assert.ok(!/\?(secretId|name|path)=/.test(text), `a line carries a query string: ${text}`)
    }
  })
})
