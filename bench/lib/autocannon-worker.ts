/**
 * The load generator, run as its own (pinned) process: autocannon, configured by JSON in argv[2].
 * Prints one JSON line: counts, and latency percentiles computed from every 2xx response's own
 * hrtime duration (autocannon's histogram keeps whole milliseconds, which flattens a cache hit's
 * sub-millisecond latencies to 0 or 1).
 *
 * Two modes:
 * - `rate`: a fixed offered load. autocannon's rate limit is per connection and per second: each
 *   connection sends its quota back to back at the start of every second, all connections in step,
 *   which makes one burst a second rather than a steady stream. So this runs one autocannon
 *   instance per connection (`overallRate` = its share of the rate), their starts staggered evenly
 *   over one second: bursts of one connection, spread over the second.
 * - `count`: one autocannon instance, closed loop, for `amount` requests (or `duration`).
 */
import autocannon, { type Instance, type Result } from 'autocannon'
import { Samples, percentiles, type Percentiles } from './stats.js'

export type WorkerOptions =
  | { mode: 'rate', url: string, headers: Record<string, string>, rate: number, connections: number, durationS: number, skipMs?: number }
  | { mode: 'count', url: string, headers: Record<string, string>, connections: number, amount?: number, durationS?: number, skipMs?: number }

export interface WorkerResult {
  requests: number
  ok: number
  non2xx: number
  errors: number
  timeouts: number
  durationS: number
  rps: number
  /** Latency of 2xx responses, in ms. */
  latencyMs: Percentiles
}

const options = JSON.parse(process.argv[2] ?? '{}') as WorkerOptions
const skipMs = options.skipMs ?? 0
const samples = new Samples()
const started = performance.now()
let ok = 0
const instances: Instance[] = []

function run (settings: Parameters<typeof autocannon>[0]): Promise<Result> {
  return new Promise((resolve, reject) => {
    const instance = autocannon({ timeout: 10, ...settings }, (error, result) => { if (error !== null) reject(error); else resolve(result) })
    instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
      if (statusCode < 200 || statusCode > 299) return
      ok++
      if (performance.now() - started >= skipMs) samples.push(responseTime)
    })
    instances.push(instance)
  })
}

async function main (): Promise<WorkerResult> {
  const runs: Array<Promise<Result>> = []
  if (options.mode === 'rate') {
    const n = Math.max(1, Math.min(options.connections, options.rate))
    for (let i = 0; i < n; i++) {
      const share = Math.floor(options.rate / n) + (i < options.rate % n ? 1 : 0)
      runs.push(new Promise((resolve) => setTimeout(resolve, (i * 1000) / n)).then(async () =>
        run({ url: options.url, headers: options.headers, connections: 1, overallRate: share, duration: options.durationS })))
    }
  } else {
    runs.push(run({
      url: options.url,
      headers: options.headers,
      connections: options.connections,
      ...(options.amount !== undefined ? { amount: options.amount } : { duration: options.durationS ?? 10 })
    }))
  }
  const results = await Promise.all(runs)
  const durationS = (performance.now() - started) / 1000
  const sum = (pick: (r: Result) => number): number => results.reduce((total, r) => total + pick(r), 0)
  const requests = sum((r) => r.requests.total)
  return {
    requests,
    ok,
    non2xx: sum((r) => r.non2xx),
    errors: sum((r) => r.errors),
    timeouts: sum((r) => r.timeouts),
    durationS,
    rps: requests / durationS,
    latencyMs: percentiles(samples.values())
  }
}

process.once('SIGTERM', () => { for (const instance of instances) instance.stop() })
main().then(
  (result) => { process.stdout.write(JSON.stringify(result) + '\n') },
  (error: unknown) => { process.stderr.write(`autocannon: ${(error as Error).message}\n`); process.exitCode = 1 }
)
