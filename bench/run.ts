/**
 * `npm run bench`: how fast and how lean the agent is, against the runtime's own limit, measured
 * in one run on this machine (issue 8). Prints a table, writes docs/bench/results.json and
 * docs/bench/throughput.svg.
 *
 * What runs, each server in its own process pinned to one core, the load generator on another:
 * - cache-hit throughput (closed loop, wrk) and latency at a fixed offered rate (autocannon) of
 *   the agent (`serve --provider local`, log level info, metrics on) against a bare node:http
 *   server and a bare fastify server answering the same bytes after the same token check. The
 *   servers are interleaved round by round and ratios are taken within a round, then the median
 *   over rounds: this machine drifts by ±25% between runs of the same server.
 * - upstream calls: N concurrent cold reads (coalescing), and a key read for several TTLs
 *   (refresh ahead), against the fake AWS server (`--provider aws`);
 * - resident memory with 1,000 and 10,000 cached 4 KiB secrets, on the host's memory and (10,000,
 *   aws provider) in a memory cgroup with the examples' container limit, 256 MiB (as root);
 * - time from spawn to the first 200 on a real secret read, agent against bare fastify;
 * - KMS calls per 10,000 envelope encryptions with and without data-key caching.
 *
 * Flags (each also an environment variable BENCH_<NAME>, e.g. BENCH_ROUNDS=3):
 *   --quick               a smoke run: short rounds, small counts; writes nothing under docs/
 *   --rounds N            throughput and latency rounds (default 5)
 *   --duration S          seconds per server per round (default 5)
 *   --connections N       connections for wrk and autocannon (default 32)
 *   --rate N              offered req/s for the latency rounds (default 40% of node:http's median throughput)
 *   --starts N            starts per server for start-to-first-200 (default 7)
 *   --envelope-count N    envelope encryptions per caching mode (default 10000)
 *   --skip LIST           parts to leave out: hit,upstream,memory,start,kms
 *   --out-dir DIR         where results.json and throughput.svg go (default docs/bench)
 *   --agent-node-flags F  node flags for the agent, space-separated, instead of those it ships with
 *                         (the image's ENTRYPOINT, bench/lib/node-flags.ts); '' for none
 */
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, release, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { FakeAws } from '../test/support/fake-aws.js'
import { ROOT, build, type Built } from './lib/build.js'
import { get, keepAlive, pool, postJson } from './lib/http.js'
import { autocannon, ensureWrk, wrk } from './lib/load.js'
import { CPUS, LOADGEN_CPU, PINNING, SERVER_CPU, cpuPerRequest, memoryCgroup, onExit, pinSelf, rssBytes, runChild, sleep, type MemoryCgroup } from './lib/procs.js'
import { TOKEN_HEADER, agentNodeFlags, startAgentProcess, startBaseline, type ServerProcess } from './lib/servers.js'
import { HIT_PATH, HIT_SECRET_ID, writeCapturedResponse, writeHitStore } from './lib/hit.js'
import { environmentText, exampleMemoryLimitBytes, shippedEnvironment } from './lib/node-flags.js'
import { median, round } from './lib/stats.js'
import { chart } from './lib/svg.js'
import { AWS_KEY_ID, AWS_SECRET, fakeAwsEnv, measureRefreshOverHttp, type HttpRefreshResult } from './refresh.js'

const PARTS = ['hit', 'upstream', 'memory', 'start', 'kms'] as const
type Part = typeof PARTS[number]

interface Settings {
  quick: boolean
  rounds: number
  durationS: number
  connections: number
  rate: number | null
  rateFraction: number
  starts: number
  coalesceReaders: number
  refreshTtlS: number
  refreshTtls: number
  refreshLatencyMs: number
  memorySizes: number[]
  envelopeCount: number
  skip: Set<Part>
  outDir: string | null
  /** The node flags every agent runs with. */
  agentNodeFlags: string[]
  /** The environment the image sets, which every agent runs with too. */
  agentEnvironment: Record<string, string>
}

