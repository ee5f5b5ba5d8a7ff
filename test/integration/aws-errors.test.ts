import assert from 'node:assert/strict'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { Metrics } from '../../src/metrics.js'
import { openAwsApp, type AwsApp } from '../support/aws-app.js'

/** The identity the fake's AWS messages name: none of it may reach a client. */
const ACCOUNT = '987654321098'
const ROLE = 'leaky-role-name'
const CALLER = `arn:aws:sts::${ACCOUNT}:assumed-role/${ROLE}/i-0abc`
const TIMEOUT_MS = 300

interface Answer { statusCode: number, headers: Record<string, unknown>, body: string }

describe('aws provider over HTTP: AWS errors become the statuses of DESIGN §2', () => {
  let h: AwsApp
  let secretArn: string
  beforeEach(async () => {
    h = await openAwsApp({
      fake: { accountId: ACCOUNT, callerArn: CALLER },
      provider: { secretsManagerTimeoutMillis: TIMEOUT_MS, ssmParameterStoreTimeoutMillis: TIMEOUT_MS }
    })
    secretArn = h.fake.putSecret({ name: 'app/db', secretString: '{"password":"pw-Xq7"}' }).arn
    h.fake.putParameter({ name: '/app/level', value: 'info', type: 'String' })
  })
  afterEach(async () => { await h.close() })

  const get = async (url: string): Promise<Answer> => h.app.inject({ method: 'GET', url, headers: h.auth })

  /** The error body: valid JSON of our shape, naming nothing of the account behind the agent. */
  function errorOf (answer: Answer, status: number): { __type: string, message: string } {
    assert.equal(answer.statusCode, status, answer.body)
    const body = JSON.parse(answer.body) as { __type: string, message: string }
    assert.deepEqual(Object.keys(body).sort(), ['__type', 'message'])
    for (const leak of [ACCOUNT, ROLE, CALLER, secretArn, 'arn:aws:', 'pw-Xq7']) {
      assert.ok(!answer.body.includes(leak), `the error body names ${leak}: ${answer.body}`)
    }
    return body
  }

  it('answers 404 for a missing secret, parameter or parameter version', async () => {
    const secret = errorOf(await get('/secretsmanager/get?secretId=app/missing'), 404)
    const parameter = errorOf(await get('/systemsmanager/parameters/get?name=/app/missing'), 404)
    const version = errorOf(await get('/systemsmanager/parameters/get?name=/app/level&version=7'), 404)

    assert.equal(secret.__type, 'ResourceNotFoundException')
    assert.equal(parameter.__type, 'ParameterNotFound')
    assert.equal(version.__type, 'ParameterVersionNotFound')
  })

  it('answers 403 when IAM denies the secret or parameter, without AWS\'s message', async () => {
    h.fake.denyAccess('app/db')
    h.fake.denyAccess('/app/level')

    const secret = errorOf(await get('/secretsmanager/get?secretId=app/db'), 403)
    const byArn = await get(`/secretsmanager/get?secretId=${encodeURIComponent(secretArn)}`)
    const parameter = errorOf(await get('/systemsmanager/parameters/get?name=/app/level'), 403)

    assert.equal(secret.__type, 'AccessDeniedException')
    assert.match(secret.message, /not allowed to read this secret/)
    assert.equal(byArn.statusCode, 403)
    assert.equal(parameter.__type, 'AccessDeniedException')
  })

  it('answers 403 when the KMS key protecting the secret is disabled (DecryptionFailure)', async () => {
    const key = h.fake.createKey({ alias: 'protects-secret' })
    h.fake.putSecret({ name: 'app/protected', secretString: 'v', kmsKeyId: key })
    h.fake.setKeyEnabled(key, false)

    const body = errorOf(await get('/secretsmanager/get?secretId=app/protected'), 403)

    assert.equal(body.__type, 'DecryptionFailure')
    assert.ok(!body.message.includes(key))
  })

  it('answers 403 saying the credentials are invalid or expired', async () => {
    h.fake.inject({ kind: 'expiredCredentials' })

    const body = errorOf(await get('/secretsmanager/get?secretId=app/db'), 403)

    assert.equal(body.__type, 'ExpiredTokenException')
    assert.match(body.message, /credentials are invalid or expired/)
  })

  it('answers 429 with Retry-After when throttled with nothing cached', async () => {
    h.fake.inject({ kind: 'throttle' })

    const answer = await get('/secretsmanager/get?secretId=app/db')
    const body = errorOf(answer, 429)

    assert.equal(body.__type, 'ThrottlingException')
    assert.equal(answer.headers['retry-after'], '1')
  })

  it('serves the cached value, marked STALE, when a refresh past the TTL is throttled', async () => {
    await get('/secretsmanager/get?secretId=app/db')
    h.clock.advance(301_000)
    h.fake.inject({ kind: 'throttle' })

    const answer = await get('/secretsmanager/get?secretId=app/db')

    assert.equal(answer.statusCode, 200)
    assert.equal(answer.headers['x-cache'], 'STALE')
    assert.equal((JSON.parse(answer.body) as { SecretString: string }).SecretString, '{"password":"pw-Xq7"}')
  })

  it('keeps serving a cached value when AWS refuses the signing time (a clock off by minutes), and says so', async () => {
    await get('/secretsmanager/get?secretId=app/db')
    h.clock.advance(301_000)
    h.fake.inject({ kind: 'awsError', code: 'RequestExpired', status: 400, message: 'Request has expired.' })

    const stale = await get('/secretsmanager/get?secretId=app/db')
    const cold = await get('/systemsmanager/parameters/get?name=/app/level')

    assert.equal(stale.statusCode, 200)
    assert.equal(stale.headers['x-cache'], 'STALE')
    assert.match(errorOf(cold, 403).message, /clock/)
  })

  it('answers 502 for a 500, a reset connection and an unparseable answer', async () => {
    h.fake.inject({ kind: 'error500' }, { times: 1 })
    const internal = errorOf(await get('/secretsmanager/get?secretId=app/db'), 502)
    h.fake.inject({ kind: 'reset' }, { times: 1 })
    const reset = errorOf(await get('/systemsmanager/parameters/get?name=/app/level'), 502)
    h.fake.inject({ kind: 'malformed' }, { times: 1 })
    const malformed = errorOf(await get('/secretsmanager/get?secretId=app/db&versionStage=AWSCURRENT&refreshNow=true'), 502)

    assert.equal(internal.__type, 'InternalServiceError')
    assert.equal(reset.__type, 'NetworkingError')
    assert.equal(malformed.__type, 'UnparseableResponse')
  })

  for (const status of [403, 407]) {
    it(`keeps serving a cached value when a proxy answers its refresh with its own ${status} page, and answers 502 with nothing cached`, async () => {
      assert.equal((await get('/secretsmanager/get?secretId=app/db')).statusCode, 200)
      h.fake.inject({ kind: 'malformed', status }, { times: 1 })
      h.clock.advance(301_000)
      const answer = await get('/secretsmanager/get?secretId=app/db')
      assert.equal(answer.statusCode, 200, answer.body)
      assert.equal(answer.headers['x-cache'], 'STALE')
      h.fake.inject({ kind: 'malformed', status }, { times: 1 })
      assert.equal(errorOf(await get('/systemsmanager/parameters/get?name=/app/level'), 502).__type, 'UnparseableResponse')
    })
  }

  it('keeps serving a cached value when a proxy refuses its refresh with an empty 403, and answers 502 with nothing cached', async () => {
    assert.equal((await get('/secretsmanager/get?secretId=app/db')).statusCode, 200)
    h.fake.inject({ kind: 'proxy', status: 403 }, { times: 1 })
    h.clock.advance(301_000)
    const answer = await get('/secretsmanager/get?secretId=app/db')
    assert.equal(answer.statusCode, 200, answer.body)
    assert.equal(answer.headers['x-cache'], 'STALE')
    h.fake.inject({ kind: 'proxy', status: 407 }, { times: 1 })
    assert.equal(errorOf(await get('/systemsmanager/parameters/get?name=/app/level'), 502).__type, 'UnexpectedResponse')
  })

  it('answers 504 when AWS hangs or answers later than the timeout', async () => {
    h.fake.inject({ kind: 'hang' }, { times: 1 })
    const started = performance.now()
    const hung = errorOf(await get('/secretsmanager/get?secretId=app/db'), 504)
    const elapsed = performance.now() - started
    h.fake.inject({ kind: 'latency', ms: TIMEOUT_MS + 500 }, { times: 1 })
    const slow = errorOf(await get('/systemsmanager/parameters/get?name=/app/level'), 504)

    assert.equal(hung.__type, 'UpstreamTimeoutException')
    assert.ok(elapsed >= TIMEOUT_MS - 20 && elapsed < TIMEOUT_MS + 1000, `answered after ${elapsed} ms`)
    assert.equal(slow.__type, 'UpstreamTimeoutException')
  })

  it('gives a get-by-path walk the timeout for each page, not for the whole walk', async () => {
    for (let i = 0; i < 45; i++) h.fake.putParameter({ name: `/tree/p${String(i).padStart(2, '0')}`, value: `v${i}`, type: 'String' })
    // Five pages, each well inside the timeout, and together well past it.
    const pageDelay = h.fake.inject({ kind: 'latency', ms: TIMEOUT_MS / 2 }, { operation: 'GetParametersByPath' })

    const answer = await get('/systemsmanager/parameters/get-by-path?path=/tree')
    pageDelay.remove()
    h.fake.inject({ kind: 'latency', ms: TIMEOUT_MS + 500 }, { operation: 'GetParametersByPath', times: 1 })
    const slowPage = errorOf(await get('/systemsmanager/parameters/get-by-path?path=/app'), 504)

    assert.equal(answer.statusCode, 200, answer.body)
    assert.equal((JSON.parse(answer.body) as { Parameters: unknown[] }).Parameters.length, 45)
    assert.equal(pageDelay.hits, 5)
    assert.equal(slowPage.__type, 'UpstreamTimeoutException')
  })

  it('stops a get-by-path walk whose answer would keep it going for ever, with 502', async () => {
    const loop = h.fake.inject({ kind: 'answer', body: { Parameters: [], NextToken: 'again' } }, { operation: 'GetParametersByPath' })

    const answer = errorOf(await get('/systemsmanager/parameters/get-by-path?path=/app'), 502)

    assert.equal(answer.__type, 'UnexpectedResponse')
    assert.equal(loop.hits, 2, 'the second page repeats the first page\'s token')
  })

  it('answers 400 for what AWS refuses as invalid', async () => {
    h.fake.putSecret({ name: 'app/retired', secretString: 'v' })
    h.fake.deleteSecret('app/retired', { recoveryWindow: true })

    const reference = errorOf(await get('/systemsmanager/parameters/get?name=/aws/reference/secretsmanager/app/db'), 400)
    const deleted = errorOf(await get('/secretsmanager/get?secretId=app/retired'), 400)

    assert.equal(reference.__type, 'ValidationException')
    assert.equal(deleted.__type, 'InvalidRequestException')
  })

  it('reports an id upstream left out of a batch answer as a failure, not as nothing, and serves no stale value for it', async () => {
    h.fake.putSecret({ name: 'app/left', secretString: 'left-value' })
    assert.equal((await get('/secretsmanager/get?secretId=app/left')).statusCode, 200)
    // Past its TTL: a transient failure would serve the cached value stale.
    h.clock.advance(301_000)
    const faulted = h.fake.inject({ kind: 'answer', body: { SecretValues: [], Errors: [] } }, { operation: 'BatchGetSecretValue' })
    try {
      const answer = await get('/secretsmanager/batch-get?secretId=app/left')
      const body = JSON.parse(answer.body) as { SecretValues: unknown[], Errors: Array<{ SecretId: string, ErrorCode: string }> }

      assert.equal(answer.statusCode, 200)
      assert.deepEqual(body.SecretValues, [])
      assert.deepEqual(body.Errors.map((e) => [e.SecretId, e.ErrorCode]), [['app/left', 'ServiceUnavailableException']])
    } finally {
      faulted.remove()
    }
  })

  it('reports per-secret batch errors with AWS\'s code and our message', async () => {
    h.fake.putSecret({ name: 'app/other', secretString: 'o' })
    h.fake.denyAccess('app/other')

    const answer = await get('/secretsmanager/batch-get?secretId=app/db&secretId=app/other&secretId=app/missing')
    const body = JSON.parse(answer.body) as { SecretValues: Array<{ Name: string }>, Errors: Array<{ SecretId: string, ErrorCode: string, Message: string }> }

    assert.equal(answer.statusCode, 200)
    assert.deepEqual(body.SecretValues.map((v) => v.Name), ['app/db'])
    assert.deepEqual(body.Errors.map((e) => [e.SecretId, e.ErrorCode]).sort(), [['app/missing', 'ResourceNotFoundException'], ['app/other', 'AccessDeniedException']])
    for (const e of body.Errors) {
      for (const leak of [ACCOUNT, ROLE, 'arn:aws:']) assert.ok(!e.Message.includes(leak), e.Message)
    }
  })
})

