import { performance } from 'node:perf_hooks'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type Metric, type MetricValueWithName } from 'prom-client'
import { nodeHttp } from './builtins.js'
import { unbracketed } from './config/schema.js'
import type { CacheEvent, SecretCache } from './cache/secret-cache.js'
import { ProviderError } from './providers/errors.js'
import type { BatchGetSecretsResult, EnvelopeKeyringOptions, Provider } from './providers/types.js'

/**
 * The agent's Prometheus metrics, on a registry of its own (so building the app twice in one
 * process works). Labels are bounded sets: route patterns, status codes, service and operation
 * names, outcomes. Never an id.
 */
export class Metrics {
  readonly registry = new Registry()
  readonly cacheMisses: Counter
  readonly cacheStale: Counter
  readonly cacheEvictions: Counter
  readonly refreshes: Counter<'outcome'>
  readonly refreshFailures: Counter
  readonly upstreamRequests: Counter<'service' | 'operation' | 'outcome'>
  readonly upstreamDuration: Histogram<'service' | 'operation'>
  readonly authFailures: Counter
  #cache: SecretCache | undefined
  #cacheNow: () => number = () => performance.now()
  /** HTTP request counts by route, method and status, as plain numbers (see RequestSeries). */
  readonly #requests = new Map<string, RequestSeries>()
  /** Their latencies by route and status, the histogram's label set. */
  readonly #latencies = new Map<string, Latencies>()
  /** Reads answered from the cache, counted as a number and read at scrape time. */
  #cacheHits = 0