function settings (): Settings {
  const env = (name: string): string | undefined => process.env[`BENCH_${name.toUpperCase().replace(/-/g, '_')}`]
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: env('quick') === '1' || env('quick') === 'true' },
      rounds: { type: 'string', default: env('rounds') },
      duration: { type: 'string', default: env('duration') },
      connections: { type: 'string', default: env('connections') },
      rate: { type: 'string', default: env('rate') },
      starts: { type: 'string', default: env('starts') },
      'envelope-count': { type: 'string', default: env('envelope-count') },
      skip: { type: 'string', default: env('skip') },
      'out-dir': { type: 'string', default: env('out-dir') },
      'agent-node-flags': { type: 'string', default: env('agent-node-flags') }
    }
  })
  // servers.ts reads it from there, for every agent any part starts.
  if (values['agent-node-flags'] !== undefined) process.env.BENCH_AGENT_NODE_FLAGS = values['agent-node-flags']
  const quick = values.quick === true
  const int = (v: string | undefined, fallback: number, name: string, min = 1): number => {
    if (v === undefined || v === '') return fallback
    const n = Number(v)
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be a whole number ≥ ${min}, not ${JSON.stringify(v)}`)
    return n
  }
  const skip = new Set<Part>()
  for (const part of (values.skip ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    if (!(PARTS as readonly string[]).includes(part)) throw new Error(`--skip: unknown part ${part} (parts: ${PARTS.join(', ')})`)
    skip.add(part as Part)
  }
  return {
    quick,
    rounds: int(values.rounds, quick ? 2 : 5, 'rounds'),
    durationS: int(values.duration, quick ? 2 : 5, 'duration'),
    connections: int(values.connections, 32, 'connections'),
    rate: values.rate === undefined ? null : int(values.rate, 0, 'rate'),
    rateFraction: 0.4,
    starts: int(values.starts, quick ? 3 : 7, 'starts'),
    coalesceReaders: quick ? 200 : 1000,
    refreshTtlS: 4,
    refreshTtls: quick ? 2 : 5,
    refreshLatencyMs: 300,
    memorySizes: quick ? [1000] : [1000, 10_000],
    envelopeCount: int(values['envelope-count'], quick ? 500 : 10_000, 'envelope-count'),
    skip,
    outDir: values['out-dir'] ?? (quick ? null : join(ROOT, 'docs', 'bench')),
    agentNodeFlags: agentNodeFlags(),
    agentEnvironment: shippedEnvironment()
  }
}

const log = (line: string): void => { process.stdout.write(line + '\n') }
const MB = 1_000_000
const MiB = 1024 * 1024

interface ServerSet { agent: ServerProcess, http: ServerProcess, fastify: ServerProcess }
type Name = keyof ServerSet
const NAMES: Name[] = ['agent', 'http', 'fastify']
const LABEL: Record<Name, string> = { agent: 'agent', http: 'node:http', fastify: 'fastify' }

interface Context {
  s: Settings
  built: Built
  dir: string
  token: string
  headers: Record<string, string>
  hitStore: string
  responseFile: string | null
  fake: FakeAws
}

// ---- cache hits ------------------------------------------------------------------------------

interface HitResult {
  wrk: { skipped: string } | {
    connections: number
    durationS: number
    rounds: Array<{ order: string[], rps: Record<Name, number>, cpuUsPerRequest: Record<Name, number>, non2xx: number, socketErrors: number }>
    medianRps: Record<Name, number>
    /** The server's CPU time (user + system, all threads) per request answered, median of rounds. */
    medianCpuUsPerRequest: Record<Name, number>
    ratios: { agentToHttp: number, fastifyToHttp: number, agentToFastify: number, cpuAgentToHttp: number }
  }
  latency: {
    rate: number
    connections: number
    durationS: number
    rounds: Array<{ order: string[], p50: Record<Name, number>, p99: Record<Name, number>, p999: Record<Name, number>, achievedRps: Record<Name, number>, cpuUsPerRequest: Record<Name, number>, non2xx: number, errors: number }>
    median: Record<Name, { p50: number, p99: number, p999: number }>
    medianCpuUsPerRequest: Record<Name, number>
    ratios: { p50AgentToHttp: number, p99AgentToHttp: number, p999AgentToHttp: number, p99FastifyToHttp: number, cpuAgentToHttp: number }
  }
  responseBytes: number
  idleRssMB: Record<Name, number | null>
}

function rotate<T> (items: readonly T[], by: number): T[] {
  const k = by % items.length
  return [...items.slice(k), ...items.slice(0, k)]
}

async function startAll (ctx: Context): Promise<ServerSet> {
  const cpu = PINNING ? SERVER_CPU : null
  const agent = await startAgentProcess({ cli: ctx.built.cli, dir: ctx.dir, token: ctx.token, provider: 'local', store: ctx.hitStore, cpu, waitPath: HIT_PATH, logFile: join(ctx.dir, 'agent-hit.log') })
  const answer = await get(agent.base + HIT_PATH, ctx.headers)
  if (answer.status !== 200) throw new Error(`the agent answered ${answer.status} to the hit read`)
  const responseFile = join(ctx.dir, 'response.json')
  writeCapturedResponse(responseFile, answer)
  ctx.responseFile = responseFile
  const http = await startBaseline({ name: 'node-http', script: ctx.built.bareHttp, dir: ctx.dir, token: ctx.token, responseFile, cpu, waitPath: HIT_PATH })
  const fastify = await startBaseline({ name: 'fastify', script: ctx.built.bareFastify, dir: ctx.dir, token: ctx.token, responseFile, cpu, waitPath: HIT_PATH })
  // Same bytes from all three, and all three refuse a wrong token.
  for (const server of [http, fastify]) {
    const same = await get(server.base + HIT_PATH, ctx.headers)
    if (same.status !== 200 || !same.body.equals(answer.body)) throw new Error(`${server.name} does not answer the agent's bytes`)
  }
  for (const server of [agent, http, fastify]) {
    const refused = await get(server.base + HIT_PATH, { [TOKEN_HEADER]: 'wrong' })
    if (refused.status !== 401) throw new Error(`${server.name} answered ${refused.status} to a wrong token`)
  }
  return { agent, http, fastify }
}

