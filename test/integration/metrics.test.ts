import assert from 'node:assert/strict'
import { afterEach, describe, it } from 'node:test'
import { startTestAgent, eventually, type TestAgent } from '../support/agent.js'

/** The value of one sample line, e.g. `secrets_agent_cache_hits_total 3`. */
function sample (text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue
    const match = /^([a-z_]+)(?:\{([^}]*)\})? ([0-9.e+-]+)$/.exec(line)
    if (match === null || match[1] !== name) continue
    const found = Object.fromEntries((match[2] ?? '').split(',').filter((p) => p !== '').map((p) => {
      const [k, v] = p.split('=')
      return [k, JSON.parse(v ?? '""') as string]
    }))
    if (Object.entries(labels).every(([k, v]) => found[k] === v)) return Number(match[3])
  }
  return undefined
}

describe('metrics', () => {
  let agent: TestAgent | undefined
  afterEach(async () => { await agent?.stop(); agent = undefined })

  it('are off unless --metrics-listen is given', async () => {
    agent = await startTestAgent()
    assert.equal(agent.metricsUrl, null)
    assert.equal((await agent.get('/metrics')).status, 404, 'and never on the secrets listener')
  })

  it('count a scripted sequence of requests exactly', async () => {
    agent = await startTestAgent({ config: { metricsListen: '127.0.0.1:0' } })
    assert.ok(agent.metricsUrl !== null)
    await eventually(async () => (await agent!.get('/ready')).status === 200, 3000, 'ready')

    await agent.get('/secretsmanager/get?secretId=app/db') // miss
    await agent.get('/secretsmanager/get?secretId=app/db') // hit
    await agent.get('/secretsmanager/get?secretId=app/db') // hit
    await agent.get('/systemsmanager/parameters/get?name=/app/level') // miss
    await agent.get('/secretsmanager/get?secretId=missing') // upstream not found
    await agent.get('/secretsmanager/get?secretId=app/db', {}) // no token
    await agent.get('/secretsmanager/get?secretId=app/db', { 'X-Aws-Parameters-Secrets-Token': 'wrong' })

    const text = await (await fetch(agent.metricsUrl)).text()
    const route = '/secretsmanager/get'
    assert.equal(sample(text, 'secrets_agent_http_requests_total', { route, method: 'GET', status: '200' }), 3)
    assert.equal(sample(text, 'secrets_agent_http_requests_total', { route, method: 'GET', status: '404' }), 1)
    assert.equal(sample(text, 'secrets_agent_http_requests_total', { route, method: 'GET', status: '401' }), 2)
    assert.equal(sample(text, 'secrets_agent_http_requests_total', { route: '/ready', method: 'GET', status: '200' }), 1)
    assert.equal(sample(text, 'secrets_agent_http_request_duration_seconds_count', { route, status: '200' }), 3)
    assert.equal(sample(text, 'secrets_agent_cache_hits_total'), 2)
    assert.equal(sample(text, 'secrets_agent_cache_misses_total'), 2)
    assert.equal(sample(text, 'secrets_agent_cache_stale_total'), 0)
    assert.equal(sample(text, 'secrets_agent_cache_entries'), 2)
    assert.ok((sample(text, 'secrets_agent_cache_bytes') ?? 0) > 0)
    assert.equal(sample(text, 'secrets_agent_auth_failures_total'), 2)
    assert.equal(sample(text, 'secrets_agent_upstream_requests_total', { service: 'secretsmanager', operation: 'GetSecretValue', outcome: 'success' }), 1)
    assert.equal(sample(text, 'secrets_agent_upstream_requests_total', { service: 'secretsmanager', operation: 'GetSecretValue', outcome: 'not_found' }), 1)
    assert.equal(sample(text, 'secrets_agent_upstream_requests_total', { service: 'ssm', operation: 'GetParameter', outcome: 'success' }), 1)
    assert.equal(sample(text, 'secrets_agent_refresh_failures_total'), 1)
    assert.equal(sample(text, 'secrets_agent_build_info', { version: '0.1.0' }), 1)
    assert.ok(sample(text, 'process_resident_memory_bytes') !== undefined)
    assert.ok(!text.includes('app/db') && !text.includes('pw-1'), 'no id or value in any label')
  })

  it('answer only GET /metrics on the metrics listener', async () => {
    agent = await startTestAgent({ config: { metricsListen: '127.0.0.1:0' } })
    const base = agent.metricsUrl!.replace(/\/metrics$/, '')
    assert.equal((await fetch(`${base}/secretsmanager/get?secretId=app/db`)).status, 404)
    assert.equal((await fetch(`${base}/metrics`, { method: 'POST' })).status, 405)
  })
})
