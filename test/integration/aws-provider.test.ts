/**
 * The aws provider against the fake endpoint, below the HTTP app: how it reaches AWS (user agent,
 * regions, socket pool, timeouts, proxy, CA bundle, credentials file), readiness, and its keyring.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer, request, type IncomingMessage, type Server } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, afterEach, before, beforeEach, describe, it } from 'node:test'
import { promisify } from 'node:util'
import { buildClient, CommitmentPolicy } from '@aws-crypto/client-node'
import { AwsProvider, type AwsProviderOptions } from '../../src/providers/aws/index.js'
import { AccessDeniedError, NotFoundError, UpstreamError, UpstreamTimeoutError } from '../../src/providers/errors.js'
import { fakeAwsProviderOptions, TEST_VERSION_SUFFIX } from '../support/aws-app.js'
import { FakeAws } from '../support/fake-aws.js'

const run = promisify(execFile)

/** Sets (or, for undefined, removes) process.env variables around `fn`, then restores them. */
async function withEnv<T> (vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]))
  const apply = (values: Record<string, string | undefined>): void => {
    for (const [k, v] of Object.entries(values)) {
      if (v === undefined) Reflect.deleteProperty(process.env, k)
      else process.env[k] = v
    }
  }
  apply(vars)
  try {
    return await fn()
  } finally {
    apply(saved)
  }
}

async function rejection (promise: Promise<unknown>): Promise<Error> {
  try {
    await promise
  } catch (error) {
    assert.ok(error instanceof Error)
    return error
  }
  assert.fail('expected the call to fail')
}

/** What a proxy does for a CONNECT it answers: a connection to the target, piped both ways. */
function openTunnel (req: IncomingMessage, client: Socket, head: Buffer): Socket {
  const [host = '', port = ''] = (req.url ?? '').split(':')
  const upstream = connect(Number(port), host, () => {
    client.write('HTTP/1.1 200 Connection Established\r\n\r\n')
    upstream.write(head)
    upstream.pipe(client)
    client.pipe(upstream)
  })
  upstream.on('error', () => { client.destroy(); upstream.destroy() })
  return upstream
}

async function listen (server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  assert.ok(address !== null && typeof address === 'object')
  return address.port
}

/** A fresh fake AWS server per test, and providers over it that are closed after each test. */
function providersOverFakeAws (): { readonly fake: FakeAws, make: (overrides?: Partial<AwsProviderOptions>) => AwsProvider, closeAfter: (provider: AwsProvider) => void } {
  let fake: FakeAws | undefined
  const providers: AwsProvider[] = []
  beforeEach(async () => { fake = await FakeAws.start() })
  afterEach(async () => {
    for (const p of providers.splice(0)) await p.close()
    await fake?.close()
  })
  const current = (): FakeAws => {
    assert.ok(fake !== undefined, 'the fake AWS server starts in beforeEach')
    return fake
  }
  return {
    get fake () { return current() },
    make: (overrides = {}) => {
      const provider = new AwsProvider(fakeAwsProviderOptions(current(), overrides))
      providers.push(provider)
      return provider
    },
    closeAfter: (provider) => { providers.push(provider) }
  }
}