describe('aws provider over HTTP: the credential chain failing', () => {
  /** An error as the SDK's STS client throws it from AssumeRoleWithWebIdentity. */
  const stsError = (name: string, status: number): Error =>
    Object.assign(new Error('Couldn\'t retrieve verification key from your identity provider'), { name, $fault: 'client', $metadata: { httpStatusCode: status, requestId: 'sts-request' } })

  // STS's refusals would read as final: they become CredentialsUnavailableException (502). What is
  // transient already keeps its own answer.
  for (const [name, status, answered, type] of [
    ['IDPCommunicationError', 400, 502, 'CredentialsUnavailableException'],
    ['InvalidIdentityToken', 400, 502, 'CredentialsUnavailableException'],
    ['AccessDenied', 403, 502, 'CredentialsUnavailableException'],
    ['ExpiredTokenException', 400, 403, 'ExpiredTokenException'],
    ['Throttling', 400, 429, 'Throttling']
  ] as const) {
    it(`keeps serving a cached value when getting credentials fails with ${name}, and answers ${answered} with nothing cached`, async () => {
      let failing = false
      const h = await openAwsApp({
        provider: {
          credentials: async () => {
            if (failing) throw stsError(name, status)
            return { accessKeyId: 'ASIATEST', secretAccessKey: 'secret', sessionToken: 'token', expiration: new Date(Date.now() + 1000) }
          }
        }
      })
      try {
        h.fake.putSecret({ name: 'app/db', secretString: 'pw-Cr3' })
        h.fake.putSecret({ name: 'app/other', secretString: 'other' })
        await h.app.inject({ url: '/secretsmanager/get?secretId=app/db', headers: h.auth })
        failing = true
        h.clock.advance(301_000)

        const cached = await h.app.inject({ url: '/secretsmanager/get?secretId=app/db', headers: h.auth })
        const cold = await h.app.inject({ url: '/secretsmanager/get?secretId=app/other', headers: h.auth })

        assert.equal(cached.statusCode, 200, cached.body)
        assert.equal(cached.headers['x-cache'], 'STALE')
        assert.equal(cold.statusCode, answered, cold.body)
        const body = JSON.parse(cold.body) as { __type: string, message: string }
        assert.equal(body.__type, type)
        if (answered === 502) assert.match(body.message, new RegExp(`credential source failed with ${name}`))
      } finally {
        await h.close()
      }
    })
  }
})

