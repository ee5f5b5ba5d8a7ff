import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { secretArn } from '../../src/providers/local/store.js'
import { AllowList } from '../../src/server/allow.js'
import { eventually, startTestAgent, type TestAgent } from '../support/agent.js'
import { openAwsApp, type AwsApp } from '../support/aws-app.js'

const STORE = `secrets:
  app/db: '{"password":"app-db-pw"}'
  app/api: app-api-key
  other/db: other-db-pw
parameters:
  /app/level: info
  /app/nested/deep: deep-value
  /app/hidden: hidden-value
  /other/level: other-level
`

describe('the allow-list', () => {
  let agent: TestAgent
  let arnOf: (id: string) => Promise<string>

  before(async () => {
    agent = await startTestAgent({
      store: STORE,
      config: {
        allow: { secrets: ['app/*'], parameters: ['/app/*', '!never', '/aws/reference/secretsmanager/*'], kmsKeys: ['*'] }
      }
    })
    arnOf = async (id) => {
      // The ARN of an allowed secret, learned through the agent itself.
      const body = await (await agent.get(`/secretsmanager/get?secretId=${id}`)).json() as { ARN: string }
      return body.ARN
    }
  })
  after(async () => { await agent.stop() })

  const status = async (path: string): Promise<number> => (await agent.get(path)).status

  it('serves secrets that match a pattern and refuses the rest with 403', async () => {
    assert.equal(await status('/secretsmanager/get?secretId=app/db'), 200)
    assert.equal(await status('/v1/app/api'), 200)
    const refused = await agent.get('/secretsmanager/get?secretId=other/db')
    assert.equal(refused.status, 403)
    const body = await refused.json() as Record<string, string>
    assert.equal(body.__type, 'AccessDeniedException')
    assert.ok(!JSON.stringify(body).includes('other-db-pw'))
    assert.equal(await status('/v1/other/db'), 403)
  })

  it('matches an ARN on the secret name inside it', async () => {
    const arn = await arnOf('app/db')
    assert.equal(await status(`/secretsmanager/get?secretId=${encodeURIComponent(arn)}`), 200)
    const otherArn = arn.replace('secret:app/db', 'secret:other/db')
    assert.equal(await status(`/secretsmanager/get?secretId=${encodeURIComponent(otherArn)}`), 403)
  })

  it('logs a refusal as a warning naming the id, and nothing of the value', async () => {
    await agent.get('/secretsmanager/get?secretId=other/db')
    const warning = agent.logs().find((l) => l.level === 40 && l.msg === 'refused by the allow-list' && l.id === 'other/db')
    assert.ok(warning !== undefined)
    assert.ok(!agent.rawLogs().includes('other-db-pw'))
  })

  it('applies the parameter rules to names, ARNs and selectors', async () => {
    assert.equal(await status('/systemsmanager/parameters/get?name=/app/level'), 200)
    assert.equal(await status('/systemsmanager/parameters/get?name=/other/level'), 403)
    assert.equal(await status('/systemsmanager/parameters/get?name=/other/level:1'), 403)
    assert.equal(await status(`/systemsmanager/parameters/get?name=${encodeURIComponent('arn:aws:ssm:us-east-1:000000000000:parameter/other/level')}`), 403)
    assert.equal(await status(`/systemsmanager/parameters/get?name=${encodeURIComponent('arn:aws:ssm:us-east-1:000000000000:parameter/app/level')}`), 200)
  })

  it('lets /aws/reference/secretsmanager/X through only when the secret rules allow X too', async () => {
    assert.equal(await status('/systemsmanager/parameters/get?name=/aws/reference/secretsmanager/app/api&withDecryption=true'), 200)
    assert.equal(await status('/systemsmanager/parameters/get?name=/aws/reference/secretsmanager/other/db&withDecryption=true'), 403)
    // The same reference named by its ARN, which the parameter rules match by the name inside it.
    const arn = (id: string): string => encodeURIComponent(`arn:aws:ssm:us-east-1:000000000000:parameter/aws/reference/secretsmanager/${id}`)
    assert.equal(await status(`/systemsmanager/parameters/get?name=${arn('other/db')}&withDecryption=true`), 403)
    assert.notEqual(await status(`/systemsmanager/parameters/get?name=${arn('app/api')}&withDecryption=true`), 403)
    // A reference naming the secret by its ARN: the secret rules see the secret, not "arn".
    const byArn = async (secretArn: string): Promise<number> => status(`/systemsmanager/parameters/get?name=${encodeURIComponent(`/aws/reference/secretsmanager/${secretArn}`)}&withDecryption=true`)
    assert.equal(await byArn(await arnOf('app/api')), 200)
    assert.equal(await byArn(secretArn('other/db', 'us-east-1')), 403)
  })

  it('needs the path allowed for get-by-path, and returns only allowed names', async () => {
    const response = await agent.get('/systemsmanager/parameters/get-by-path?path=/app&recursive=true')
    assert.equal(response.status, 200)
    const names = ((await response.json()) as { Parameters: Array<{ Name: string }> }).Parameters.map((p) => p.Name)
    assert.deepEqual(names, ['/app/hidden', '/app/level', '/app/nested/deep'])
    assert.equal(await status('/systemsmanager/parameters/get-by-path?path=/other'), 403)
    assert.equal(await status('/systemsmanager/parameters/get-by-path?path=/'), 403)
  })

  it('reports refused ids of a batch-get in Errors as AccessDeniedException, and serves the rest', async () => {
    const response = await agent.get('/secretsmanager/batch-get?secretId=app/db&secretId=other/db')
    assert.equal(response.status, 200)
    const body = await response.json() as { SecretValues: Array<{ Name: string }>, Errors: Array<{ SecretId: string, ErrorCode: string }> }
    assert.deepEqual(body.SecretValues.map((v) => v.Name), ['app/db'])
    assert.deepEqual(body.Errors.map((e) => [e.SecretId, e.ErrorCode]), [['other/db', 'AccessDeniedException']])
    assert.ok(!JSON.stringify(body).includes('other-db-pw'))
  })
})