describe('AwsProvider: reaching AWS', () => {
  const aws = providersOverFakeAws()
  const make = aws.make

  it('signs with the static credentials and adds secrets-agent/<version> to the user agent', async () => {
    aws.fake.putSecret({ name: 's', secretString: 'v' })

    await make().getSecret({ secretId: 's' })

    const [call] = aws.fake.calls
    assert.equal(call?.accessKeyId, 'AKIDTEST')
    assert.ok(call?.userAgent?.includes(TEST_VERSION_SUFFIX), call?.userAgent)
  })

  it('sends a call about an ARN of another region to that region', async () => {
    const provider = make()
    const secretArn = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:elsewhere-AbCdEf'

    await rejection(provider.getSecret({ secretId: secretArn }))
    await rejection(provider.getParameter({ name: 'arn:aws:ssm:eu-west-2:123456789012:parameter/far', withDecryption: false }))
    await rejection(provider.getParameter({ name: `/aws/reference/secretsmanager/${secretArn}`, withDecryption: true }))
    await rejection(provider.encrypt({ keyId: 'arn:aws:kms:ap-south-1:123456789012:key/00000000-0000-0000-0000-000000000000', plaintext: Buffer.from('x') }))
    await provider.batchGetSecrets(['local-name', secretArn])
    await rejection(provider.getSecret({ secretId: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:home-AbCdEf' }))
    // Other partitions' regions: the European Sovereign Cloud's and an ISO region.
    await rejection(provider.getSecret({ secretId: 'arn:aws-eusc:secretsmanager:eusc-de-east-1:123456789012:secret:eusc-AbCdEf' }))
    await rejection(provider.getSecret({ secretId: 'arn:aws-iso-b:secretsmanager:us-isob-east-1:123456789012:secret:iso-AbCdEf' }))

    // The two regions of the batch are asked at once: compare without order.
    assert.deepEqual(aws.fake.calls.map((c) => `${c.operation} ${c.region ?? ''}`).sort(), [
      'BatchGetSecretValue eu-west-1',
      'BatchGetSecretValue us-east-1',
      'Encrypt ap-south-1',
      'GetParameter eu-west-1',
      'GetParameter eu-west-2',
      'GetSecretValue eu-west-1',
      'GetSecretValue eusc-de-east-1',
      'GetSecretValue us-east-1',
      'GetSecretValue us-isob-east-1'
    ])
  })

  it('answers a batch across regions with what the regions that answered gave, and the failed region\'s ids in errors', async () => {
    aws.fake.putSecret({ name: 'home', secretString: 'home-value' })
    const far = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:far-AbCdEf'
    aws.fake.inject({ kind: 'error500' }, { match: (call) => call.region === 'eu-west-1' })
    const provider = make()

    const result = await provider.batchGetSecrets(['home', far])

    assert.deepEqual(result.values.map((v) => v.secretString), ['home-value'])
    assert.deepEqual(result.errors.map((e) => [e.secretId, e.errorCode, e.transient]), [[far, 'InternalServiceError', true]])
    aws.fake.inject({ kind: 'error500' })
    await rejection(provider.batchGetSecrets(['home', far]))
    assert.deepEqual(await provider.batchGetSecrets([]), { values: [], errors: [] }, 'no region, no failure')
  })

  it('opens at most maxConnections sockets per service at once', async () => {
    aws.fake.putParameter({ name: '/p', value: 'v', type: 'String' })
    aws.fake.inject({ kind: 'latency', ms: 150 })
    const provider = make({ maxConnections: 2 })

    await Promise.all(Array.from({ length: 6 }, async () => provider.getParameter({ name: '/p', withDecryption: false })))

    const arrivals = aws.fake.calls.map((c) => c.at.getTime()).sort((a, b) => a - b)
    assert.equal(arrivals.length, 6)
    // Two at a time: the third waits for one of the first two answers.
    assert.ok((arrivals[2] ?? 0) - (arrivals[0] ?? 0) >= 120, `arrivals ${arrivals.map((t) => t - (arrivals[0] ?? 0)).join(', ')}`)
    assert.ok((arrivals[1] ?? 0) - (arrivals[0] ?? 0) < 100)
  })

  it('times out per service, takes 0 as no timeout, and gives up when the caller aborts', async () => {
    aws.fake.putSecret({ name: 's', secretString: 'v' })
    aws.fake.putParameter({ name: '/p', value: 'v', type: 'String' })
    const provider = make({ secretsManagerTimeoutMillis: 100, ssmParameterStoreTimeoutMillis: 0 })
    aws.fake.latencyMs = 300

    const timedOut = await rejection(provider.getSecret({ secretId: 's' }))
    const untimed = await provider.getParameter({ name: '/p', withDecryption: false })
    const controller = new AbortController()
    setTimeout(() => controller.abort(), 50)
    const cancelled = await rejection(provider.getParameter({ name: '/p', withDecryption: false }, { signal: controller.signal }))

    assert.ok(timedOut instanceof UpstreamTimeoutError)
    assert.match(timedOut.message, /within 100 ms/)
    assert.equal(untimed.value, 'v')
    assert.ok(cancelled instanceof UpstreamTimeoutError)
  })

  it('goes through HTTP(S)_PROXY, and around it for hosts in NO_PROXY', async () => {
    aws.fake.putSecret({ name: 's', secretString: 'v' })
    const tunnels: string[] = []
    const sockets = new Set<Socket>()
    const proxy = createServer((_req, res) => { res.writeHead(405).end() })
    proxy.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
      tunnels.push(req.url ?? '')
      sockets.add(client)
      client.on('error', () => { client.destroy() })
      sockets.add(openTunnel(req, client, head))
    })
    const proxyPort = await listen(proxy)
    const fakePort = new URL(aws.fake.url).port

    try {
      await withEnv({ http_proxy: `http://127.0.0.1:${proxyPort}`, HTTP_PROXY: undefined, no_proxy: undefined, NO_PROXY: undefined }, async () => {
        const secret = await make().getSecret({ secretId: 's' })
        assert.equal(secret.secretString, 'v')
      })
      const viaProxy = tunnels.length
      await withEnv({ http_proxy: `http://127.0.0.1:${proxyPort}`, no_proxy: '127.0.0.1', NO_PROXY: undefined }, async () => {
        await make().getSecret({ secretId: 's' })
      })

      assert.deepEqual(tunnels, [`127.0.0.1:${fakePort}`])
      assert.equal(viaProxy, 1)
      assert.equal(aws.fake.count('GetSecretValue'), 2)
    } finally {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => proxy.close(() => resolve()))
    }
  })

  it('gives up a tunnel the proxy never opens, so its socket slot serves the next call', async () => {
    aws.fake.putSecret({ name: 's', secretString: 'v' })
    let stall = 2
    const sockets = new Set<Socket>()
    const proxy = createServer((_req, res) => { res.writeHead(405).end() })
    proxy.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
      sockets.add(client)
      client.on('error', () => { client.destroy() })
      // The first CONNECTs get no answer at all, as from an overloaded proxy.
      if (stall > 0) { stall -= 1; return }
      sockets.add(openTunnel(req, client, head))
    })
    const proxyPort = await listen(proxy)

    try {
      await withEnv({ http_proxy: `http://127.0.0.1:${proxyPort}`, HTTP_PROXY: undefined, no_proxy: undefined, NO_PROXY: undefined }, async () => {
        const provider = make({ maxConnections: 2, secretsManagerTimeoutMillis: 300, proxyTunnelTimeoutMs: 400 })
        const stalled = await Promise.all([0, 1].map(async () => await rejection(provider.getSecret({ secretId: 's' }))))
        for (const error of stalled) assert.ok(error instanceof UpstreamTimeoutError, String(error))
        // Both slots were taken by the stalled CONNECTs; once they are given up, calls go through.
        await new Promise((resolve) => setTimeout(resolve, 200))
        const secret = await provider.getSecret({ secretId: 's' })
        assert.equal(secret.secretString, 'v')
      })
    } finally {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => proxy.close(() => resolve()))
    }
  })

  it('closes the connections to a proxy that never opens its tunnels, round after round', async () => {
    aws.fake.putSecret({ name: 's', secretString: 'v' })
    const open = new Set<Socket>()
    const all = new Set<Socket>()
    let asked = 0
    const proxy = createServer((_req, res) => { res.writeHead(405).end() })
    proxy.on('connect', (_req: IncomingMessage, client: Socket) => {
      asked += 1
      open.add(client)
      all.add(client)
      client.on('error', () => { client.destroy() })
      // The agent closing its end: read (nothing is ever answered), so that its FIN is seen.
      client.once('end', () => { open.delete(client) })
      client.once('close', () => { open.delete(client) })
      client.resume()
    })
    const proxyPort = await listen(proxy)

    try {
      await withEnv({ http_proxy: `http://127.0.0.1:${proxyPort}`, HTTP_PROXY: undefined, no_proxy: undefined, NO_PROXY: undefined }, async () => {
        const provider = make({ maxConnections: 2, secretsManagerTimeoutMillis: 150, proxyTunnelTimeoutMs: 200 })
        for (let round = 0; round < 3; round++) {
          await Promise.all([0, 1].map(async () => await rejection(provider.getSecret({ secretId: 's' }))))
          await new Promise((resolve) => setTimeout(resolve, 150))
        }
        await new Promise((resolve) => setTimeout(resolve, 300))
      })
      assert.ok(asked >= 4, `the proxy was asked ${asked} times`)
      assert.equal(open.size, 0, `${open.size} of ${asked} connections to the proxy left open`)
    } finally {
      for (const s of all) s.destroy()
      await new Promise<void>((resolve) => proxy.close(() => resolve()))
    }
  })

  it('reads the credentials file and profile given, not the environment', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sa-aws-creds-'))
    const checking = await FakeAws.start({ credentials: { AKIDFILE: 'file-secret' } })
    try {
      const file = join(dir, 'credentials')
      await writeFile(file, '[default]\naws_access_key_id = AKIDWRONG\naws_secret_access_key = nope\n\n[team]\naws_access_key_id = AKIDFILE\naws_secret_access_key = file-secret\n')
      checking.putSecret({ name: 's', secretString: 'from-file' })
      const provider = new AwsProvider(fakeAwsProviderOptions(checking, { credentials: undefined, credentialsFilePath: file, profile: 'team' }))
      aws.closeAfter(provider)

      const secret = await withEnv({ AWS_ACCESS_KEY_ID: 'AKIDENV', AWS_SECRET_ACCESS_KEY: 'env', AWS_PROFILE: undefined, AWS_CONFIG_FILE: join(dir, 'no-config') }, async () =>
        provider.getSecret({ secretId: 's' }))

      assert.equal(secret.secretString, 'from-file')
      assert.equal(checking.calls[0]?.accessKeyId, 'AKIDFILE')
    } finally {
      await checking.close()
      await rm(dir, { recursive: true, force: true })
    }
  })
})

