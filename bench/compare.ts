/**
 * Same-run A/B of agent builds or settings on the cache-hit path: each candidate and a bare
 * node:http server (the bench's baseline) are started once, pinned to the server core, then
 * driven by wrk in turns, round by round. It prints, per candidate, the median of same-round
 * throughput ratios to node:http, and its median CPU time per request (utime + stime from /proc,
 * which the machine's steal time does not inflate).
 *
 * Usage:
 *   node --import tsx bench/compare.ts --agent NAME=CLI [--agent NAME=CLI ...]
 *     [--flags NAME='--node --flags'] [--env NAME=VAR=VALUE] [--log-level NAME=warn] [--memory-limit NAME=MiB]
 *     [--log-file NAME=PATH]
 *     [--rounds 6] [--duration 4] [--connections 32] [--rate N]
 *
 * CLI is a built cli.js: `node scripts/build.mjs --outdir DIR/agent` with package.json copied to
 * DIR (src/version.ts reads it from there). One build can run under several names with other
 * flags, environment or log levels. Candidates run with the image's node flags and environment
 * (bench/lib/node-flags.ts) unless --flags says otherwise; --env adds to that environment (it
 * can be given more than once per candidate). A candidate's stdout and stderr go to a file in a
 * temporary directory, or to --log-file's PATH (/dev/null: to leave out the file system's share).
 * --rate N also measures, each round, latency at a fixed N req/s (autocannon, as `npm run bench`
 * does), and prints the medians of same-round p50 and p99 ratios to node:http.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { namedEnvironments, namedValues } from './lib/args.js'
import { build } from './lib/build.js'
import { HIT_PATH, writeCapturedResponse, writeHitStore } from './lib/hit.js'
import { get } from './lib/http.js'
import { environmentText } from './lib/node-flags.js'
import { autocannon, ensureWrk, wrk } from './lib/load.js'
import { LOADGEN_CPU, PINNING, SERVER_CPU, cpuPerRequest, memoryCgroup, onExit, pinSelf } from './lib/procs.js'
import { TOKEN_HEADER, agentNodeFlags, startAgentProcess, startBaseline, type ServerProcess } from './lib/servers.js'
import { median, round } from './lib/stats.js'

const { values } = parseArgs({
  options: {
    agent: { type: 'string', multiple: true, default: [] },
    flags: { type: 'string', multiple: true, default: [] },
    env: { type: 'string', multiple: true, default: [] },
    'log-level': { type: 'string', multiple: true, default: [] },
    'memory-limit': { type: 'string', multiple: true, default: [] },
    'log-file': { type: 'string', multiple: true, default: [] },
    rounds: { type: 'string', default: '6' },
    duration: { type: 'string', default: '4' },
    connections: { type: 'string', default: '32' },
    rate: { type: 'string' }
  }
})

/** `NAME=VALUE` options, by name. */
const byName = (list: string[], option: string): Map<string, string> => new Map(namedValues(list, option))

const agents = byName(values.agent, 'agent')
if (agents.size === 0) throw new Error('name at least one candidate: --agent NAME=path/to/cli.js')
const flags = byName(values.flags, 'flags')
const envs = namedEnvironments(values.env)
const levels = byName(values['log-level'], 'log-level')
const limits = byName(values['memory-limit'], 'memory-limit')
const logFiles = byName(values['log-file'], 'log-file')
for (const name of [...flags.keys(), ...envs.keys(), ...levels.keys(), ...limits.keys(), ...logFiles.keys()]) {
  if (!agents.has(name)) throw new Error(`no --agent named ${name}`)
}
const rounds = Number(values.rounds)
const durationS = Number(values.duration)
const connections = Number(values.connections)
const rate = values.rate === undefined ? undefined : Number(values.rate)

const log = (line: string): void => { process.stdout.write(line + '\n') }
pinSelf(LOADGEN_CPU)
const hasWrk = await ensureWrk(log)
if (!hasWrk.ok) throw new Error(hasWrk.reason)
const built = await build(log)
const dir = mkdtempSync(join(tmpdir(), 'sa-compare-'))
onExit(() => { rmSync(dir, { recursive: true, force: true }) })
const token = randomBytes(32).toString('base64url')
const headers = { [TOKEN_HEADER]: token }
const PATH = HIT_PATH
const store = writeHitStore(dir)
const cpu = PINNING ? SERVER_CPU : null