describe('the allow-list filtering get-by-path', () => {
  let agent: TestAgent
  before(async () => {
    agent = await startTestAgent({ store: STORE, config: { allow: { secrets: ['*'], parameters: ['/app', '/app/level', '/app/nested/*'], kmsKeys: ['*'] } } })
  })
  after(async () => { await agent.stop() })

  it('drops names outside the patterns from an allowed path, and caches the filtered answer', async () => {
    for (const expected of ['MISS', 'HIT']) {
      const response = await agent.get('/systemsmanager/parameters/get-by-path?path=/app&recursive=true&withDecryption=true')
      assert.equal(response.status, 200)
      assert.equal(response.headers.get('x-cache'), expected)
      const body = await response.text()
      assert.deepEqual((JSON.parse(body) as { Parameters: Array<{ Name: string }> }).Parameters.map((p) => p.Name), ['/app/level', '/app/nested/deep'])
      assert.ok(!body.includes('hidden-value'))
    }
  })
})

describe('the allow-list, with a prefetched parameter path', () => {
  let agent: TestAgent

  before(async () => {
    agent = await startTestAgent({
      store: STORE,
      config: {
        allow: { secrets: ['*'], parameters: ['/app', '/app/level'], kmsKeys: ['*'] },
        prefetch: { secrets: [], parameters: [], parameterPaths: ['/app'] }
      }
    })
    await eventually(() => agent.readiness.state().ready, 3000, 'the prefetch to settle')
  })
  after(async () => { await agent.stop() })

  it('answers get-by-path with the allowed names only, though the prefetch loaded the path first', async () => {
    const response = await agent.get('/systemsmanager/parameters/get-by-path?path=/app&recursive=true&withDecryption=true')
    assert.equal(response.status, 200)
    assert.equal(response.headers.get('x-cache'), 'HIT', 'answered from what the prefetch cached')
    const names = ((await response.json()) as { Parameters: Array<{ Name: string }> }).Parameters.map((p) => p.Name)
    assert.deepEqual(names, ['/app/level'])
  })
})