describe('AwsProvider: AWS_CA_BUNDLE', () => {
  let dir: string
  let fake: FakeAws
  let front: Server
  let endpoint: string
  let opensslMissing = false

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sa-aws-ca-'))
    fake = await FakeAws.start()
    fake.putSecret({ name: 's', secretString: 'over-tls' })
    try {
      await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=127.0.0.1',
        '-addext', 'subjectAltName=IP:127.0.0.1'], { timeout: 10_000 })
    } catch {
      opensslMissing = true
      return
    }
    // A TLS front for the fake, with a certificate no public CA signed.
    front = createHttpsServer({ key: await readFile(join(dir, 'key.pem')), cert: await readFile(join(dir, 'cert.pem')) }, (req, res) => {
      const upstream = request(`${fake.url}${req.url ?? '/'}`, { method: req.method, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers)
        answer.pipe(res)
      })
      upstream.on('error', () => res.destroy())
      req.pipe(upstream)
    })
    endpoint = `https://127.0.0.1:${await listen(front)}`
  })
  after(async () => {
    if (front !== undefined) {
      front.closeAllConnections()
      await new Promise<void>((resolve) => front.close(() => resolve()))
    }
    await fake.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('trusts the certificates of AWS_CA_BUNDLE, and refuses the endpoint without them', async (t) => {
    if (opensslMissing) { t.skip('openssl is not installed'); return }
    const trusting = new AwsProvider(fakeAwsProviderOptions(fake, { endpoint, env: { AWS_CA_BUNDLE: join(dir, 'cert.pem') } }))
    const plain = new AwsProvider(fakeAwsProviderOptions(fake, { endpoint, env: {} }))
    try {
      const secret = await trusting.getSecret({ secretId: 's' })
      const refused = await rejection(plain.getSecret({ secretId: 's' }))

      assert.equal(secret.secretString, 'over-tls')
      assert.ok(refused instanceof UpstreamError)
      assert.equal(refused.code, 'TlsError')
    } finally {
      await trusting.close()
      await plain.close()
    }
  })

  it('refuses to start when AWS_CA_BUNDLE names a file that cannot be read', () => {
    assert.throws(() => new AwsProvider(fakeAwsProviderOptions(fake, { env: { AWS_CA_BUNDLE: join(dir, 'missing.pem') } })), /AWS_CA_BUNDLE names .*missing\.pem.*cannot be read/)
  })
})