async function measureHits (ctx: Context): Promise<HitResult> {
  const { s } = ctx
  const servers = await startAll(ctx)
  try {
    const url = (name: Name): string => servers[name].base + HIT_PATH
    const hasWrk = await ensureWrk(log)
    let wrkResult: HitResult['wrk']
    let baselineMedianRps: number | null = null
    if (!hasWrk.ok) {
      log(`SKIPPED: closed-loop throughput (wrk): ${hasWrk.reason}`)
      wrkResult = { skipped: hasWrk.reason }
    } else {
      log(`warm-up: wrk 2 s per server ...`)
      for (const name of NAMES) await wrk(url(name), ctx.headers, { connections: s.connections, durationS: 2 })
      const rounds: Extract<HitResult['wrk'], { rounds: unknown }>['rounds'] = []
      for (let r = 0; r < s.rounds; r++) {
        const order = rotate(NAMES, r)
        const rps = {} as Record<Name, number>
        const cpuUsPerRequest = {} as Record<Name, number>
        let non2xx = 0
        let socketErrors = 0
        for (const name of order) {
          const cpu = cpuPerRequest(servers[name].pid)
          const result = await wrk(url(name), ctx.headers, { connections: s.connections, durationS: s.durationS })
          cpuUsPerRequest[name] = round(cpu(result.requests))
          rps[name] = result.rps
          non2xx += result.non2xx
          socketErrors += result.socketErrors
        }
        rounds.push({ order: order.map((n) => LABEL[n]), rps, cpuUsPerRequest, non2xx, socketErrors })
        log(`throughput round ${r + 1}/${s.rounds}: ${order.map((n) => `${LABEL[n]} ${Math.round(rps[n])}`).join(', ')} req/s; agent/node:http ${round(rps.agent / rps.http, 3)}`)
      }
      const medianRps = Object.fromEntries(NAMES.map((n) => [n, round(median(rounds.map((r) => r.rps[n])), 0)])) as Record<Name, number>
      baselineMedianRps = medianRps.http
      wrkResult = {
        connections: s.connections,
        durationS: s.durationS,
        rounds,
        medianRps,
        medianCpuUsPerRequest: Object.fromEntries(NAMES.map((n) => [n, round(median(rounds.map((r) => r.cpuUsPerRequest[n])))])) as Record<Name, number>,
        ratios: {
          agentToHttp: round(median(rounds.map((r) => r.rps.agent / r.rps.http))),
          fastifyToHttp: round(median(rounds.map((r) => r.rps.fastify / r.rps.http))),
          agentToFastify: round(median(rounds.map((r) => r.rps.agent / r.rps.fastify))),
          cpuAgentToHttp: round(median(rounds.map((r) => r.cpuUsPerRequest.agent / r.cpuUsPerRequest.http)))
        }
      }
    }

    // A share of the baseline's throughput, the same for every server: not of the agent's own,
    // which would put the bar higher the faster the agent is under wrk, nearer saturation, where
    // queueing magnifies any difference.
    const rate = s.rate ?? (baselineMedianRps === null ? 2000 : Math.max(100, Math.floor((baselineMedianRps * s.rateFraction) / 100) * 100))
    log(`latency at a fixed ${rate} req/s (autocannon, ${s.connections} staggered connections), ${s.rounds} rounds ...`)
    const latencyRounds: HitResult['latency']['rounds'] = []
    for (let r = 0; r < s.rounds; r++) {
      const order = rotate(NAMES, r)
      const round_ = { order: order.map((n) => LABEL[n]), p50: {}, p99: {}, p999: {}, achievedRps: {}, cpuUsPerRequest: {}, non2xx: 0, errors: 0 } as HitResult['latency']['rounds'][number]
      for (const name of order) {
        const cpu = cpuPerRequest(servers[name].pid)
        // One extra second up front, not counted: the staggered starts ramp up during it.
        const result = await autocannon({ mode: 'rate', url: url(name), headers: ctx.headers, rate, connections: s.connections, durationS: s.durationS + 1, skipMs: 1500 }, (s.durationS + 60) * 1000)
        round_.p50[name] = round(result.latencyMs.p50)
        round_.p99[name] = round(result.latencyMs.p99)
        round_.p999[name] = round(result.latencyMs.p999)
        round_.achievedRps[name] = round(result.requests / (s.durationS + 1), 0)
        round_.cpuUsPerRequest[name] = round(cpu(result.requests))
        round_.non2xx += result.non2xx
        round_.errors += result.errors + result.timeouts
      }
      latencyRounds.push(round_)
      log(`latency round ${r + 1}/${s.rounds}: p99 ${order.map((n) => `${LABEL[n]} ${round_.p99[n]}`).join(', ')} ms; agent/node:http ${round(round_.p99.agent / round_.p99.http, 3)}`)
    }
    const med = (pick: (r: HitResult['latency']['rounds'][number]) => number): number => round(median(latencyRounds.map(pick)))
    const idleRssMB = Object.fromEntries(NAMES.map((n) => {
      const rss = rssBytes(servers[n].pid)
      return [n, rss === null ? null : round(rss / MB, 1)]
    })) as Record<Name, number | null>
    const responseBytes = Buffer.from((JSON.parse(readFileSync(ctx.responseFile ?? '', 'utf8')) as { bodyBase64: string }).bodyBase64, 'base64').length
    return {
      wrk: wrkResult,
      latency: {
        rate,
        connections: s.connections,
        durationS: s.durationS,
        rounds: latencyRounds,
        median: Object.fromEntries(NAMES.map((n) => [n, { p50: med((r) => r.p50[n]), p99: med((r) => r.p99[n]), p999: med((r) => r.p999[n]) }])) as HitResult['latency']['median'],
        medianCpuUsPerRequest: Object.fromEntries(NAMES.map((n) => [n, med((r) => r.cpuUsPerRequest[n])])) as Record<Name, number>,
        ratios: {
          cpuAgentToHttp: med((r) => r.cpuUsPerRequest.agent / r.cpuUsPerRequest.http),
          p50AgentToHttp: med((r) => r.p50.agent / r.p50.http),
          p99AgentToHttp: med((r) => r.p99.agent / r.p99.http),
          p999AgentToHttp: med((r) => r.p999.agent / r.p999.http),
          p99FastifyToHttp: med((r) => r.p99.fastify / r.p99.http)
        }
      },
      responseBytes,
      idleRssMB
    }
  } finally {
    await Promise.all(Object.values(servers).map(async (server) => server.stop()))
  }
}

// ---- upstream calls --------------------------------------------------------------------------

interface UpstreamResult {
  coalescing: Array<{ keys: number, concurrentReads: number, upstreamLatencyMs: number, upstreamCalls: number, statuses: Record<string, number>, outcomes: Record<string, number> }>
  refresh: HttpRefreshResult
}

