/**
 * Refresh-ahead, measured (issue 4): upstream calls per key per hour, and the latency of cache
 * hits across refresh boundaries.
 *
 * Two measurements:
 * 1. Over HTTP, for real: the agent (`serve --provider aws`, compiled) against the fake AWS server
 *    with `--latency-ms` of upstream latency and a short TTL (`--ttl`, default 4 s). Readers read
 *    one key continuously for `--ttls` TTLs; every read's latency is recorded and classed by
 *    whether a refresh was in flight at the fake while it ran. Calls per TTL are counted at the
 *    fake, and scaled to calls per key per hour at the production TTL (`--production-ttl`, 300 s).
 * 2. In process, on a fake clock: the SecretCache itself, `--keys` keys each read once a second
 *    for one simulated hour at the production TTL, upstream taking `--latency-ms` of fake time.
 *    Exact calls per key per hour, no scaling, and how many reads had to wait for upstream.
 *
 * Usage: node --import tsx bench/refresh.ts [--latency-ms 300] [--ttl 4] [--ttls 10] [--quick]
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { parseArgs } from 'node:util'
import { SecretCache, type Cached } from '../src/cache/secret-cache.js'
import { FakeAws } from '../test/support/fake-aws.js'
import { FakeClock, settle } from '../test/support/fake-clock.js'
import { ROOT, build } from './lib/build.js'
import { get, keepAlive } from './lib/http.js'
import { LOADGEN_CPU, PINNING, SERVER_CPU, onExit, pinSelf, sleep } from './lib/procs.js'
import { TOKEN_HEADER, startAgentProcess, type ServerProcess } from './lib/servers.js'
import { Samples, percentiles, round, type Percentiles } from './lib/stats.js'

export const AWS_KEY_ID = 'AKIDBENCH'
export const AWS_SECRET = 'bench-secret-access-key'

/** The environment that points the agent's AWS SDK at the fake, with static credentials. */
export function fakeAwsEnv (fake: FakeAws, extra: Record<string, string> = {}): Record<string, string> {
  return {
    AWS_ENDPOINT_URL: fake.url,
    AWS_ACCESS_KEY_ID: AWS_KEY_ID,
    AWS_SECRET_ACCESS_KEY: AWS_SECRET,
    AWS_REGION: 'us-east-1',
    AWS_EC2_METADATA_DISABLED: 'true',
    SECRETS_AGENT_VALIDATE_CREDENTIALS: 'false',
    ...extra
  }
}

export interface HttpRefreshOptions {
  ttlS: number
  ttls: number
  latencyMs: number
  readers: number
  /** Pause between one reader's reads, ms (keeps the offered load modest and steady). */
  pauseMs: number
  productionTtlS: number
}

export interface HttpRefreshResult {
  ttlS: number
  upstreamLatencyMs: number
  durationS: number
  reads: number
  outcomes: Record<string, number>
  upstreamCalls: number
  callsPerTtl: number
  /** callsPerTtl scaled to the production TTL: calls per key per hour. */
  callsPerKeyPerHourScaled: number
  /** Reads after the first that took at least half the upstream latency: they waited for AWS. */
  readsThatWaited: number
  /** Hit latency (ms) of every read after the first, and split by a refresh in flight or not. */
  latencyMs: { all: Percentiles, duringRefresh: Percentiles, otherwise: Percentiles }
}

/**
 * Reads `secretId` continuously through the agent for `ttls` TTLs. The agent must be configured
 * with `SECRETS_MANAGER_TTL = ttlS` and the fake with `latencyMs`.
 */