describe('the allow-list, with an ARN that could name either of two secrets', () => {
  // `…:secret:dev/db-secret` is a partial ARN of dev/db-secret, or the full ARN dev/db would have
  // with the suffix "secret": upstream resolves it to dev/db-secret.
  const partialArn = (name: string): string => secretArn(name, 'us-east-1').slice(0, -7)
  let agent: TestAgent

  before(async () => {
    agent = await startTestAgent({
      store: 'secrets:\n  dev/db: dev-db-pw\n  dev/db-secret: FORBIDDEN-value\n',
      config: { allow: { secrets: ['dev/db'], parameters: ['/aws/reference/secretsmanager/*'], kmsKeys: ['*'] } }
    })
  })
  after(async () => { await agent.stop() })

  it('refuses the secret the ARN turned out to name, on every route and every time, with a warning', async () => {
    const arn = partialArn('dev/db-secret')
    const answers = []
    for (let i = 0; i < 2; i++) {
      answers.push(await agent.get(`/secretsmanager/get?secretId=${encodeURIComponent(arn)}`))
      answers.push(await agent.get(`/v1/${encodeURIComponent(arn)}`))
      answers.push(await agent.get(`/systemsmanager/parameters/get?name=${encodeURIComponent(`/aws/reference/secretsmanager/${arn}`)}&withDecryption=true`))
    }
    const batch = await agent.get(`/secretsmanager/batch-get?secretId=${encodeURIComponent(arn)}&secretId=dev/db`)

    for (const answer of answers) {
      assert.equal(answer.status, 403)
      assert.equal((await answer.json() as Record<string, string>).__type, 'AccessDeniedException')
    }
    const body = await batch.json() as { SecretValues: Array<{ Name: string }>, Errors: Array<{ SecretId: string, ErrorCode: string }> }
    assert.deepEqual(body.SecretValues.map((v) => v.Name), ['dev/db'])
    assert.deepEqual(body.Errors.map((e) => [e.SecretId, e.ErrorCode]), [[arn, 'AccessDeniedException']])
    assert.ok(!agent.rawLogs().includes('FORBIDDEN-value'))
    assert.ok(agent.logs().some((l) => l.level === 40 && l.msg === 'refused by the allow-list' && l.id === arn))
  })

  it('refuses a secret by its full ARN when a wildcard matches only its name with the suffix', async () => {
    const wildcard = await startTestAgent({
      store: 'secrets:\n  payments: ROOT-SECRET\n  payments-api: api-value\n',
      config: { allow: { secrets: ['payments-*'], parameters: ['*'], kmsKeys: ['*'] } }
    })
    try {
      const full = secretArn('payments', 'us-east-1')
      assert.equal((await wildcard.get(`/secretsmanager/get?secretId=${encodeURIComponent(full)}`)).status, 403)
      assert.equal((await wildcard.get(`/v1/${encodeURIComponent(full)}`)).status, 403)
      assert.equal((await wildcard.get(`/systemsmanager/parameters/get?name=${encodeURIComponent(`/aws/reference/secretsmanager/${full}`)}&withDecryption=true`)).status, 403)
      assert.equal((await wildcard.get(`/secretsmanager/get?secretId=${encodeURIComponent(secretArn('payments-api', 'us-east-1'))}`)).status, 200)
      assert.ok(!wildcard.rawLogs().includes('ROOT-SECRET'))
    } finally {
      await wildcard.stop()
    }
  })

  it('still serves the allowed secret by its full ARN and by its partial ARN', async () => {
    for (const arn of [secretArn('dev/db', 'us-east-1'), partialArn('dev/db')]) {
      const answer = await agent.get(`/secretsmanager/get?secretId=${encodeURIComponent(arn)}`)
      assert.equal(answer.status, 200)
      assert.equal((await answer.json() as Record<string, string>).SecretString, 'dev-db-pw')
    }
  })
})

describe('the allow-list, with a secret read through SSM by the parameter ARN of its reference', () => {
  // `payments-*` lets the full ARN of `payments` through on its name with the suffix (`payments-AbC123`):
  // only the ARN SSM answers with tells which secret the reference read.
  let h: AwsApp
  const arns = new Map<string, string>()
  before(async () => {
    h = await openAwsApp({ allow: new AllowList({ secrets: ['payments-*'], parameters: ['*'], kmsKeys: ['*'] }) })
    arns.set('payments', h.fake.putSecret({ name: 'payments', secretString: 'ROOT-SECRET' }).arn)
    arns.set('payments-api', h.fake.putSecret({ name: 'payments-api', secretString: 'api-value' }).arn)
  })
  after(async () => { await h.close() })

  const byParameterArn = (secretName: string): string =>
    h.fake.parameterArn(`/aws/reference/secretsmanager/${arns.get(secretName)!}`)
  const read = async (name: string): Promise<{ statusCode: number, body: string }> =>
    h.app.inject({ method: 'GET', url: `/systemsmanager/parameters/get?name=${encodeURIComponent(name)}&withDecryption=true`, headers: h.auth })

  it('refuses the secret the reference turned out to read, every time, and logs no value', async () => {
    for (let i = 0; i < 2; i++) {
      const answer = await read(byParameterArn('payments'))
      assert.equal(answer.statusCode, 403)
      assert.equal((JSON.parse(answer.body) as Record<string, string>).__type, 'AccessDeniedException')
      assert.ok(!answer.body.includes('ROOT-SECRET'))
    }
    assert.ok(!h.logs().join('\n').includes('ROOT-SECRET'))
  })

  it('serves an allowed secret read the same way', async () => {
    const answer = await read(byParameterArn('payments-api'))
    assert.equal(answer.statusCode, 200)
    assert.equal((JSON.parse(answer.body) as { Parameter: { Value: string } }).Parameter.Value, 'api-value')
  })
})