async function measureUpstream (ctx: Context): Promise<UpstreamResult> {
  const { s, fake } = ctx
  fake.putSecret({ name: 'bench/cold', secretString: JSON.stringify({ password: 'cold' }) })
  for (let k = 0; k < 10; k++) fake.putSecret({ name: `bench/cold-${k}`, secretString: JSON.stringify({ password: `cold-${k}` }) })
  fake.putSecret({ name: 'bench/refresh', secretString: JSON.stringify({ password: 'refresh' }) })
  const agent = await startAgentProcess({
    cli: ctx.built.cli, dir: ctx.dir, token: ctx.token, provider: 'aws', cpu: PINNING ? SERVER_CPU : null, waitPath: '/ready', logFile: join(ctx.dir, 'agent-upstream.log'),
    env: fakeAwsEnv(fake, { SECRETS_MANAGER_TTL: String(s.refreshTtlS), SECRETS_AGENT_MAX_CONN: String(s.coalesceReaders + 100) })
  })
  try {
    const coalescing: UpstreamResult['coalescing'] = []
    for (const keys of [1, 10]) {
      fake.latencyMs = 500
      fake.resetCalls()
      const statuses: Record<string, number> = {}
      const outcomes: Record<string, number> = {}
      // Each read on its own connection, all sent at once; every key cold (never read before).
      await Promise.all(Array.from({ length: s.coalesceReaders }, async (_, i) => {
        const id = keys === 1 ? 'bench/cold' : `bench/cold-${i % keys}`
        const answer = await get(`${agent.base}/secretsmanager/get?secretId=${encodeURIComponent(id)}`, ctx.headers, { timeoutMs: 30_000 }).catch((error: unknown) => ({ status: `error ${(error as Error).message}`, headers: {} as Record<string, unknown> }))
        statuses[String(answer.status)] = (statuses[String(answer.status)] ?? 0) + 1
        const cache = String(answer.headers['x-cache'] ?? '-')
        outcomes[cache] = (outcomes[cache] ?? 0) + 1
      }))
      const upstreamCalls = fake.count('GetSecretValue')
      coalescing.push({ keys, concurrentReads: s.coalesceReaders, upstreamLatencyMs: fake.latencyMs, upstreamCalls, statuses, outcomes })
      log(`coalescing: ${s.coalesceReaders} concurrent cold reads of ${keys} key(s) -> ${upstreamCalls} upstream call(s); statuses ${JSON.stringify(statuses)}, X-Cache ${JSON.stringify(outcomes)}`)
    }
    fake.latencyMs = s.refreshLatencyMs
    log(`refresh: one key read for ${s.refreshTtls} TTLs of ${s.refreshTtlS} s, upstream ${s.refreshLatencyMs} ms ...`)
    const refresh = await measureRefreshOverHttp(agent, ctx.token, fake, 'bench/refresh', { ttlS: s.refreshTtlS, ttls: s.refreshTtls, latencyMs: s.refreshLatencyMs, readers: 4, pauseMs: 2, productionTtlS: 300 })
    log(`refresh: ${refresh.upstreamCalls} calls = ${refresh.callsPerTtl} per TTL (${refresh.callsPerKeyPerHourScaled}/key/hour at TTL 300 s); ${refresh.readsThatWaited} of ${refresh.reads} reads waited; hit p99 ${refresh.latencyMs.all.p99} ms, during a refresh ${refresh.latencyMs.duringRefresh.p99} ms`)
    return { coalescing, refresh }
  } finally {
    fake.latencyMs = 0
    await agent.stop()
  }
}

// ---- memory ----------------------------------------------------------------------------------

interface MemoryResult {
  provider: 'local' | 'aws'
  /** The memory cgroup limit the agent ran under (as in a container), or null: the host's memory. */
  memoryLimitMiB: number | null
  secrets: number
  valueBytes: number
  storeFileMB: number
  rssStartedMB: number
  /** 2 s after the reads: V8 still holds the garbage of the burst of upstream calls. */
  rssAfterReadsMB: number
  /**
   * SETTLE_S after the reads, idle: what the agent holds from then on. An idle V8 collects and
   * gives memory back (its memory reducer) about 8 s after its last full collection.
   */
  rssSettledMB: number
  /** rssSettledMB in two: anonymous memory (heap, buffers, malloc) and pages of files (node's own binary, mostly), which the kernel can drop and reload. */
  rssSettledAnonMB: number | null
  rssSettledFileMB: number | null
  /** RSS once a second from the end of the reads to the settled measure. */
  rssSeriesMB: number[]
  peakRssMB: number
  cacheEntries: number
  cacheMB: number
  heapUsedMB: number | null
  externalMB: number | null
  readErrors: number
}

/** Seconds after the reads at which RSS counts as settled (see MemoryResult.rssSettledMB). */
const SETTLE_S = 15