export async function measureRefreshOverHttp (agent: ServerProcess, token: string, fake: FakeAws, secretId: string, options: HttpRefreshOptions): Promise<HttpRefreshResult> {
  const url = `${agent.base}/secretsmanager/get?secretId=${encodeURIComponent(secretId)}`
  const headers = { [TOKEN_HEADER]: token }
  const http = keepAlive(options.readers)
  fake.resetCalls()
  const first = await get(url, headers, { agent: http })
  if (first.status !== 200) throw new Error(`refresh bench: first read answered ${first.status}: ${first.body.toString('utf8')}`)

  const starts = new Samples()
  const durations = new Samples()
  const outcomes: Record<string, number> = {}
  const began = Date.now()
  const end = began + options.ttlS * options.ttls * 1000
  const reader = async (): Promise<void> => {
    while (Date.now() < end) {
      const at = performance.timeOrigin + performance.now()
      const answer = await get(url, headers, { agent: http })
      const cache = String(answer.headers['x-cache'] ?? answer.status)
      outcomes[cache] = (outcomes[cache] ?? 0) + 1
      starts.push(at)
      durations.push(answer.ms)
      if (options.pauseMs > 0) await sleep(options.pauseMs)
    }
  }
  await Promise.all(Array.from({ length: options.readers }, reader))
  const durationS = (Date.now() - began) / 1000
  http.destroy()

  const calls = fake.calls.filter((c) => c.operation === 'GetSecretValue')
  // The first read's call is the cold fetch, not a refresh.
  const refreshes = calls.slice(1).map((c) => [c.at.getTime(), c.at.getTime() + options.latencyMs + 5] as const)
  const during = new Samples()
  const otherwise = new Samples()
  let waited = 0
  const s = starts.values()
  const d = durations.values()
  for (let i = 0; i < s.length; i++) {
    const from = s[i] ?? 0
    const ms = d[i] ?? 0
    const to = from + ms
    if (ms >= options.latencyMs / 2) waited++
    const overlaps = refreshes.some(([a, b]) => from < b && to > a)
    ;(overlaps ? during : otherwise).push(ms)
  }
  const upstreamCalls = calls.length - 1
  const callsPerTtl = upstreamCalls / (durationS / options.ttlS)
  return {
    ttlS: options.ttlS,
    upstreamLatencyMs: options.latencyMs,
    durationS: round(durationS, 2),
    reads: s.length,
    outcomes,
    upstreamCalls,
    callsPerTtl: round(callsPerTtl, 2),
    callsPerKeyPerHourScaled: round(callsPerTtl * 3600 / options.productionTtlS, 1),
    readsThatWaited: waited,
    latencyMs: { all: roundAll(percentiles(d)), duringRefresh: roundAll(percentiles(during.values())), otherwise: roundAll(percentiles(otherwise.values())) }
  }
}

export interface SimulatedHourResult {
  ttlS: number
  upstreamLatencyMs: number
  keys: number
  readsPerKeyPerSecond: number
  callsPerKeyPerHour: number
  minCallsPerKey: number
  maxCallsPerKey: number
  reads: number
  /** Reads that had to wait for upstream, beyond each key's first (cold) read. */
  readsThatWaited: number
}

/** One hour of SecretCache on a fake clock: `keys` keys, each read once a second. */
export async function simulateHour (options: { ttlS: number, latencyMs: number, keys: number }): Promise<SimulatedHourResult> {
  const clock = new FakeClock()
  const cache = new SecretCache({ maxEntries: options.keys + 10, maxBytes: 64 * 1024 * 1024, maxStaleMs: 86_400_000, staleIfError: true, now: clock.now })
  const calls = new Map<string, number>()
  const loader = (key: string) => async (): Promise<Cached<string>> => {
    calls.set(key, (calls.get(key) ?? 0) + 1)
    await clock.sleep(options.latencyMs)
    return { body: Buffer.from('{}'), value: key }
  }
  const ttlMs = options.ttlS * 1000
  let reads = 0
  let waited = 0
  const all: Array<Promise<unknown>> = []
  for (let second = 0; second < 3600; second++) {
    const done = new Array<boolean>(options.keys).fill(false)
    for (let k = 0; k < options.keys; k++) {
      const key = `key-${k}`
      all.push(cache.get(key, loader(key), { ttlMs }).then(() => { done[k] = true }))
      reads++
    }
    // A hit resolves within a few turns; a read still pending waits for the (fake) upstream.
    await settle()
    if (second > 0) waited += done.filter((d) => !d).length
    await clock.advance(1000)
  }
  await clock.advance(options.latencyMs + 1000)
  await Promise.all(all)
  const perKey = [...calls.values()]
  const total = perKey.reduce((a, b) => a + b, 0)
  return {
    ttlS: options.ttlS,
    upstreamLatencyMs: options.latencyMs,
    keys: options.keys,
    readsPerKeyPerSecond: 1,
    callsPerKeyPerHour: round(total / options.keys, 2),
    minCallsPerKey: Math.min(...perKey),
    maxCallsPerKey: Math.max(...perKey),
    reads,
    readsThatWaited: waited
  }
}

