import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { pino } from 'pino'
import { startAgent, type RunningAgent } from '../../src/agent.js'
import { loadConfig } from '../../src/config/index.js'
import { Token } from '../../src/token.js'
import { FakeAws } from '../support/fake-aws.js'
import { TEST_CREDENTIALS } from '../support/aws-app.js'

const TOKEN = 'prefetch-token'

describe('prefetch against AWS (the fake server), through /ready', () => {
  let fake: FakeAws
  before(async () => {
    fake = await FakeAws.start()
    // The SDK reads its endpoint and credentials from the environment, as it would in a task.
    Object.assign(process.env, {
      AWS_ENDPOINT_URL: fake.url,
      AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
      AWS_REGION: fake.region,
      AWS_MAX_ATTEMPTS: '1'
    })
  })
  after(async () => { await fake.close() })

  async function start (prefetch: { secrets: string[], parameters: string[], parameterPaths: string[] }, timeoutSeconds: number): Promise<RunningAgent> {
    const { config } = await loadConfig({ env: {}, defaults: { provider: 'aws' } })
    return startAgent({
      config: { ...config, httpPort: 0, prefetch, prefetchTimeoutSeconds: timeoutSeconds },
      token: new Token(TOKEN),
      logger: pino({ level: 'silent' }),
      env: process.env
    })
  }

  async function readyStatus (agent: RunningAgent): Promise<number> {
    return (await fetch(`${agent.url}/ready`)).status
  }

  it('holds /ready at 503 until the listed items load, then serves them from the cache', async () => {
    fake.putSecret({ name: 'pf/db', secretString: 'pf-db-value' })
    fake.putParameter({ name: '/pf/level', value: 'warn', type: 'String' })
    fake.inject({ kind: 'latency', ms: 400 }, { operation: 'GetSecretValue', times: 1 })
    const agent = await start({ secrets: ['pf/db'], parameters: ['/pf/level'], parameterPaths: [] }, 10)
    try {
      assert.equal(await readyStatus(agent), 503)
      const deadline = Date.now() + 5000
      while (await readyStatus(agent) !== 200) {
        assert.ok(Date.now() < deadline, 'ready within 5 s')
        await new Promise((resolve) => setTimeout(resolve, 25))
      }
      const calls = fake.count('GetSecretValue')
      const answer = await fetch(`${agent.url}/secretsmanager/get?secretId=pf/db`, { headers: { 'X-Aws-Parameters-Secrets-Token': TOKEN } })
      assert.equal(answer.headers.get('x-cache'), 'HIT')
      assert.equal(fake.count('GetSecretValue'), calls)
    } finally {
      await agent.close()
    }
  })

  it('does not let an item that does not exist hold readiness', async () => {
    const agent = await start({ secrets: ['pf/missing'], parameters: [], parameterPaths: [] }, 10)
    try {
      const deadline = Date.now() + 3000
      while (await readyStatus(agent) !== 200) {
        assert.ok(Date.now() < deadline, 'ready within 3 s')
        await new Promise((resolve) => setTimeout(resolve, 25))
      }
    } finally {
      await agent.close()
    }
  })

  it('lets a throttled item hold readiness up to prefetch_timeout_seconds, then turns ready', async () => {
    fake.putSecret({ name: 'pf/throttled', secretString: 'x' })
    const fault = fake.inject({ kind: 'throttle' }, { operation: 'GetSecretValue' })
    const started = Date.now()
    const agent = await start({ secrets: ['pf/throttled'], parameters: [], parameterPaths: [] }, 2)
    try {
      await new Promise((resolve) => setTimeout(resolve, 1000))
      assert.equal(await readyStatus(agent), 503, 'still waiting for the throttled item at 1 s')
      while (await readyStatus(agent) !== 200) {
        assert.ok(Date.now() - started < 6000, 'ready soon after the 2 s timeout')
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
      assert.ok(Date.now() - started >= 1500, 'not before the timeout')
      assert.ok(fault.hits >= 2, 'the item was retried')
    } finally {
      fault.remove()
      await agent.close()
    }
  })
})