function metricValue (text: string, name: string): number | null {
  const match = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.eE+-]+)$`, 'm').exec(text)
  return match?.[1] === undefined ? null : Number(match[1])
}

/** A `/proc/PID/status` field in bytes (VmHWM, RssAnon, RssFile...), or null. */
function statusBytes (pid: number, field: string): number | null {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match?.[1] === undefined ? null : Number(match[1]) * 1024
  } catch {
    return null
  }
}

/**
 * RSS of an agent holding `count` cached 4 KiB secrets: `local` reads them from a store file (the
 * store's own copy of every value is then in the process too); `aws` from the fake AWS server,
 * as in production.
 */
async function measureMemory (ctx: Context, count: number, provider: 'local' | 'aws', cgroup?: MemoryCgroup): Promise<MemoryResult> {
  const valueBytes = 4096
  const secrets: Record<string, string> = {}
  // Random base64: 4096 characters of a value that does not compress or dedupe.
  for (let i = 0; i < count; i++) secrets[`bench/mem-${provider}/${String(i).padStart(5, '0')}`] = randomBytes(valueBytes * 3 / 4).toString('base64')
  const store = join(ctx.dir, `store-${count}.json`)
  let storeFileMB = 0
  if (provider === 'local') {
    writeFileSync(store, JSON.stringify({ secrets }))
    storeFileMB = round(readFileSync(store).length / MB, 1)
  } else {
    for (const [name, value] of Object.entries(secrets)) ctx.fake.putSecret({ name, secretString: value })
  }
  const cacheSize = { SECRETS_AGENT_CACHE_SIZE: String(Math.max(1000, count)) }
  const agent = await startAgentProcess({
    cli: ctx.built.cli, dir: ctx.dir, token: ctx.token, provider, cpu: PINNING ? SERVER_CPU : null, logFile: join(ctx.dir, `agent-mem-${provider}-${count}.log`),
    ...(cgroup === undefined ? {} : { cgroup }),
    ...(provider === 'local' ? { store, env: cacheSize } : { waitPath: '/ready', env: fakeAwsEnv(ctx.fake, cacheSize) })
  })
  try {
    await sleep(1000)
    const rssStarted = rssBytes(agent.pid) ?? 0
    const http = keepAlive(16)
    const names = Object.keys(secrets)
    let readErrors = 0
    await pool(names.length, 16, async (i) => {
      const answer = await get(`${agent.base}/secretsmanager/get?secretId=${encodeURIComponent(names[i] ?? '')}`, ctx.headers, { agent: http })
      if (answer.status !== 200) readErrors++
    })
    http.destroy()
    const series: number[] = []
    for (let second = 1; second <= SETTLE_S; second++) {
      await sleep(1000)
      series.push(round((rssBytes(agent.pid) ?? 0) / MB, 1))
    }
    const anon = statusBytes(agent.pid, 'RssAnon')
    const file = statusBytes(agent.pid, 'RssFile')
    const peak = statusBytes(agent.pid, 'VmHWM') ?? 0
    const metrics = (await get(agent.metricsUrl ?? '')).body.toString('utf8')
    const mb = (v: number | null): number | null => v === null ? null : round(v / MB, 1)
    return {
      provider,
      memoryLimitMiB: cgroup === undefined ? null : round(cgroup.limitBytes / MiB, 0),
      secrets: count,
      valueBytes,
      storeFileMB,
      rssStartedMB: round(rssStarted / MB, 1),
      rssAfterReadsMB: series[1] ?? NaN,
      rssSettledMB: series.at(-1) ?? NaN,
      rssSettledAnonMB: mb(anon),
      rssSettledFileMB: mb(file),
      rssSeriesMB: series,
      peakRssMB: round(peak / MB, 1),
      cacheEntries: metricValue(metrics, 'secrets_agent_cache_entries') ?? -1,
      cacheMB: mb(metricValue(metrics, 'secrets_agent_cache_bytes')) ?? -1,
      heapUsedMB: mb(metricValue(metrics, 'nodejs_heap_size_used_bytes')),
      externalMB: mb(metricValue(metrics, 'nodejs_external_memory_bytes')),
      readErrors
    }
  } finally {
    await agent.stop()
    rmSync(store, { force: true })
  }
}

// ---- start to first 200 ----------------------------------------------------------------------

interface StartResult {
  starts: number
  runs: Array<Record<string, number>>
  medianMs: Record<string, number>
  agentToFastify: number
}

async function measureStart (ctx: Context): Promise<StartResult> {
  const cpu = PINNING ? SERVER_CPU : null
  if (ctx.responseFile === null) {
    // The hit part was skipped: capture the agent's answer once.
    const agent = await startAgentProcess({ cli: ctx.built.cli, dir: ctx.dir, token: ctx.token, provider: 'local', store: ctx.hitStore, cpu, waitPath: HIT_PATH })
    const answer = await get(agent.base + HIT_PATH, ctx.headers)
    await agent.stop()
    ctx.responseFile = join(ctx.dir, 'response.json')
    writeCapturedResponse(ctx.responseFile, answer)
  }
  const responseFile = ctx.responseFile
  ctx.fake.putSecret({ name: HIT_SECRET_ID, secretString: readHitSecret(ctx.hitStore) })
  const starters: Record<string, () => Promise<ServerProcess>> = {
    agent: async () => startAgentProcess({ cli: ctx.built.cli, dir: ctx.dir, token: ctx.token, provider: 'local', store: ctx.hitStore, cpu, waitPath: HIT_PATH, logFile: join(ctx.dir, 'agent-start.log') }),
    fastify: async () => startBaseline({ name: 'fastify', script: ctx.built.bareFastify, dir: ctx.dir, token: ctx.token, responseFile, cpu, waitPath: HIT_PATH }),
    'node:http': async () => startBaseline({ name: 'node-http', script: ctx.built.bareHttp, dir: ctx.dir, token: ctx.token, responseFile, cpu, waitPath: HIT_PATH }),
    'agent (aws)': async () => startAgentProcess({ cli: ctx.built.cli, dir: ctx.dir, token: ctx.token, provider: 'aws', cpu, waitPath: HIT_PATH, logFile: join(ctx.dir, 'agent-start-aws.log'), env: fakeAwsEnv(ctx.fake) })
  }
  const names = Object.keys(starters)
  const runs: StartResult['runs'] = []
  // One unmeasured start of each first: the page cache then holds every file for all of them.
  for (const name of names) await (await (starters[name] as () => Promise<ServerProcess>)()).stop()
  for (let r = 0; r < ctx.s.starts; r++) {
    const run: Record<string, number> = {}
    for (const name of rotate(names, r)) {
      const server = await (starters[name] as () => Promise<ServerProcess>)()
      run[name] = round(server.readyAt - server.spawnedAt, 1)
      await server.stop()
    }
    runs.push(run)
    log(`start ${r + 1}/${ctx.s.starts}: ${names.map((n) => `${n} ${run[n]} ms`).join(', ')}`)
  }
  const medianMs = Object.fromEntries(names.map((n) => [n, round(median(runs.map((r) => r[n] ?? Number.NaN)), 1)]))
  return { starts: ctx.s.starts, runs, medianMs, agentToFastify: round(median(runs.map((r) => (r.agent ?? 0) / (r.fastify ?? 1)))) }
}

function readHitSecret (store: string): string {
  return (JSON.parse(readFileSync(store, 'utf8')) as { secrets: Record<string, string> }).secrets[HIT_SECRET_ID] ?? ''
}

// ---- KMS -------------------------------------------------------------------------------------

type KmsResult = { measured: false, reason: string } | {
  measured: true
  encryptions: number
  plaintextBytes: number
  modes: Array<{ dataKeyCaching: boolean, kmsCalls: Record<string, number>, kmsCallsTotal: number, callsPer10k: number, failures: number, seconds: number }>
}

async function measureKms (ctx: Context): Promise<KmsResult> {
  if (!existsSync(join(ROOT, 'src', 'server', 'routes', 'kms.ts'))) return { measured: false, reason: 'src/server/routes/kms.ts does not exist (the /envelope/encrypt route is not built yet)' }
  const { fake } = ctx
  const keyArn = fake.createKey({ alias: 'bench-envelope' })
  const plaintext = randomBytes(256).toString('base64')
  const modes: Extract<KmsResult, { measured: true }>['modes'] = []
  for (const caching of [true, false]) {
    const agent = await startAgentProcess({
      cli: ctx.built.cli, dir: ctx.dir, token: ctx.token, provider: 'aws', cpu: PINNING ? SERVER_CPU : null, waitPath: '/ready', logFile: join(ctx.dir, `agent-kms-${String(caching)}.log`),
      env: fakeAwsEnv(fake, { SECRETS_AGENT_KMS_DATA_KEY_CACHING: String(caching), SECRETS_AGENT_LOG_LEVEL: 'warn' })
    })
    try {
      // The first encryption is also the probe that the route exists; it is counted with the rest.
      fake.resetCalls()
      const began = performance.now()
      const probe = await postJson(`${agent.base}/envelope/encrypt`, { KeyId: keyArn, Plaintext: plaintext }, ctx.headers)
      if (probe.status === 404) return { measured: false, reason: `/envelope/encrypt answered 404: ${probe.body.toString('utf8').slice(0, 200)}` }
      if (probe.status !== 200) return { measured: false, reason: `/envelope/encrypt answered ${probe.status}: ${probe.body.toString('utf8').slice(0, 200)}` }
      const http = keepAlive(16)
      let failures = 0
      await pool(ctx.s.envelopeCount - 1, 16, async () => {
        const answer = await postJson(`${agent.base}/envelope/encrypt`, { KeyId: keyArn, Plaintext: plaintext }, ctx.headers, http)
        if (answer.status !== 200) failures++
      })
      const seconds = round((performance.now() - began) / 1000, 1)
      http.destroy()
      const kmsCalls: Record<string, number> = {}
      for (const call of fake.calls) if (call.service === 'kms') kmsCalls[call.operation] = (kmsCalls[call.operation] ?? 0) + 1
      const total = Object.values(kmsCalls).reduce((a, b) => a + b, 0)
      modes.push({ dataKeyCaching: caching, kmsCalls, kmsCallsTotal: total, callsPer10k: round(total * 10_000 / ctx.s.envelopeCount, 1), failures, seconds })
      log(`kms: ${ctx.s.envelopeCount} envelope encryptions, data-key caching ${caching ? 'on' : 'off'}: ${total} KMS calls ${JSON.stringify(kmsCalls)}, ${failures} failures, ${seconds} s`)
    } finally {
      await agent.stop()
    }
  }
  return { measured: true, encryptions: ctx.s.envelopeCount, plaintextBytes: 256, modes }
}

// ---- report ----------------------------------------------------------------------------------

interface Goal { goal: string, target: string, value: string, met: boolean | null }

function goals (hit: HitResult | null, start: StartResult | null, memory: MemoryResult[]): Goal[] {
  const out: Goal[] = []
  const w = hit !== null && 'ratios' in hit.wrk ? hit.wrk : null
  out.push({ goal: 'cache-hit throughput vs bare node:http', target: '≥ 0.85×', value: w === null ? 'not measured' : `${w.ratios.agentToHttp}×`, met: w === null ? null : w.ratios.agentToHttp >= 0.85 })
  out.push({ goal: `p99 at ${hit?.latency.rate ?? '?'} req/s vs bare node:http`, target: '≤ 1.5×', value: hit === null ? 'not measured' : `${hit.latency.ratios.p99AgentToHttp}×`, met: hit === null ? null : hit.latency.ratios.p99AgentToHttp <= 1.5 })
  out.push({ goal: 'start to first 200 vs bare fastify', target: '≤ 1.2×', value: start === null ? 'not measured' : `${start.agentToFastify}×`, met: start === null ? null : start.agentToFastify <= 1.2 })
  // Judged on the aws provider, as the agent runs in production: in a container's memory limit
  // when the machine lets the bench make one, on the host's memory otherwise (shown beside it).
  // On the local store the store's own copy of every value is in the process as well (41 MB more
  // for these 10,000): reported, not judged.
  const aws = memory.filter((m) => m.secrets === 10_000 && m.provider === 'aws')
  const judged = aws.find((m) => m.memoryLimitMiB !== null) ?? aws[0]
  const host = aws.find((m) => m.memoryLimitMiB === null)
  // Judged settled, as the agent then stays; the figure right after the burst of reads is beside it.
  const both = (m: MemoryResult): string => `${m.rssSettledMB} MB settled, ${m.rssAfterReadsMB} MB 2 s after the reads`
  const value = judged === undefined
    ? 'not measured'
    : judged.memoryLimitMiB === null ? both(judged) : `${both(judged)}, in a ${judged.memoryLimitMiB} MiB cgroup${host === undefined ? '' : ` (on the host's memory: ${both(host)})`}`
  out.push({ goal: 'RSS with 10,000 cached 4 KiB secrets (aws provider)', target: '≤ 120 MB', value, met: judged === undefined ? null : judged.rssSettledMB <= 120 })
  return out
}

function table (rows: string[][]): string {
  const [head, ...body] = rows
  if (head === undefined) return ''
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...body.map((r) => `| ${r.join(' | ')} |`)].join('\n')
}

function report (results: Results): string {
  const lines: string[] = []
  const { hit, upstream, memory, start, kms } = results
  if (hit !== null) {
    const w = 'ratios' in hit.wrk ? hit.wrk : null
    const l = hit.latency
    const rows: string[][] = [['cache hit', 'agent', 'bare node:http', 'bare fastify', 'agent ÷ node:http']]
    if (w !== null) rows.push([`throughput, req/s (wrk, ${w.connections} conn., median of ${w.rounds.length} × ${w.durationS} s)`, String(w.medianRps.agent), String(w.medianRps.http), String(w.medianRps.fastify), `${w.ratios.agentToHttp}×`])
    else rows.push(['throughput (wrk)', 'skipped', '', '', ''])
    if (w !== null) rows.push(['CPU per request under wrk, µs', String(w.medianCpuUsPerRequest.agent), String(w.medianCpuUsPerRequest.http), String(w.medianCpuUsPerRequest.fastify), `${w.ratios.cpuAgentToHttp}×`])
    for (const [label, key, ratio] of [['p50', 'p50', l.ratios.p50AgentToHttp], ['p99', 'p99', l.ratios.p99AgentToHttp], ['p99.9', 'p999', l.ratios.p999AgentToHttp]] as const) {
      rows.push([`latency ${label} at ${l.rate} req/s, ms`, String(l.median.agent[key]), String(l.median.http[key]), String(l.median.fastify[key]), `${ratio}×`])
    }
    rows.push([`CPU per request at ${l.rate} req/s, µs`, String(l.medianCpuUsPerRequest.agent), String(l.medianCpuUsPerRequest.http), String(l.medianCpuUsPerRequest.fastify), `${l.ratios.cpuAgentToHttp}×`])
    if (start !== null) rows.push([`start to first 200, ms (median of ${start.starts})`, String(start.medianMs.agent), String(start.medianMs['node:http']), String(start.medianMs.fastify), `${start.agentToFastify}× fastify`])
    rows.push(['RSS after the hit runs, MB', String(hit.idleRssMB.agent), String(hit.idleRssMB.http), String(hit.idleRssMB.fastify), ''])
    lines.push(table(rows), '')
    lines.push(`Ratios are medians of same-round ratios. CPU: the server's user and system time, all threads, per request answered. Response: ${hit.responseBytes} bytes.${start !== null ? ` Agent on --provider aws (fake AWS), start to first 200: ${start.medianMs['agent (aws)']} ms.` : ''}`, '')
  } else if (start !== null) {
    lines.push(`start to first 200 (median of ${start.starts}): ${JSON.stringify(start.medianMs)}; agent ÷ fastify ${start.agentToFastify}×`, '')
  }
  const rows: string[][] = [['measure', 'result']]
  if (upstream !== null) {
    for (const c of upstream.coalescing) rows.push([`${c.concurrentReads} concurrent cold reads of ${c.keys} key${c.keys > 1 ? 's' : ''} (upstream ${c.upstreamLatencyMs} ms)`, `${c.upstreamCalls} upstream call${c.upstreamCalls === 1 ? '' : 's'}; ${Object.entries(c.statuses).map(([k, v]) => `${v}× ${k}`).join(', ')}`])
    const r = upstream.refresh
    rows.push([`one key read for ${r.durationS} s, TTL ${r.ttlS} s, upstream ${r.upstreamLatencyMs} ms`, `upstream calls per TTL: ${r.callsPerTtl} (≈ ${r.callsPerKeyPerHourScaled}/key/hour at TTL 300 s); ${r.readsThatWaited} of ${r.reads} reads waited for upstream`])
    rows.push(['hit latency across refreshes, p50 / p99 / p99.9 ms', `all ${r.latencyMs.all.p50} / ${r.latencyMs.all.p99} / ${r.latencyMs.all.p999}; refresh in flight ${r.latencyMs.duringRefresh.p50} / ${r.latencyMs.duringRefresh.p99} / ${r.latencyMs.duringRefresh.p999} (n=${r.latencyMs.duringRefresh.count})`])
  }
  for (const m of memory) rows.push([`RSS with ${m.secrets.toLocaleString('en-US')} cached 4 KiB secrets (${m.provider === 'local' ? 'local store' : 'aws provider, fake AWS'}${m.memoryLimitMiB === null ? '' : `, in a ${m.memoryLimitMiB} MiB memory cgroup`})`, `${m.rssSettledMB} MB settled (anonymous ${m.rssSettledAnonMB ?? '?'} MB, files ${m.rssSettledFileMB ?? '?'} MB); ${m.rssAfterReadsMB} MB 2 s after the reads, ${m.rssStartedMB} MB before them; cache's own count ${m.cacheMB} MB in ${m.cacheEntries} entries; heap ${m.heapUsedMB ?? '?'} MB, external ${m.externalMB ?? '?'} MB)`])
  if (kms !== null) {
    // Counted, not scaled: with caching, calls grow with data keys used, not with messages.
    if (!kms.measured) rows.push(['KMS calls for envelope encryptions', `not measured: ${kms.reason}`])
    else for (const m of kms.modes) rows.push([`KMS calls for ${kms.encryptions.toLocaleString('en-US')} envelope encryptions, data-key caching ${m.dataKeyCaching ? 'on' : 'off'}`, `${m.kmsCallsTotal} (${Object.entries(m.kmsCalls).map(([k, v]) => `${v} ${k}`).join(', ') || 'none'}${m.failures > 0 ? `; ${m.failures} failed` : ''})`])
  }
  if (rows.length > 1) lines.push(table(rows), '')
  lines.push(table([['goal', 'target', 'measured', 'met'], ...results.goals.map((g) => [g.goal, g.target, g.value, g.met === null ? 'not measured' : g.met ? 'yes' : '**no**'])]))
  return lines.join('\n')
}

