import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { Counter, Histogram, Registry, type OpenMetricsContentType } from 'prom-client'
import { Metrics } from '../../src/metrics.js'

const REQUESTS = 'secrets_agent_http_requests_total'
const DURATION = 'secrets_agent_http_request_duration_seconds'

/** The lines of `name` (its samples, HELP and TYPE) in an exposition text. */
function linesOf (text: string, name: string): string[] {
  return text.split('\n').filter((line) => line.startsWith(name) || line.startsWith(`# HELP ${name} `) || line.startsWith(`# TYPE ${name} `))
}

/**
 * The same two metrics as prom-client's own Counter and Histogram make them: what the agent's
 * request series must expose, sample for sample.
 */
function reference (): { registry: Registry, observe: (route: string, method: string, status: number, seconds: number) => void } {
  const registry = new Registry()
  const registers = [registry]
  const requests = new Counter({ name: REQUESTS, help: 'HTTP requests answered, by route pattern, method and status.', labelNames: ['route', 'method', 'status'], registers })
  const duration = new Histogram({
    name: DURATION,
    help: 'Time from request to response, by route pattern and status.',
    labelNames: ['route', 'status'],
    buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers
  })
  return {
    registry,
    observe: (route, method, status, seconds) => {
      requests.inc({ route, method, status: String(status) })
      duration.observe({ route, status: String(status) }, seconds)
    }
  }
}

const observation = fc.record({
  route: fc.constantFrom('/secretsmanager/get', '/v1/*', 'unmatched', 'a "quoted" \\ route'),
  method: fc.constantFrom('GET', 'POST', 'HEAD'),
  status: fc.constantFrom(200, 400, 401, 404, 502),
  // Bucket bounds themselves, values between them, and beyond the last.
  seconds: fc.oneof(fc.constantFrom(0, 0.00005, 0.0001, 0.001, 0.25, 1, 10, 10.5), fc.double({ min: 0, max: 20, noNaN: true }))
})

describe('request metrics', () => {
  it('expose what prom-client\'s own counter and histogram would, for any sequence of requests', async () => {
    await fc.assert(fc.asyncProperty(fc.array(observation, { maxLength: 60 }), async (observations) => {
      const metrics = new Metrics('test', { processMetrics: false })
      const expected = reference()
      for (const { route, method, status, seconds } of observations) {
        metrics.requests(route, method, status).observe(seconds)
        expected.observe(route, method, status, seconds)
      }
      const got = await metrics.text()
      const want = await expected.registry.metrics()
      assert.deepEqual(linesOf(got, REQUESTS), linesOf(want, REQUESTS))
      assert.deepEqual(linesOf(got, DURATION), linesOf(want, DURATION))
    }), { numRuns: 300, examples: [[[
      // Sums in another order differ in the last digits: 4.3333 against 4.3332999999999995.
      { route: '/v1/*', method: 'GET', status: 200, seconds: 0.00005 },
      { route: '/v1/*', method: 'HEAD', status: 200, seconds: 0.00005 },
      { route: '/v1/*', method: 'GET', status: 200, seconds: 1 },
      { route: '/v1/*', method: 'HEAD', status: 200, seconds: 3.3332 }
    ]]] })
  })

  it('expose the same in the OpenMetrics format', async () => {
    const metrics = new Metrics('test', { processMetrics: false })
    const expected = reference()
    // The agent's registries are typed for the Prometheus format, the one it serves.
    for (const registry of [metrics.registry, expected.registry]) (registry as unknown as Registry<OpenMetricsContentType>).setContentType(Registry.OPENMETRICS_CONTENT_TYPE)
    metrics.requests('/v1/*', 'GET', 200).observe(0.002)
    expected.observe('/v1/*', 'GET', 200, 0.002)
    const got = await metrics.text()
    const want = await expected.registry.metrics()
    assert.deepEqual(linesOf(got, 'secrets_agent_http_request'), linesOf(want, 'secrets_agent_http_request'))
    assert.ok(got.includes('secrets_agent_http_requests_total{route="/v1/*",method="GET",status="200"} 1\n'))
  })

  it('show a series kept ahead only once it has counted a request', async () => {
    const metrics = new Metrics('test', { processMetrics: false })
    const series = metrics.requests('/secretsmanager/get', 'GET', 200)
    assert.deepEqual(linesOf(await metrics.text(), REQUESTS).filter((l) => !l.startsWith('#')), [])
    series.observe(0.0002)
    assert.deepEqual(linesOf(await metrics.text(), REQUESTS).filter((l) => !l.startsWith('#')), [`${REQUESTS}{route="/secretsmanager/get",method="GET",status="200"} 1`])
    assert.equal(metrics.requests('/secretsmanager/get', 'GET', 200), series, 'one series per label set')
  })

  it('start again from nothing on the registry\'s resetMetrics(), also for a series kept ahead', async () => {
    const metrics = new Metrics('test', { processMetrics: false })
    const series = metrics.requests('/secretsmanager/get', 'GET', 200)
    series.observe(0.0002)
    metrics.registry.resetMetrics()
    const samples = async (): Promise<string[]> => [...linesOf(await metrics.text(), REQUESTS), ...linesOf(await metrics.text(), DURATION)].filter((l) => !l.startsWith('#'))
    assert.deepEqual(await samples(), [])
    series.observe(0.3)
    const expected = reference()
    expected.observe('/secretsmanager/get', 'GET', 200, 0.3)
    const want = await expected.registry.metrics()
    assert.deepEqual(await samples(), [...linesOf(want, REQUESTS), ...linesOf(want, DURATION)].filter((l) => !l.startsWith('#')))
  })

  it('count cache hits at scrape time, and keep counting after it', async () => {
    const metrics = new Metrics('test', { processMetrics: false })
    const hits = async (): Promise<string[]> => linesOf(await metrics.text(), 'secrets_agent_cache_hits_total').filter((l) => !l.startsWith('#'))
    assert.deepEqual(await hits(), ['secrets_agent_cache_hits_total 0'])
    for (let i = 0; i < 3; i++) metrics.onCacheEvent({ type: 'hit' })
    assert.deepEqual(await hits(), ['secrets_agent_cache_hits_total 3'])
    metrics.onCacheEvent({ type: 'hit' })
    assert.deepEqual(await hits(), ['secrets_agent_cache_hits_total 4'])
    assert.deepEqual(await hits(), ['secrets_agent_cache_hits_total 4'], 'a scrape counts nothing twice')
    metrics.registry.resetMetrics()
    assert.deepEqual(await hits(), ['secrets_agent_cache_hits_total 0'])
    metrics.onCacheEvent({ type: 'hit' })
    assert.deepEqual(await hits(), ['secrets_agent_cache_hits_total 1'])
  })
})