const servers: Array<{ name: string, server: ServerProcess }> = []
let responseFile: string | undefined
for (const [name, cli] of agents) {
  const limit = limits.get(name)
  const cgroup = limit === undefined ? undefined : memoryCgroup(`secrets-agent-compare-${process.pid}-${name}`, Number(limit) * 1024 * 1024)
  if (cgroup !== undefined && 'reason' in cgroup) throw new Error(`${name}: ${cgroup.reason}`)
  const given = flags.get(name)
  if (given !== undefined) process.env.BENCH_AGENT_NODE_FLAGS = given
  else delete process.env.BENCH_AGENT_NODE_FLAGS
  const server = await startAgentProcess({
    cli: resolve(cli), dir, token, provider: 'local', store, cpu, waitPath: PATH, logLevel: levels.get(name) ?? 'info',
    logFile: logFiles.get(name) ?? join(dir, `${name}.log`), ...(cgroup === undefined ? {} : { cgroup }), env: envs.get(name) ?? {}
  })
  const env = environmentText(envs.get(name) ?? {})
  log(`${name}: ${cli}, node ${agentNodeFlags().join(' ') || '(no flags)'}${env === '' ? '' : `, ${env}`}, log level ${levels.get(name) ?? 'info'}${limit === undefined ? '' : `, ${limit} MiB cgroup`}${logFiles.has(name) ? `, log to ${logFiles.get(name) ?? ''}` : ''}`)
  const answer = await get(server.base + PATH, headers)
  if (answer.status !== 200) throw new Error(`${name} answered ${answer.status}`)
  if (responseFile === undefined) {
    responseFile = join(dir, 'response.json')
    writeCapturedResponse(responseFile, answer)
  }
  servers.push({ name, server })
}
delete process.env.BENCH_AGENT_NODE_FLAGS
const http = await startBaseline({ name: 'node-http', script: built.bareHttp, dir, token, responseFile: responseFile ?? '', cpu, waitPath: PATH })
servers.push({ name: 'node:http', server: http })

for (const { server } of servers) await wrk(server.base + PATH, headers, { connections, durationS: 2 })
const ratios = new Map<string, number[]>(servers.map(({ name }) => [name, []]))
const cpuUsPerRequest = new Map<string, number[]>(servers.map(({ name }) => [name, []]))
const p50Ratios = new Map<string, number[]>(servers.map(({ name }) => [name, []]))
const p99Ratios = new Map<string, number[]>(servers.map(({ name }) => [name, []]))
for (let r = 0; r < rounds; r++) {
  const order = [...servers.slice(r % servers.length), ...servers.slice(0, r % servers.length)]
  const rps = new Map<string, number>()
  for (const { name, server } of order) {
    const cpuUs = cpuPerRequest(server.pid)
    const result = await wrk(server.base + PATH, headers, { connections, durationS })
    if (result.non2xx > 0 || result.socketErrors > 0) throw new Error(`${name}: ${result.non2xx} non-2xx answers, ${result.socketErrors} socket errors`)
    cpuUsPerRequest.get(name)?.push(cpuUs(result.requests))
    rps.set(name, result.rps)
  }
  const base = rps.get('node:http') ?? NaN
  for (const { name } of servers) ratios.get(name)?.push((rps.get(name) ?? NaN) / base)
  log(`round ${r + 1}/${rounds}: ${servers.map(({ name }) => `${name} ${Math.round(rps.get(name) ?? 0)}`).join(', ')} req/s`)
  if (rate === undefined) continue
  const latency = new Map<string, { p50: number, p99: number }>()
  for (const { name, server } of order) {
    // One extra second up front, not counted: the staggered starts ramp up during it.
    const result = await autocannon({ mode: 'rate', url: server.base + PATH, headers, rate, connections, durationS: durationS + 1, skipMs: 1500 }, (durationS + 60) * 1000)
    if (result.non2xx > 0 || result.errors > 0) throw new Error(`${name}: ${result.non2xx} non-2xx answers, ${result.errors} errors at ${rate} req/s`)
    latency.set(name, { p50: result.latencyMs.p50, p99: result.latencyMs.p99 })
  }
  const baseLatency = latency.get('node:http')
  for (const { name } of servers) {
    const own = latency.get(name)
    if (own === undefined || baseLatency === undefined) continue
    p50Ratios.get(name)?.push(own.p50 / baseLatency.p50)
    p99Ratios.get(name)?.push(own.p99 / baseLatency.p99)
  }
  log(`  at ${rate} req/s, p99: ${servers.map(({ name }) => `${name} ${round(latency.get(name)?.p99 ?? NaN, 3)}`).join(', ')} ms`)
}

const baseCpu = median(cpuUsPerRequest.get('node:http') ?? [])
const latencyColumns = rate === undefined ? '' : ` p50 ÷ node:http's at ${rate} req/s | p99 ÷ node:http's |`
log(`\n| server | throughput ÷ node:http (median of rounds) | CPU µs per request | node:http's ÷ its |${latencyColumns}`)
log(`|---|---|---|---|${rate === undefined ? '' : '---|---|'}`)
for (const { name } of servers) {
  const cpuUs = median(cpuUsPerRequest.get(name) ?? [])
  const latencyCells = rate === undefined ? '' : ` ${round(median(p50Ratios.get(name) ?? []))}× | ${round(median(p99Ratios.get(name) ?? []))}× |`
  log(`| ${name} | ${round(median(ratios.get(name) ?? []))}× | ${round(cpuUs, 1)} | ${round(baseCpu / cpuUs)}× |${latencyCells}`)
}
for (const { server } of servers) await server.stop()
process.exit(0)