describe('aws provider over HTTP: upstream calls, counted at the fake', () => {
  let h: AwsApp
  beforeEach(async () => {
    h = await openAwsApp()
    h.fake.putSecret({ name: 'app/a', secretString: 'A' })
    h.fake.putSecret({ name: 'app/b', secretString: 'B' })
    h.fake.putParameter({ name: '/app/level', value: 'info', type: 'String' })
  })
  afterEach(async () => { await h.close() })

  const get = async (url: string): Promise<Answer> => h.app.inject({ method: 'GET', url, headers: h.auth })

  it('calls AWS once for a cold miss, not at all for a hit, and once more for refreshNow', async () => {
    const miss = await get('/secretsmanager/get?secretId=app/a')
    const afterMiss = h.fake.count('GetSecretValue')
    const hit = await get('/secretsmanager/get?secretId=app/a')
    const afterHit = h.fake.count('GetSecretValue')
    h.clock.advance(1500)
    const refreshed = await get('/secretsmanager/get?secretId=app/a&refreshNow=true')

    assert.deepEqual([miss.headers['x-cache'], hit.headers['x-cache'], refreshed.headers['x-cache']], ['MISS', 'HIT', 'MISS'])
    assert.equal(afterMiss, 1)
    assert.equal(afterHit, 1)
    assert.equal(h.fake.count('GetSecretValue'), 2)
  })

  it('coalesces concurrent reads of a cold key into one call', async () => {
    h.fake.inject({ kind: 'latency', ms: 50 }, { times: 1 })

    const answers = await Promise.all(Array.from({ length: 10 }, async () => get('/systemsmanager/parameters/get?name=/app/level')))

    for (const answer of answers) assert.equal(answer.statusCode, 200)
    assert.equal(h.fake.count('GetParameter'), 1)
  })

  it('fills the single-get entries from one batch-get call', async () => {
    const batch = await get('/secretsmanager/batch-get?secretId=app/a&secretId=app/b')
    const a = await get('/secretsmanager/get?secretId=app/a')
    const b = await get('/v1/app/b')

    assert.equal(batch.statusCode, 200)
    assert.equal(h.fake.count('BatchGetSecretValue'), 1)
    assert.equal(h.fake.count('GetSecretValue'), 0)
    assert.deepEqual([a.headers['x-cache'], b.headers['x-cache']], ['HIT', 'HIT'])
  })

  it('counts and logs a batch-get\'s failed region, while answering the others\' values', async () => {
    const metrics = new Metrics('0.0.0-test', { processMetrics: false })
    const counted = await openAwsApp({ metrics })
    try {
      counted.fake.putSecret({ name: 'app/a', secretString: 'A' })
      const far = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:far-AbCdEf'
      counted.fake.inject({ kind: 'error500' }, { match: (call) => call.region === 'eu-west-1' })

      const answer = await counted.app.inject({ method: 'GET', url: `/secretsmanager/batch-get?secretId=app/a&secretId=${encodeURIComponent(far)}`, headers: counted.auth })

      assert.equal(answer.statusCode, 200)
      assert.deepEqual((JSON.parse(answer.body) as { SecretValues: Array<{ Name: string }> }).SecretValues.map((v) => v.Name), ['app/a'])
      const text = await metrics.registry.metrics()
      assert.match(text, /secrets_agent_upstream_requests_total\{[^}]*operation="BatchGetSecretValue"[^}]*outcome="error"\} 1/)
      const warnings = counted.logs().map((line) => JSON.parse(line) as Record<string, unknown>).filter((entry) => entry.level === 40)
      assert.deepEqual(warnings.map((w) => [w.region, w.type]), [['eu-west-1', 'InternalServiceError']])
    } finally {
      await counted.close()
    }
  })

  it('answers a batch-get\'s other regions when one does not answer in time', async () => {
    const metrics = new Metrics('0.0.0-test', { processMetrics: false })
    const slow = await openAwsApp({ metrics, provider: { secretsManagerTimeoutMillis: 300 } })
    try {
      slow.fake.putSecret({ name: 'app/a', secretString: 'A' })
      const far = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:far-AbCdEf'
      slow.fake.inject({ kind: 'hang' }, { match: (call) => call.region === 'eu-west-1' })

      const answer = await slow.app.inject({ method: 'GET', url: `/secretsmanager/batch-get?secretId=app/a&secretId=${encodeURIComponent(far)}`, headers: slow.auth })

      assert.equal(answer.statusCode, 200, answer.body)
      const body = JSON.parse(answer.body) as { SecretValues: Array<{ Name: string }>, Errors: Array<{ SecretId: string, ErrorCode: string }> }
      assert.deepEqual(body.SecretValues.map((v) => v.Name), ['app/a'])
      assert.deepEqual(body.Errors.map((e) => [e.SecretId, e.ErrorCode]), [[far, 'UpstreamTimeoutException']])
      assert.match(await metrics.registry.metrics(), /secrets_agent_upstream_requests_total\{[^}]*operation="BatchGetSecretValue"[^}]*outcome="timeout"\} 1/)
    } finally {
      await slow.close()
    }
  })

  it('retries a throttled call with the SDK\'s standard retries and succeeds', async () => {
    const retrying = await openAwsApp({ provider: { maxAttempts: 2 } })
    try {
      retrying.fake.putSecret({ name: 'app/a', secretString: 'A' })
      retrying.fake.inject({ kind: 'throttle' }, { times: 1 })

      const answer = await retrying.app.inject({ method: 'GET', url: '/secretsmanager/get?secretId=app/a', headers: retrying.auth })

      assert.equal(answer.statusCode, 200)
      assert.deepEqual(retrying.fake.calls.map((c) => c.attempt), [1, 2])
    } finally {
      await retrying.close()
    }
  })
})
