/**
 * Soak (issue 7): at least a million cache-hit requests against the agent (compiled, `serve
 * --provider local`, log level info, metrics on, the node flags it ships with (BENCH_AGENT_NODE_FLAGS
 * replaces them), pinned to its own core) from autocannon on
 * another core. Reports errors (must be 0) and the agent's resident memory before (after a
 * warm-up) and after, sampled from /proc/PID/status every second. The verdict is "flat" when RSS
 * grew by at most --tolerance-mb over the second half of the run: in its first seconds under
 * load V8 grows its young generation (1 to 16 MiB a semi-space on Node 20) and keeps it, about
 * 20 MB of RSS that is sizing, not a leak, while a leak goes on growing to the end. It also
 * checks that every answer of 200 the agent counted has its access line in the agent's log.
 *
 * Usage: node --import tsx bench/soak.ts [--requests 1000000] [--connections 32]
 *        [--warmup 200000] [--tolerance-mb 10] [--quick] [--out docs/bench/soak.json]
 * (also BENCH_SOAK_REQUESTS). --quick runs 100,000 requests and writes nothing.
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { parseArgs } from 'node:util'
import { ROOT, build } from './lib/build.js'
import { get } from './lib/http.js'
import { autocannon } from './lib/load.js'
import { LOADGEN_CPU, PINNING, SERVER_CPU, onExit, pinSelf, rssBytes, runChild, sleep } from './lib/procs.js'
import { TOKEN_HEADER, agentNodeFlags, startAgentProcess } from './lib/servers.js'
import { round } from './lib/stats.js'

const MB = 1_000_000

/** The V8 heap as the agent's own metrics report it (prom-client's process metrics), in MB. */
async function heapStats (metricsUrl: string | null): Promise<{ heapUsedMB: number, heapTotalMB: number, externalMB: number }> {
  const text = metricsUrl === null ? '' : (await get(metricsUrl)).body.toString('utf8')
  const value = (name: string): number => round(Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN) / MB, 1)
  return { heapUsedMB: value('nodejs_heap_size_used_bytes'), heapTotalMB: value('nodejs_heap_size_total_bytes'), externalMB: value('nodejs_external_memory_bytes') }
}

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      requests: { type: 'string', default: process.env.BENCH_SOAK_REQUESTS },
      connections: { type: 'string', default: '32' },
      warmup: { type: 'string', default: '200000' },
      'tolerance-mb': { type: 'string', default: '10' },
      quick: { type: 'boolean', default: false },
      out: { type: 'string' }
    }
  })
  const requests = Number(values.requests ?? (values.quick ? 100_000 : 1_000_000))
  const connections = Number(values.connections)
  const warmup = Number(values.warmup)
  const toleranceMB = Number(values['tolerance-mb'])
  if (!Number.isInteger(requests) || requests < 1 || !Number.isInteger(connections) || connections < 1 || !Number.isInteger(warmup) || warmup < 0 || !(toleranceMB >= 0)) {
    throw new Error('--requests, --connections and --warmup are whole numbers, --tolerance-mb ≥ 0')
  }
  const out = values.out ?? (values.quick ? null : join(ROOT, 'docs', 'bench', 'soak.json'))
  pinSelf(LOADGEN_CPU)

  const built = await build((line) => console.log(line))
  const dir = mkdtempSync(join(tmpdir(), 'sa-bench-soak-'))
  onExit(() => { rmSync(dir, { recursive: true, force: true }) })
  const token = randomBytes(32).toString('base64url')
  const headers = { [TOKEN_HEADER]: token }
  const store = join(dir, 'store.json')
  writeFileSync(store, JSON.stringify({ secrets: { 'soak/db': JSON.stringify({ username: 'app', password: randomBytes(18).toString('base64url'), host: 'db.internal.example', port: 5432 }) } }))
  const path = '/secretsmanager/get?secretId=soak%2Fdb'
  const logFile = join(dir, 'agent.log')
  const agent = await startAgentProcess({ cli: built.cli, dir, token, provider: 'local', store, cpu: PINNING ? SERVER_CPU : null, waitPath: path, logFile })
  const samples: Array<{ s: number, rssMB: number, heapUsedMB?: number, heapTotalMB?: number, externalMB?: number }> = []
  let sampler: NodeJS.Timeout | undefined
  try {
    const url = agent.base + path
    console.log(`warm-up: ${warmup} requests ...`)
    if (warmup > 0) await autocannon({ mode: 'count', url, headers, connections, amount: warmup }, 600_000)
    await sleep(2000)
    const before = rssBytes(agent.pid) ?? 0
    const heapBefore = await heapStats(agent.metricsUrl)
    const began = performance.now()
    // RSS every second; the V8 heap (from the agent's own metrics) every 5 s, to tell a leak from
    // a heap that has not yet had its next full collection.
    let tick = 0
    sampler = setInterval(() => {
      const rss = rssBytes(agent.pid)
      if (rss === null) return
      const sample: (typeof samples)[number] = { s: round((performance.now() - began) / 1000, 1), rssMB: round(rss / MB, 1) }
      samples.push(sample)
      if (tick++ % 5 === 0) {
        void heapStats(agent.metricsUrl).then((heap) => { Object.assign(sample, heap) }, () => {})
      }
    }, 1000)
    console.log(`soak: ${requests.toLocaleString('en-US')} requests, ${connections} connections (RSS before ${round(before / MB, 1)} MB) ...`)
    // Bounded: at least 500 req/s, or it is a failure anyway.
    const result = await autocannon({ mode: 'count', url, headers, connections, amount: requests }, (requests / 500 + 60) * 1000)
    const seconds = (performance.now() - began) / 1000
    clearInterval(sampler)
    await sleep(5000)
    const after = rssBytes(agent.pid) ?? 0
    const heapAfter = await heapStats(agent.metricsUrl)
    const metrics = (await get(agent.metricsUrl ?? '')).body.toString('utf8')
    const served = [...metrics.matchAll(/^secrets_agent_http_requests_total\{[^}]*status="200"[^}]*\} (\d+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0)
    const errorLines = Number((await runChild('grep', ['-c', '"level":[56]0', logFile], { timeoutMs: 120_000 })).stdout.trim() || '0')
    // Every answer counted has its access line (the scrape above may add its own).
    const accessLines = Number((await runChild('grep', ['-c', '"status":200,.*"msg":"request"', logFile], { timeoutMs: 120_000 })).stdout.trim() || '0')
    const logged = accessLines >= served
    const errors = result.errors + result.timeouts + result.non2xx
    const growthMB = round((after - before) / MB, 1)
    const peakMB = Math.max(...samples.map((x) => x.rssMB), round(after / MB, 1))
    const halfway = samples.find((x) => x.s >= seconds / 2)
    const secondHalfGrowthMB = halfway === undefined ? growthMB : round(after / MB - halfway.rssMB, 1)
    const flat = secondHalfGrowthMB <= toleranceMB
    const verdict = errors === 0 && flat && logged ? 'PASS' : 'FAIL'
    const summary = {
      when: new Date().toISOString(),
      command: `npm run bench:soak${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''}`,
      machine: { node: process.version, pinned: PINNING, loadAverage: loadavg().map((l) => round(l, 2)) },
      agentNodeFlags: agentNodeFlags(),
      requests: result.requests,
      ok: result.ok,
      non2xx: result.non2xx,
      errors: result.errors,
      timeouts: result.timeouts,
      servedByAgent200: served,
      agentErrorLogLines: errorLines,
      agentAccessLines200: accessLines,
      seconds: round(seconds, 1),
      rps: Math.round(result.requests / seconds),
      latencyMs: { p50: round(result.latencyMs.p50), p99: round(result.latencyMs.p99), p999: round(result.latencyMs.p999), max: round(result.latencyMs.max) },
      rssMB: { beforeAfterWarmup: round(before / MB, 1), halfway: halfway?.rssMB ?? null, after: round(after / MB, 1), growth: growthMB, secondHalfGrowth: secondHalfGrowthMB, peak: peakMB, toleranceMB },
      heapBefore,
      heapAfter,
      verdict,
      rssSeries: samples.filter((x) => x.heapUsedMB !== undefined)
    }
    console.log([
      '',
      `requests ${summary.requests.toLocaleString('en-US')} in ${summary.seconds} s (${summary.rps} req/s); 2xx ${summary.ok.toLocaleString('en-US')}, non-2xx ${summary.non2xx}, errors ${summary.errors}, timeouts ${summary.timeouts}; agent counted ${served.toLocaleString('en-US')} answers of 200 and logged ${accessLines.toLocaleString('en-US')} access lines of 200; ${errorLines} error lines in its log`,
      `latency p50 ${summary.latencyMs.p50} / p99 ${summary.latencyMs.p99} / p99.9 ${summary.latencyMs.p999} / max ${summary.latencyMs.max} ms`,
      `V8 heap used ${heapBefore.heapUsedMB} -> ${heapAfter.heapUsedMB} MB (total ${heapBefore.heapTotalMB} -> ${heapAfter.heapTotalMB} MB), external ${heapBefore.externalMB} -> ${heapAfter.externalMB} MB`,
      `RSS before ${summary.rssMB.beforeAfterWarmup} MB (after ${warmup.toLocaleString('en-US')} warm-up requests), halfway ${summary.rssMB.halfway ?? '?'} MB, after ${summary.rssMB.after} MB; growth over the second half ${secondHalfGrowthMB} MB (tolerance ${toleranceMB} MB), over the run ${growthMB} MB; peak ${peakMB} MB`,
      `verdict: ${verdict} (${errors === 0 ? 'no errors' : `${errors} errors`}, memory ${flat ? 'flat' : 'grew'}, ${logged ? 'every answer logged' : 'access lines missing'})`
    ].join('\n'))
    if (out !== null) {
      mkdirSync(dirname(out), { recursive: true })
      writeFileSync(out, JSON.stringify(summary, null, 2) + '\n')
      console.log(`wrote ${out}`)
    }
    if (verdict !== 'PASS') process.exitCode = 1
  } finally {
    clearInterval(sampler)
    await agent.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

main().then(() => process.exit(process.exitCode ?? 0), (error: unknown) => {
  console.error(error)
  process.exit(1)
})