interface Results {
  when: string
  command: string
  machine: Record<string, unknown>
  settings: Record<string, unknown>
  hit: HitResult | null
  upstream: UpstreamResult | null
  memory: MemoryResult[]
  start: StartResult | null
  kms: KmsResult | null
  goals: Goal[]
}

/** wrk's version line; null when it is not installed. */
async function wrkVersion (): Promise<string | null> {
  return runChild('wrk', ['--version'], { timeoutMs: 5000 }).then((r) => (r.stdout + r.stderr).split('\n')[0]?.trim() ?? null, () => null)
}

async function machine (): Promise<Record<string, unknown>> {
  const git = async (args: string[]): Promise<string | null> => runChild('git', args, { cwd: ROOT, timeoutMs: 10_000 }).then((r) => r.code === 0 ? r.stdout.trim() : null, () => null)
  const commit = await git(['rev-parse', '--short', 'HEAD'])
  const changed = await git(['status', '--porcelain', '--', 'src'])
  const cpuModel = /^model name\s*:\s*(.*)$/m.exec(existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '')?.[1] ?? null
  return { node: process.version, kernel: release(), cpus: CPUS, cpuModel, pinned: PINNING, serverCpu: PINNING ? SERVER_CPU : null, loadGeneratorCpu: PINNING ? LOADGEN_CPU : null, wrk: null, source: { commit, uncommittedFilesInSrc: changed === null ? null : changed.split('\n').filter((l) => l !== '').length }, loadAverageAtStart: loadavg().map((l) => round(l, 2)) }
}