function roundAll (p: Percentiles): Percentiles {
  return { count: p.count, p50: round(p.p50), p90: round(p.p90), p99: round(p.p99), p999: round(p.p999), max: round(p.max), mean: round(p.mean) }
}

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      'latency-ms': { type: 'string', default: '300' },
      ttl: { type: 'string', default: '4' },
      ttls: { type: 'string', default: '10' },
      readers: { type: 'string', default: '4' },
      'pause-ms': { type: 'string', default: '2' },
      'production-ttl': { type: 'string', default: '300' },
      keys: { type: 'string', default: '100' },
      quick: { type: 'boolean', default: false },
      out: { type: 'string', default: join(ROOT, 'docs', 'bench', 'refresh.json') }
    }
  })
  const latencyMs = Number(values['latency-ms'])
  const ttlS = Number(values.ttl)
  const ttls = values.quick ? 3 : Number(values.ttls)
  const productionTtlS = Number(values['production-ttl'])
  if (!(latencyMs >= 0) || !(ttlS >= 1) || !(ttls >= 1) || !(productionTtlS >= 1)) throw new Error('bad --latency-ms, --ttl, --ttls or --production-ttl')
  if (latencyMs >= ttlS * 1000 * 0.1) console.warn(`note: ${latencyMs} ms of latency is over 10% of a ${ttlS} s TTL: refreshes started at 90% of the TTL end after it expires, and reads then wait`)
  pinSelf(LOADGEN_CPU)

  const built = await build((line) => console.log(line))
  const dir = mkdtempSync(join(tmpdir(), 'sa-bench-refresh-'))
  onExit(() => { rmSync(dir, { recursive: true, force: true }) })
  const fake = await FakeAws.start({ credentials: { [AWS_KEY_ID]: AWS_SECRET } })
  let agent: ServerProcess | undefined
  try {
    fake.putSecret({ name: 'bench/refresh', secretString: JSON.stringify({ username: 'app', password: 'refresh-bench-pw' }) })
    fake.latencyMs = latencyMs
    const token = 'bench-' + Math.random().toString(36).slice(2)
    agent = await startAgentProcess({
      cli: built.cli, dir, token, provider: 'aws', cpu: PINNING ? SERVER_CPU : null, waitPath: '/ready',
      env: fakeAwsEnv(fake, { SECRETS_MANAGER_TTL: String(ttlS) })
    })
    console.log(`over HTTP: TTL ${ttlS} s, ${ttls} TTLs, upstream latency ${latencyMs} ms ...`)
    const http = await measureRefreshOverHttp(agent, token, fake, 'bench/refresh', {
      ttlS, ttls, latencyMs, readers: Number(values.readers), pauseMs: Number(values['pause-ms']), productionTtlS
    })
    await agent.stop()
    console.log(`in process, fake clock: ${values.keys} keys for one hour at TTL ${productionTtlS} s ...`)
    const simulated = await simulateHour({ ttlS: productionTtlS, latencyMs, keys: Number(values.keys) })
    const result = { when: new Date().toISOString(), machine: machine(), http, simulated }
    printRefresh(http, simulated)
    if (!values.quick) {
      mkdirSync(dirname(values.out), { recursive: true })
      writeFileSync(values.out, JSON.stringify(result, null, 2) + '\n')
      console.log(`wrote ${values.out}`)
    }
  } finally {
    await agent?.stop()
    await fake.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

export function printRefresh (http: HttpRefreshResult, simulated: SimulatedHourResult): void {
  const p = (x: Percentiles): string => `p50 ${x.p50} / p99 ${x.p99} / p99.9 ${x.p999} / max ${x.max} ms (n=${x.count})`
  console.log([
    `Refresh over HTTP (TTL ${http.ttlS} s, upstream ${http.upstreamLatencyMs} ms, ${http.durationS} s):`,
    `  upstream calls ${http.upstreamCalls} = ${http.callsPerTtl} per TTL -> ${http.callsPerKeyPerHourScaled} per key per hour at the production TTL (scaled)`,
    `  reads ${http.reads} ${JSON.stringify(http.outcomes)}; reads that waited for upstream: ${http.readsThatWaited}`,
    `  hit latency, all:              ${p(http.latencyMs.all)}`,
    `  hit latency, refresh in flight: ${p(http.latencyMs.duringRefresh)}`,
    `  hit latency, otherwise:        ${p(http.latencyMs.otherwise)}`,
    `Simulated hour (fake clock, SecretCache in process, TTL ${simulated.ttlS} s, ${simulated.keys} keys read every second):`,
    `  ${simulated.callsPerKeyPerHour} calls per key per hour (min ${simulated.minCallsPerKey}, max ${simulated.maxCallsPerKey}); reads that waited after the first: ${simulated.readsThatWaited} of ${simulated.reads}`
  ].join('\n'))
}

export function machine (): Record<string, unknown> {
  return { node: process.version, platform: process.platform, arch: process.arch, pinned: PINNING }
}

if (import.meta.url === `file://${process.argv[1] ?? ''}`) {
  main().then(() => process.exit(0), (error: unknown) => {
    console.error(error)
    process.exit(1)
  })
}