  constructor (version: string, options: { processMetrics?: boolean } = {}) {
    const registers = [this.registry]
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry })
    new Gauge({ name: 'secrets_agent_build_info', help: 'The running version: always 1.', labelNames: ['version', 'node'], registers }).set({ version, node: process.version }, 1)

    this.registry.registerMetric(scraped({
      name: 'secrets_agent_http_requests_total',
      help: 'HTTP requests answered, by route pattern, method and status.',
      type: 'counter',
      values: () => [...this.#requests.values()].filter((r) => r.count > 0).map((r) => ({ labels: { route: r.route, method: r.method, status: r.status }, value: r.count })),
      reset: () => { for (const series of this.#requests.values()) series.count = 0 }
    }))
    this.registry.registerMetric(scraped({
      name: 'secrets_agent_http_request_duration_seconds',
      help: 'Time from request to response, by route pattern and status.',
      type: 'histogram',
      values: () => histogramValues('secrets_agent_http_request_duration_seconds', this.#latencies.values()),
      reset: () => { for (const latencies of this.#latencies.values()) latencies.reset() }
    }))
    this.registry.registerMetric(scraped({
      name: 'secrets_agent_cache_hits_total',
      help: 'Reads answered from a fresh cached value.',
      type: 'counter',
      values: () => [{ labels: {}, value: this.#cacheHits }],
      reset: () => { this.#cacheHits = 0 }
    }))
    this.cacheMisses = new Counter({ name: 'secrets_agent_cache_misses_total', help: 'Reads that waited for upstream.', registers })
    this.cacheStale = new Counter({ name: 'secrets_agent_cache_stale_total', help: 'Reads answered with a value past its TTL because upstream was failing.', registers })
    this.cacheEvictions = new Counter({ name: 'secrets_agent_cache_evictions_total', help: 'Entries evicted to stay within cache_size or cache_max_bytes.', registers })
    this.refreshes = new Counter({ name: 'secrets_agent_cache_refreshes_total', help: 'Upstream fetches made for the cache, by outcome.', labelNames: ['outcome'], registers })
    this.refreshFailures = new Counter({ name: 'secrets_agent_refresh_failures_total', help: 'Upstream fetches for the cache that failed.', registers })
    this.upstreamRequests = new Counter({ name: 'secrets_agent_upstream_requests_total', help: 'Provider calls, by service, operation and outcome.', labelNames: ['service', 'operation', 'outcome'], registers })
    this.upstreamDuration = new Histogram({
      name: 'secrets_agent_upstream_duration_seconds',
      help: 'Provider call latency, by service and operation.',
      labelNames: ['service', 'operation'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers
    })
    this.authFailures = new Counter({ name: 'secrets_agent_auth_failures_total', help: 'Requests refused for a missing or wrong token.', registers })

    // Gauges that mirror the cache are read at scrape time (prom-client's collect()).
    const entries = (): number => this.#cache?.size ?? 0
    const bytes = (): number => this.#cache?.bytes ?? 0
    const oldestAge = (): number => {
      const oldest = this.#cache?.oldestFetchedAt()
      return oldest === undefined ? 0 : Math.max(0, (this.#cacheNow() - oldest) / 1000)
    }
    new Gauge({ name: 'secrets_agent_cache_entries', help: 'Entries in the cache.', registers, collect () { this.set(entries()) } })
    new Gauge({ name: 'secrets_agent_cache_bytes', help: 'Bytes held by the cache, by its own accounting.', registers, collect () { this.set(bytes()) } })
    new Gauge({ name: 'secrets_agent_oldest_value_age_seconds', help: 'Age of the oldest value a read would be served now: within its TTL, or stale while upstream fails (0 when none).', registers, collect () { this.set(oldestAge()) } })
  }

  /**
   * The count and latency series of one label set, for `observe(seconds)` once per answered
   * request. Callers on a hot path keep the series; the set of label sets is bounded (route
   * patterns, methods Node's parser accepts, status codes).
   */
  requests (route: string, method: string, status: number): RequestSeries {
    const key = route + '\u0000' + method + '\u0000' + String(status)
    let series = this.#requests.get(key)
    if (series === undefined) {
      const latencyKey = route + '\u0000' + String(status)
      let latencies = this.#latencies.get(latencyKey)
      if (latencies === undefined) {
        latencies = new Latencies(route, String(status))
        this.#latencies.set(latencyKey, latencies)
      }
      series = new RequestSeries(route, method, String(status), latencies)
      this.#requests.set(key, series)
    }
    return series
  }

  /** The gauges read this cache at scrape time; `now` must be the cache's clock. */
  watchCache (cache: SecretCache, now: () => number = () => performance.now()): void {
    this.#cache = cache
    this.#cacheNow = now
  }

  /** For the cache's `onEvent` option. */
  readonly onCacheEvent = (event: CacheEvent): void => {
    switch (event.type) {
      case 'hit': this.#cacheHits++; break
      case 'miss': this.cacheMisses.inc(); break
      case 'stale': this.cacheStale.inc(); break
      case 'evict': this.cacheEvictions.inc(); break
      case 'refresh':
        this.refreshes.inc({ outcome: event.ok ? 'success' : 'failure' })
        if (!event.ok) this.refreshFailures.inc()
        break
    }
  }

  async text (): Promise<string> {
    return this.registry.metrics()
  }

  get contentType (): string {
    return this.registry.contentType
  }
}

/** Bounds of the request latency histogram (s): a cache hit takes tens of microseconds; a miss takes an AWS round trip. */
const REQUEST_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/**
 * The requests answered for one label set (route, method, status), kept as plain numbers and read
 * by the registry at scrape time: prom-client's own `inc()` and `observe()` hash and check the
 * labels on every call, which on a cache hit cost about as much as the rest of the answer.
 */
export class RequestSeries {
  count = 0

  constructor (readonly route: string, readonly method: string, readonly status: string, private readonly latencies: Latencies) {}

  observe (seconds: number): void {
    this.count++
    this.latencies.observe(seconds)
  }
}

/**
 * The latency histogram of one route and status, shared by the series of every method: one sum
 * added to in arrival order, as prom-client's own histogram adds (floating-point sums depend on
 * the order).
 */
class Latencies {
  count = 0
  sum = 0
  /** Observations per bucket of REQUEST_BUCKETS, not cumulative; the last one is past every bound. */
  readonly buckets = new Float64Array(REQUEST_BUCKETS.length + 1)

  constructor (readonly route: string, readonly status: string) {}

  observe (seconds: number): void {
    let i = 0
    while (i < REQUEST_BUCKETS.length && seconds > (REQUEST_BUCKETS[i] ?? Infinity)) i++
    this.buckets[i] = (this.buckets[i] ?? 0) + 1
    this.count++
    this.sum += seconds
  }

  /** Back to no requests (the registry's resetMetrics()); the series holding it keep it. */
  reset (): void {
    this.count = 0
    this.sum = 0
    this.buckets.fill(0)
  }
}

type Sample = MetricValueWithName<string>

/** A histogram's samples, as prom-client lays out its own; label sets with no requests yet are left out. */
function histogramValues (name: string, all: Iterable<Latencies>): Sample[] {
  const samples: Sample[] = []
  for (const { route, status, buckets, sum, count } of all) {
    // Made ahead (the fast path's series): shown from its first request on, as prom-client's are.
    if (count === 0) continue
    let below = 0
    REQUEST_BUCKETS.forEach((bound, i) => {
      below += buckets[i] ?? 0
      samples.push({ metricName: `${name}_bucket`, labels: { le: bound, route, status }, value: below })
    })
    samples.push({ metricName: `${name}_bucket`, labels: { le: '+Inf', route, status }, value: count })
    samples.push({ metricName: `${name}_sum`, labels: { route, status }, value: sum })
    samples.push({ metricName: `${name}_count`, labels: { route, status }, value: count })
  }
  return samples
}

/**
 * A metric whose samples are computed when scraped. The registry reads every metric through
 * `get()` (and `reset()` on resetMetrics), so this is all prom-client needs of one. Its typings
 * name only its own classes (and give `type` as a numeric enum, where it is a string at run
 * time), hence the cast.
 */
function scraped (options: { name: string, help: string, type: 'counter' | 'histogram', values: () => Sample[], reset: () => void }): Metric {
  const metric = {
    name: options.name,
    help: options.help,
    type: options.type,
    aggregator: 'sum' as const,
    // metric.name, not options.name: for OpenMetrics the registry renames counters in place.
    get: async () => ({ name: metric.name, help: options.help, type: options.type, aggregator: 'sum', values: options.values() }),
    reset: options.reset
  }
  return metric as unknown as Metric
}

const OPERATIONS: Record<string, [service: string, operation: string]> = {
  getSecret: ['secretsmanager', 'GetSecretValue'],
  batchGetSecrets: ['secretsmanager', 'BatchGetSecretValue'],
  getParameter: ['ssm', 'GetParameter'],
  getParametersByPath: ['ssm', 'GetParametersByPath'],
  encrypt: ['kms', 'Encrypt'],
  decrypt: ['kms', 'Decrypt'],
  generateDataKey: ['kms', 'GenerateDataKey']
}

/** The outcome label of a provider call: a small fixed set. */
export function outcomeOf (error: unknown): string {
  if (error === undefined) return 'success'
  if (error instanceof ProviderError) {
    switch (error.name) {
      case 'NotFoundError': return 'not_found'
      case 'AccessDeniedError': return 'access_denied'
      case 'CredentialsError': return 'credentials'
      case 'InvalidRequestError': return 'invalid'
      case 'ThrottledError': return 'throttled'
      case 'UpstreamTimeoutError': return 'timeout'
      case 'CancelledError': return 'cancelled'
      default: return 'error'
    }
  }
  return 'error'
}

/**
 * Wraps a provider so that each call is counted and timed by service, operation and outcome.
 * The provider itself stays free of metrics.
 */
export function instrumentProvider<P extends Provider> (provider: P, metrics: Metrics): P {
  const instrumented: P = new Proxy(provider, {
    get (target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver)
      // An envelope keyring makes its KMS calls through the counted ones.
      if (property === 'envelopeKeyring' && typeof value === 'function') {
        return async (keyId: string, options?: EnvelopeKeyringOptions) => await (value as Provider['envelopeKeyring']).call(target, keyId, { ...options, kms: instrumented })
      }
      const names = typeof property === 'string' ? OPERATIONS[property] : undefined
      if (names === undefined || typeof value !== 'function') return typeof value === 'function' ? value.bind(target) : value
      const [service, operation] = names
      return async (...args: unknown[]) => {
        const end = metrics.upstreamDuration.startTimer({ service, operation })
        try {
          const result: unknown = await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args)
          // A batch-get that failed for some region answered the others: counted by that failure.
          const failed = property === 'batchGetSecrets' ? (result as BatchGetSecretsResult).failedCalls?.[0] : undefined
          metrics.upstreamRequests.inc({ service, operation, outcome: outcomeOf(failed) })
          return result
        } catch (error) {
          metrics.upstreamRequests.inc({ service, operation, outcome: outcomeOf(error) })
          throw error
        } finally {
          end()
        }
      }
    }
  })
  return instrumented
}

export interface MetricsServer {
  url: string
  close (): Promise<void>
}

/**
 * The metrics listener: a bare node:http server on its own address (DESIGN §7), so a scraper can
 * reach it on the pod network while secrets stay on loopback. It answers GET /metrics only.
 */
export async function startMetricsServer (metrics: Metrics, listen: string): Promise<MetricsServer> {
  const { createServer } = nodeHttp()
  const colon = listen.lastIndexOf(':')
  const host = unbracketed(listen.slice(0, colon))
  const port = Number(listen.slice(colon + 1))
  const server = createServer((request, response) => {
    const path = (request.url ?? '').split('?')[0]
    if (request.method !== 'GET' || path !== '/metrics') {
      response.writeHead(path === '/metrics' ? 405 : 404, { 'content-type': 'text/plain; charset=utf-8' }).end(path === '/metrics' ? 'method not allowed\n' : 'not found\n')
      return
    }
    metrics.text().then(
      (text) => { response.writeHead(200, { 'content-type': metrics.contentType }).end(text) },
      () => { response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('metrics failed\n') }
    )
  })
  server.keepAliveTimeout = 5000
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => { server.off('error', reject); resolve() })
  })
  const address = server.address()
  const bound = typeof address === 'object' && address !== null ? address.port : port
  const shownHost = host.includes(':') ? `[${host}]` : host
  return {
    url: `http://${shownHost}:${bound}/metrics`,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) })
  }
}