describe('AwsProvider: readiness', () => {
  const aws = providersOverFakeAws()
  const make = aws.make

  it('is ready once STS GetCallerIdentity accepts the credentials', async () => {
    await make().checkReady()

    assert.deepEqual(aws.fake.calls.map((c) => c.target), ['sts.GetCallerIdentity'])
  })

  it('is not ready, saying why, when STS says the credentials expired', async () => {
    aws.fake.inject({ kind: 'expiredCredentials' }, { service: 'sts' })

    const error = await rejection(make().checkReady())

    assert.match(error.message, /credentials are invalid or expired/)
    assert.ok(!error.message.includes('arn:aws'))
    assert.equal(aws.fake.count('GetCallerIdentity'), 1)
  })

  it('retries transient failures and an answer without an account, then turns ready', async () => {
    aws.fake.inject({ kind: 'error500' }, { service: 'sts', times: 1 })
    aws.fake.inject({ kind: 'malformed' }, { service: 'sts', times: 1 })
    aws.fake.inject({ kind: 'throttle' }, { service: 'sts', times: 1 })
    // A proxy's own refusals, in front of STS's XML: not AWS saying the credentials are bad.
    aws.fake.inject({ kind: 'proxy', status: 407 }, { service: 'sts', times: 1 })
    aws.fake.inject({ kind: 'proxy', status: 403 }, { service: 'sts', times: 1 })
    aws.fake.inject({ kind: 'proxy', status: 403, page: true }, { service: 'sts', times: 1 })

    await make().checkReady()

    assert.equal(aws.fake.count('GetCallerIdentity'), 7)
  })

  it('skips STS when validate_credentials is off', async () => {
    await make({ validateCredentials: false }).checkReady()

    assert.equal(aws.fake.count(), 0)
  })

  it('is not ready without a region anywhere', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sa-aws-region-'))
    try {
      const error = await withEnv({ AWS_REGION: undefined, AWS_DEFAULT_REGION: undefined, AWS_PROFILE: undefined, AWS_CONFIG_FILE: join(dir, 'none') }, async () =>
        rejection(make({ region: null }).checkReady()))

      assert.match(error.message, /No AWS region is configured/)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('stops retrying when closed', async () => {
    aws.fake.inject({ kind: 'error500' }, { service: 'sts' })
    const provider = make({ readinessBackoffMs: [50, 50] })

    const pending = rejection(provider.checkReady())
    await new Promise((resolve) => setTimeout(resolve, 120))
    await provider.close()
    const error = await pending

    assert.match(error.message, /closed/)
  })
})

describe('AwsProvider: envelope keyring', () => {
  let fake: FakeAws
  let provider: AwsProvider
  beforeEach(async () => {
    fake = await FakeAws.start()
    provider = new AwsProvider(fakeAwsProviderOptions(fake))
  })
  afterEach(async () => {
    await provider.close()
    await fake.close()
  })

  it('round-trips an Encryption SDK message through KMS at the fake', async () => {
    const keyArn = fake.createKey({ alias: 'envelope' })
    const { encrypt, decrypt } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)

    const { result } = await encrypt(await provider.envelopeKeyring('alias/envelope'), Buffer.from('payload'), { encryptionContext: { app: 'x' } })
    const { plaintext, messageHeader } = await decrypt(await provider.envelopeKeyring(keyArn), result)

    assert.equal(plaintext.toString(), 'payload')
    assert.equal(messageHeader.encryptedDataKeys[0]?.providerInfo, keyArn)
    assert.deepEqual(fake.calls.map((c) => c.operation), ['GenerateDataKey', 'Decrypt'])
    assert.ok(fake.calls.every((c) => c.userAgent?.includes(TEST_VERSION_SUFFIX) === true))
  })

  it('fails in the provider vocabulary for a disabled or unknown key', async () => {
    fake.createKey({ alias: 'off', enabled: false })
    const { encrypt } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)

    const disabled = await rejection(encrypt(await provider.envelopeKeyring('alias/off'), Buffer.from('x')))
    const unknown = await rejection(encrypt(await provider.envelopeKeyring('alias/none'), Buffer.from('x')))

    assert.ok(disabled instanceof AccessDeniedError, String(disabled))
    assert.ok(unknown instanceof NotFoundError, String(unknown))
  })
})