const envText = (env: Record<string, string>): string => environmentText(env) || 'no environment of the image'

async function main (): Promise<void> {
  const s = settings()
  pinSelf(LOADGEN_CPU)
  log(`secrets-agent bench${s.quick ? ' (quick)' : ''}: ${CPUS} cpus, ${PINNING ? `servers on cpu ${SERVER_CPU}, load generators on cpu ${LOADGEN_CPU}` : 'no pinning (taskset missing or one cpu)'}; agent node flags: ${s.agentNodeFlags.join(' ') || 'none'}, environment: ${envText(s.agentEnvironment)}`)
  const built = await build(log)
  const dir = mkdtempSync(join(tmpdir(), 'sa-bench-'))
  onExit(() => { rmSync(dir, { recursive: true, force: true }) })
  const token = randomBytes(32).toString('base64url')
  const hitStore = writeHitStore(dir)
  const fake = await FakeAws.start({ credentials: { [AWS_KEY_ID]: AWS_SECRET } })
  const ctx: Context = { s, built, dir, token, headers: { [TOKEN_HEADER]: token }, hitStore, responseFile: null, fake }
  const results: Results = {
    when: new Date().toISOString(),
    command: `npm run bench${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''}`,
    machine: await machine(),
    settings: { ...s, skip: [...s.skip] },
    hit: null, upstream: null, memory: [], start: null, kms: null, goals: []
  }
  try {
    if (!s.skip.has('hit')) results.hit = await measureHits(ctx)
    if (!s.skip.has('upstream')) results.upstream = await measureUpstream(ctx)
    if (!s.skip.has('memory')) {
      const largest = Math.max(...s.memorySizes)
      // The agent container's memory limit in the deployment examples (256 MiB): also measured
      // under it, where Node sizes its heap from the limit as it does in those containers.
      const limit = exampleMemoryLimitBytes()
      const container = memoryCgroup(`secrets-agent-bench-${process.pid}`, limit)
      if ('reason' in container) log(`SKIPPED: memory in a ${limit / MiB} MiB cgroup: ${container.reason}`)
      const runs: Array<[number, 'local' | 'aws', MemoryCgroup | undefined]> = [
        ...s.memorySizes.map((n) => [n, 'local', undefined] as [number, 'local', undefined]),
        [largest, 'aws', undefined],
        ...('reason' in container ? [] : [[largest, 'aws', container] as [number, 'aws', MemoryCgroup]])
      ]
      for (const [count, provider, cgroup] of runs) {
        const m = await measureMemory(ctx, count, provider, cgroup)
        results.memory.push(m)
        log(`memory (${provider}${cgroup === undefined ? '' : `, ${m.memoryLimitMiB ?? '?'} MiB cgroup`}): ${count} secrets of 4 KiB cached: RSS ${m.rssSettledMB} MB settled, ${m.rssAfterReadsMB} MB 2 s after the reads, ${m.rssStartedMB} MB before them, cache ${m.cacheMB} MB in ${m.cacheEntries} entries, ${m.readErrors} read errors`)
      }
    }
    if (!s.skip.has('start')) results.start = await measureStart(ctx)
    if (!s.skip.has('kms')) {
      results.kms = await measureKms(ctx)
      if (!results.kms.measured) log(`kms: NOT MEASURED: ${results.kms.reason}`)
    }
  } finally {
    await fake.close()
    rmSync(dir, { recursive: true, force: true })
  }
  results.machine.loadAverageAtEnd = loadavg().map((l) => round(l, 2))
  // After the runs: the hit part installs wrk when it is missing.
  results.machine.wrk = await wrkVersion()
  results.goals = goals(results.hit, results.start, results.memory)
  log('\n' + report(results) + '\n')
  if (s.outDir !== null) {
    mkdirSync(s.outDir, { recursive: true })
    writeFileSync(join(s.outDir, 'results.json'), JSON.stringify(results, null, 2) + '\n')
    const source = results.machine.source as { commit: string | null, uncommittedFilesInSrc: number | null }
    const at = `src at ${source.commit ?? 'unknown commit'}${(source.uncommittedFilesInSrc ?? 0) > 0 ? ` + ${String(source.uncommittedFilesInSrc)} uncommitted file(s)` : ''}`
    writeFileSync(join(s.outDir, 'results.md'), `# Benchmark results\n\n${results.when}, ${at}; ${String(results.machine.cpuModel)}, ${String(results.machine.cpus)} cpus, Node ${process.version}, agent run with node ${s.agentNodeFlags.join(' ') || '(no flags)'} and ${envText(s.agentEnvironment)}. Reproduce: \`${results.command}\`.\n\n${report(results)}\n`)
    if (results.hit !== null) {
      const hit = results.hit
      const w = 'ratios' in hit.wrk ? hit.wrk : null
      writeFileSync(join(s.outDir, 'throughput.svg'), chart({
        title: 'secrets-agent: cache hits against bare node:http and bare fastify (same bytes, same token check)',
        subtitle: `${String(results.machine.cpus)} cpus, server and load generator on separate cores; ${s.rounds} interleaved rounds × ${s.durationS} s; Node ${process.version}; ${results.when.slice(0, 10)}`,
        servers: NAMES.map((n) => ({
          name: LABEL[n],
          rps: w === null ? [] : w.rounds.map((r) => r.rps[n]),
          rpsMedian: w === null ? 0 : w.medianRps[n],
          latency: hit.latency.median[n],
          startMs: results.start?.medianMs[LABEL[n]] ?? null
        })),
        throughputGoal: w === null ? null : 0.85 * w.medianRps.http,
        rate: hit.latency.rate
      }))
    }
    log(`wrote ${join(s.outDir, 'results.json')}, results.md${results.hit !== null ? ', throughput.svg' : ''}`)
  }
}

main().then(() => process.exit(0), (error: unknown) => {
  console.error(error)
  process.exit(1)
})
