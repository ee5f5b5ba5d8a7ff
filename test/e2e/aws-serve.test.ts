/**
 * `secrets-agent serve --provider aws` (and `dev --provider aws --profile`) as a process, pointed
 * at the fake AWS endpoint through the SDK's own AWS_ENDPOINT_URL, driven over HTTP by fetch and
 * by clients written for the Lambda extension.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, afterEach, before, describe, it } from 'node:test'
import { promisify } from 'node:util'
import { startCli, type CliProcess } from '../support/cli.js'
import { FakeAws } from '../support/fake-aws.js'

const sh = promisify(execFile)
const SESSION_TOKEN = 'e2e-session-token-4f9a'
const PORT_LOG = /"port":(\d+)/

interface Json { [key: string]: unknown }

/** Polls `url` until it answers `status` (and `bodyPattern`), for at most 10 s. */
async function waitForStatus (url: string, status: number, bodyPattern?: RegExp): Promise<string> {
  const end = Date.now() + 10_000
  let last = ''
  for (;;) {
    try {
      const res = await fetch(url)
      last = `${res.status} ${await res.text()}`
      if (res.status === status && (bodyPattern === undefined || bodyPattern.test(last))) return last
    } catch (error) {
      last = String(error)
    }
    if (Date.now() > end) throw new Error(`${url} did not answer ${status} within 10 s; last: ${last}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

describe('secrets-agent serve --provider aws', () => {
  let dir: string
  let fake: FakeAws
  let hasPython = true
  const running: CliProcess[] = []
  const start = (args: string[], env: NodeJS.ProcessEnv): CliProcess => {
    const agent = startCli(args, {
      // Nothing from the developer's own AWS setup may leak into the test.
      AWS_CONFIG_FILE: join(dir, 'no-config'),
      AWS_SHARED_CREDENTIALS_FILE: join(dir, 'no-credentials'),
      XDG_RUNTIME_DIR: join(dir, 'run'),
      XDG_CONFIG_HOME: join(dir, 'config'),
      AWS_ENDPOINT_URL: fake.url,
      ...env
    })
    running.push(agent)
    return agent
  }
  const serveEnv = {
    AWS_ACCESS_KEY_ID: 'AKIDE2E',
    AWS_SECRET_ACCESS_KEY: 'e2e-secret',
    // The Lambda extension's convention: the session token doubles as the agent's token.
    AWS_SESSION_TOKEN: SESSION_TOKEN,
    AWS_REGION: 'us-east-1'
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sa-e2e-aws-'))
    fake = await FakeAws.start({ credentials: { AKIDE2E: 'e2e-secret', AKIDPROFILE: 'profile-secret' } })
    fake.putSecret({ name: 'app/db', secretString: '{"username":"app","password":"pw-e2e-Kq2"}', versionId: '11111111-1111-4111-a111-111111111111' })
    fake.putSecret({ name: 'app/db', secretString: '{"username":"app","password":"pw-e2e-new"}', versionId: '22222222-2222-4222-a222-222222222222' })
    fake.putSecret({ name: 'app/cert', secretBinary: Buffer.from([0, 1, 2, 254, 255]) })
    fake.putParameter({ name: '/app/level', value: 'debug', type: 'String', labels: ['Old'] })
    fake.putParameter({ name: '/app/level', value: 'warn', type: 'String' })
    fake.putParameter({ name: '/app/secure', value: 'secure-e2e-Vb6', type: 'SecureString' })
    fake.putParameter({ name: '/app/tree/a', value: 'ay', type: 'String' })
    fake.putParameter({ name: '/app/tree/b/c', value: 'cee', type: 'String' })
    try {
      await sh('python3', ['--version'], { timeout: 5000 })
    } catch {
      hasPython = false
    }
  })
  afterEach(() => {
    for (const agent of running.splice(0)) agent.kill()
    fake.clearFaults()
  })
  after(async () => {
    await fake.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('answers every read route from AWS, works for Lambda extension clients unchanged, and stops on SIGTERM', async () => {
    const agent = start(['serve', '--provider', 'aws', '--port', '0'], serveEnv)
    const [, port] = await agent.waitFor(PORT_LOG)
    const base = `http://127.0.0.1:${port}`
    await waitForStatus(`${base}/ready`, 200)
    const get = async (path: string): Promise<{ status: number, type: string | null, text: string }> => {
      const res = await fetch(`${base}${path}`, { headers: { 'X-Aws-Parameters-Secrets-Token': SESSION_TOKEN } })
      return { status: res.status, type: res.headers.get('content-type'), text: await res.text() }
    }
    const json = async (path: string): Promise<Json> => {
      const res = await get(path)
      assert.equal(res.status, 200, `${path}: ${res.text}`)
      return JSON.parse(res.text) as Json
    }

    const secret = await json('/secretsmanager/get?secretId=app/db')
    assert.deepEqual(Object.keys(secret).sort(), ['ARN', 'CreatedDate', 'Name', 'ResultMetadata', 'SecretBinary', 'SecretString', 'VersionId', 'VersionStages'])
    assert.equal(secret.SecretString, '{"username":"app","password":"pw-e2e-new"}')
    assert.equal(secret.SecretBinary, null)
    assert.deepEqual(secret.VersionStages, ['AWSCURRENT'])
    assert.match(String(secret.CreatedDate), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
    assert.deepEqual(secret.ResultMetadata, {})
    const previous = await json('/v1/app/db?versionStage=AWSPREVIOUS')
    assert.equal(previous.VersionId, '11111111-1111-4111-a111-111111111111')
    const byArn = await json(`/secretsmanager/get?secretId=${encodeURIComponent(String(secret.ARN))}`)
    assert.equal(byArn.VersionId, secret.VersionId)
    const binary = await json('/secretsmanager/get?secretId=app/cert')
    assert.deepEqual([binary.SecretString, binary.SecretBinary], [null, Buffer.from([0, 1, 2, 254, 255]).toString('base64')])
    const field = await get('/secretsmanager/get?secretId=app/db&field=password')
    assert.deepEqual([field.status, field.text], [200, 'pw-e2e-new'])
    assert.match(field.type ?? '', /^text\/plain/)

    const level = await json('/systemsmanager/parameters/get?name=/app/level')
    assert.deepEqual(level.Parameter, {
      ARN: 'arn:aws:ssm:us-east-1:123456789012:parameter/app/level',
      DataType: 'text',
      LastModifiedDate: (level.Parameter as Json).LastModifiedDate,
      Name: '/app/level',
      Selector: null,
      SourceResult: null,
      Type: 'String',
      Value: 'warn',
      Version: 2
    })
    assert.deepEqual(level.ResultMetadata, {})
    const old = await json('/systemsmanager/parameters/get?name=/app/level&label=Old')
    assert.deepEqual([(old.Parameter as Json).Value, (old.Parameter as Json).Selector], ['debug', ':Old'])
    const v1 = await json('/systemsmanager/parameters/get?name=/app/level&version=1')
    assert.deepEqual([(v1.Parameter as Json).Value, (v1.Parameter as Json).Selector], ['debug', ':1'])
    const sealed = await json('/systemsmanager/parameters/get?name=/app/secure')
    assert.ok(!String((sealed.Parameter as Json).Value).includes('secure-e2e-Vb6'))
    const decrypted = await json('/systemsmanager/parameters/get?name=/app/secure&withDecryption=true')
    assert.equal((decrypted.Parameter as Json).Value, 'secure-e2e-Vb6')
    const reference = await json('/systemsmanager/parameters/get?name=/aws/reference/secretsmanager/app/db&withDecryption=true')
    assert.deepEqual([(reference.Parameter as Json).Value, (reference.Parameter as Json).Version, (reference.Parameter as Json).DataType], [secret.SecretString, 0, null])
    assert.equal(JSON.parse(String((reference.Parameter as Json).SourceResult)).ARN, secret.ARN)
    const tree = await json('/systemsmanager/parameters/get-by-path?path=/app/tree&recursive=true')
    assert.deepEqual((tree.Parameters as Json[]).map((p) => p.Name).sort(), ['/app/tree/a', '/app/tree/b/c'])
    const batch = await json('/secretsmanager/batch-get?secretId=app/db&secretId=app/nope')
    assert.deepEqual((batch.SecretValues as Json[]).map((v) => v.Name), ['app/db'])
    assert.deepEqual((batch.Errors as Json[]).map((e) => [e.SecretId, e.ErrorCode]), [['app/nope', 'ResourceNotFoundException']])
    const missing = await get('/secretsmanager/get?secretId=app/nope')
    assert.equal(missing.status, 404)
    assert.equal((JSON.parse(missing.text) as Json).__type, 'ResourceNotFoundException')

    // A shell client as the Lambda extension's documentation writes it.
    const shell = 'curl -s -H "X-Aws-Parameters-Secrets-Token: $AWS_SESSION_TOKEN" "http://localhost:$PARAMETERS_SECRETS_EXTENSION_HTTP_PORT/secretsmanager/get?secretId=app%2Fdb"'
    const clientEnv = { PATH: process.env.PATH, AWS_SESSION_TOKEN: SESSION_TOKEN, PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: port }
    const { stdout } = await sh('sh', ['-c', shell], { env: clientEnv, timeout: 10_000 })
    assert.equal((JSON.parse(stdout) as Json).SecretString, secret.SecretString)

    if (hasPython) {
      const python = [
        'import json, os, urllib.request',
        'port = os.environ.get("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", "2773")',
        'url = f"http://localhost:{port}/systemsmanager/parameters/get?name=%2Fapp%2Fsecure&withDecryption=true"',
        'request = urllib.request.Request(url, headers={"X-Aws-Parameters-Secrets-Token": os.environ["AWS_SESSION_TOKEN"]})',
        'print(json.loads(urllib.request.urlopen(request, timeout=5).read())["Parameter"]["Value"])'
      ].join('\n')
      const { stdout: printed } = await sh('python3', ['-c', python], { env: clientEnv, timeout: 10_000 })
      assert.equal(printed.trim(), 'secure-e2e-Vb6')
    }

    const calls = fake.calls.filter((c) => c.accessKeyId === 'AKIDE2E')
    assert.ok(calls.length > 0)
    for (const call of calls) {
      assert.match(call.userAgent ?? '', /secrets-agent\/\d+\.\d+\.\d+/)
      assert.equal(call.sessionToken, true)
    }
    assert.ok(calls.some((c) => c.operation === 'GetCallerIdentity'))

    agent.child.kill('SIGTERM')
    assert.equal(await agent.exited(), 0)
  })

  it('reports 503 on /ready when STS says the credentials expired, and turns ready once they are renewed', async () => {
    const expired = fake.inject({ kind: 'expiredCredentials' }, { service: 'sts' })
    const agent = start(['serve', '--provider', 'aws', '--port', '0'], serveEnv)
    const [, port] = await agent.waitFor(PORT_LOG)

    const answer = await waitForStatus(`http://127.0.0.1:${port}/ready`, 503, /expired/)

    assert.match(answer, /credentials are invalid or expired/)
    assert.ok(!answer.includes('arn:aws'))
    // Renewed: the next check (1 s, 2 s, 4 s... after the first) finds them good.
    expired.remove()
    await waitForStatus(`http://127.0.0.1:${port}/ready`, 200)
    agent.child.kill('SIGTERM')
    assert.equal(await agent.exited(), 0)
  })

  it('dev --provider aws --profile reads with the profile\'s credentials and region', async () => {
    const credentials = join(dir, 'dev-credentials')
    const config = join(dir, 'dev-config')
    await writeFile(credentials, '[e2e-dev]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = profile-secret\n')
    await writeFile(config, '[profile e2e-dev]\nregion = us-east-1\n')
    const agent = start(['dev', '--provider', 'aws', '--profile', 'e2e-dev', '--port', '0'], {
      AWS_SHARED_CREDENTIALS_FILE: credentials,
      AWS_CONFIG_FILE: config,
      AWS_TOKEN: 'dev-token-e2e'
    })
    const [, port] = await agent.waitFor(/on http:\/\/127\.0\.0\.1:(\d+)/)
    const before = fake.calls.length

    const res = await fetch(`http://127.0.0.1:${port}/secretsmanager/get?secretId=app/db`, { headers: { 'X-Aws-Parameters-Secrets-Token': 'dev-token-e2e' } })

    assert.equal(res.status, 200)
    assert.equal(((await res.json()) as Json).Name, 'app/db')
    const read = fake.calls.slice(before).find((c) => c.operation === 'GetSecretValue')
    assert.deepEqual([read?.accessKeyId, read?.region], ['AKIDPROFILE', 'us-east-1'])
    agent.child.kill('SIGTERM')
    assert.equal(await agent.exited(), 0)
  })
})
