import assert from 'node:assert/strict'
import { createServer, request, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { startCli, type CliProcess } from '../support/cli.js'

const TOKEN = 'shutdown-test-token'
const UPSTREAM_DELAY_MS = 1500

/**
 * A stand-in for Secrets Manager that takes its time: it answers every GetSecretValue (JSON 1.1)
 * after UPSTREAM_DELAY_MS, and counts the requests it holds, so the test knows when the agent's
 * upstream calls are in flight.
 */
class SlowSecretsManager {
  readonly #server: Server
  readonly #timers = new Set<NodeJS.Timeout>()
  received = 0
  url = ''

  constructor () {
    this.#server = createServer((req, res) => {
      let body = ''
      req.on('data', (chunk: Buffer) => { body += chunk.toString('utf8') })
      req.on('end', () => {
        this.received += 1
        const target = String(req.headers['x-amz-target'] ?? '')
        const { SecretId: name } = JSON.parse(body || '{}') as { SecretId?: string }
        const timer = setTimeout(() => {
          this.#timers.delete(timer)
          if (target !== 'secretsmanager.GetSecretValue' || name === undefined) {
            res.writeHead(400, { 'content-type': 'application/x-amz-json-1.1' }).end(JSON.stringify({ __type: 'ValidationException', message: 'unexpected call' }))
            return
          }
          res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': 'slow-1' }).end(JSON.stringify({
            ARN: `arn:aws:secretsmanager:us-east-1:123456789012:secret:${name}-AbCdEf`,
            Name: name,
            VersionId: 'a1b2c3d4-0000-4000-8000-000000000001',
            SecretString: `value of ${name}`,
            VersionStages: ['AWSCURRENT'],
            CreatedDate: 1_700_000_000
          }))
        }, UPSTREAM_DELAY_MS)
        this.#timers.add(timer)
      })
    })
  }

  async start (): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve))
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`
  }

  async close (): Promise<void> {
    for (const timer of this.#timers) clearTimeout(timer)
    this.#server.closeAllConnections()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }
}

interface Answer { status: number, body: string }

/** One GET on a connection of its own (no keep-alive pool to reuse a socket), bounded by `ms`. */
function get (port: number, path: string, ms = 8000): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false, headers: { 'X-Aws-Parameters-Secrets-Token': TOKEN } }, (res: IncomingMessage) => {
      let body = ''
      res.on('data', (chunk: Buffer) => { body += chunk.toString('utf8') })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      res.on('error', reject)
    })
    req.setTimeout(ms, () => req.destroy(new Error(`no answer within ${ms} ms`)))
    req.on('error', reject)
    req.end()
  })
}

async function until (check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

describe('SIGTERM', () => {
  const upstream = new SlowSecretsManager()
  let agent: CliProcess | undefined
  const serveEnv = (): NodeJS.ProcessEnv => ({
    AWS_ENDPOINT_URL: upstream.url,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'AKIDSHUTDOWNTEST',
    AWS_SECRET_ACCESS_KEY: 'shutdown-test-secret',
    AWS_MAX_ATTEMPTS: '1',
    SECRETS_AGENT_VALIDATE_CREDENTIALS: 'false',
    PARAMETERS_SECRETS_EXTENSION_MAX_CONNECTIONS: '10',
    AWS_TOKEN: TOKEN
  })

  before(async () => { await upstream.start() })
  after(async () => {
    agent?.kill()
    await upstream.close()
  })

  it('lets in-flight requests finish with 200, refuses new connections, and exits 0', async () => {
    agent = startCli(['serve', '--provider', 'aws', '--port', '0'], serveEnv())
    const port = Number((await agent.waitFor(/"port":(\d+)/, 15_000))[1])
    const ids = ['slow/one', 'slow/two', 'slow/three', 'slow/four']
    const inFlight = ids.map((id) => get(port, `/secretsmanager/get?secretId=${encodeURIComponent(id)}`))
    // Stop only once every call has reached upstream, where it waits UPSTREAM_DELAY_MS.
    await until(() => upstream.received >= ids.length, 5000, 'the upstream calls')

    agent.child.kill('SIGTERM')
    await agent.waitFor(/stopping: no new connections/, 3000)
    await new Promise((resolve) => setTimeout(resolve, 200))
    const late = await get(port, '/secretsmanager/get?secretId=slow%2Flate', 3000).then((answer) => answer.status, (error: NodeJS.ErrnoException) => error.code ?? error.message)
    const answers = await Promise.all(inFlight)
    const code = await agent.exited(10_000)

    assert.ok(late === 'ECONNREFUSED' || late === 503, `a new connection after SIGTERM is refused or answered 503, not ${String(late)}`)
    assert.deepEqual(answers.map((a) => a.status), [200, 200, 200, 200])
    assert.deepEqual(answers.map((a) => (JSON.parse(a.body) as { SecretString: string }).SecretString), ids.map((id) => `value of ${id}`))
    assert.equal(upstream.received, ids.length, 'no upstream call after the signal')
    assert.equal(code, 0)
  })

  it('on a second signal while requests are in flight, exits 1 at once, saying so in the log', async () => {
    for (const [first, second] of [['SIGTERM', 'SIGTERM'], ['SIGINT', 'SIGTERM']] as const) {
      const received = upstream.received
      agent = startCli(['serve', '--provider', 'aws', '--port', '0'], serveEnv())
      const port = Number((await agent.waitFor(/"port":(\d+)/, 15_000))[1])
      const inFlight = get(port, '/secretsmanager/get?secretId=slow%2Fsecond').catch(() => null)
      await until(() => upstream.received > received, 5000, 'the upstream call')

      agent.child.kill(first)
      await agent.waitFor(/stopping: no new connections/, 3000)
      agent.child.kill(second)
      const code = await agent.exited(3000)
      await inFlight

      assert.equal(code, 1, `${first} then ${second}`)
      assert.match(agent.output(), /second signal: exiting now/)
    }
  })
})
