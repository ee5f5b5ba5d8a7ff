/**
 * Instructions per cache hit, counted by valgrind's callgrind: a measure this machine's noise
 * cannot move. Throughput here varies by ±25 % from run to run, while the instructions a hit
 * executes vary by about 1 %; a change of a few hundred instructions shows.
 *
 * Each candidate (built agents, and the bench's bare node:http server) is started under
 * callgrind with counting off, warmed up, then counted over N hits sent by 32 keep-alive
 * connections. User-space instructions only: the kernel's share of a request (its socket calls)
 * is the same for every candidate and is not counted. Each candidate is started `--starts`
 * times, because how V8 compiles a hot path can differ from one start to the next.
 *
 * It also counts, per hit, V8's runtime calls that define a property of an object literal
 * (Runtime_DefineKeyedOwnPropertyInLiteral). Node's process.nextTick builds its tick object that
 * way; when V8's feedback for it goes megamorphic, every tick goes through the runtime and a hit
 * costs 40,000 instructions more (docs/bench/findings.md). A number above zero is that cliff,
 * which src/tick-shape.ts now holds off (full collections with no tick object alive caused it).
 *
 * Usage (needs valgrind: apt-get install valgrind):
 *   node --import tsx bench/instructions.ts [--agent NAME=CLI ...] [--env NAME=VAR=VALUE ...]
 *     [--log-level NAME=warn ...] [--requests 5000] [--warmup 3000] [--starts 2] [--keep DIR]
 * Without --agent it builds the current source as `npm run build` does and counts that.
 * --keep DIR keeps each start's callgrind output there (NAME-START.out, for callgrind_annotate),
 * with node run under --perf-basic-prof and its map of JIT code (NAME-START.map): callgrind names
 * JavaScript functions by address, and the map's `start size name` lines name them.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { namedEnvironments, namedValues } from './lib/args.js'
import { build } from './lib/build.js'
import { HIT_PATH, writeCapturedResponse, writeHitStore } from './lib/hit.js'
import { get, keepAlive, pool } from './lib/http.js'
import { freePort, onExit, sleep } from './lib/procs.js'
import { TOKEN_HEADER, agentEnvironment, agentNodeFlags } from './lib/servers.js'
import { median, round } from './lib/stats.js'

const { values } = parseArgs({
  options: {
    agent: { type: 'string', multiple: true, default: [] },
    env: { type: 'string', multiple: true, default: [] },
    'log-level': { type: 'string', multiple: true, default: [] },
    requests: { type: 'string', default: '5000' },
    warmup: { type: 'string', default: '3000' },
    starts: { type: 'string', default: '2' },
    keep: { type: 'string' }
  }
})
const log = (line: string): void => { process.stdout.write(line + '\n') }

if (spawnSync('valgrind', ['--version'], { stdio: 'ignore' }).status !== 0) {
  log('bench/instructions.ts needs valgrind (Debian: apt-get install valgrind)')
  process.exit(2)
}

const requests = Number(values.requests)
const warmup = Number(values.warmup)
const starts = Number(values.starts)
const built = await build(log)
const agents = values.agent.length > 0 ? namedValues(values.agent, 'agent').map(([name, cli]) => [name, resolve(cli)] as [string, string]) : [['agent', built.cli] as [string, string]]
const envs = namedEnvironments(values.env)
const levels = new Map(namedValues(values['log-level'], 'log-level'))
for (const name of levels.keys()) if (!agents.some(([agent]) => agent === name)) throw new Error(`no --agent named ${name}`)

if (values.keep !== undefined) mkdirSync(values.keep, { recursive: true })
const dir = mkdtempSync(join(tmpdir(), 'sa-instructions-'))
onExit(() => { rmSync(dir, { recursive: true, force: true }) })
const token = 'instructions-bench-token-0123456789abcdef'
const headers = { [TOKEN_HEADER]: token }
const store = writeHitStore(dir)
const responseFile = join(dir, 'response.json')

interface Count { instructions: number, literalDefinitions: number }

/** Starts `argv` (with its whole environment, `env`) under callgrind, counts `requests` hits after `warmup`, and stops it. */
async function count (argv: string[], env: NodeJS.ProcessEnv, port: number, keepAs: string): Promise<Count> {
  const out = join(dir, `callgrind-${port}.out`)
  const named = values.keep === undefined ? [] : ['--perf-basic-prof']
  const child = spawn('valgrind', ['--tool=callgrind', '--instr-atstart=no', '--smc-check=all-non-file', `--callgrind-out-file=${out}`, process.execPath, ...named, ...argv], {
    env,
    stdio: ['ignore', 'ignore', 'ignore']
  })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  try {
    const url = `http://127.0.0.1:${port}${HIT_PATH}`
    let ready = false
    for (let i = 0; i < 240 && !ready; i++) {
      ready = await get(url, headers, { timeoutMs: 2000 }).then((a) => a.status === 200, () => false)
      if (!ready) await sleep(500)
    }
    if (!ready) throw new Error(`${argv.join(' ')} did not answer under valgrind`)
    const agent = keepAlive(32)
    const hit = async (): Promise<void> => {
      const answer = await get(url, headers, { agent })
      if (answer.status !== 200) throw new Error(`answered ${answer.status}`)
    }
    await pool(warmup, 32, hit)
    execFileSync('callgrind_control', ['--instr=on', String(child.pid)], { stdio: 'ignore' })
    await pool(requests, 32, hit)
    execFileSync('callgrind_control', ['--instr=off', String(child.pid)], { stdio: 'ignore' })
    agent.destroy()
  } finally {
    child.kill('SIGTERM')
    await exited
  }
  const text = readFileSync(out, 'utf8')
  const instructions = Number(/^totals: (\d+)/m.exec(text)?.[1] ?? NaN)
  // Calls into the runtime function, wherever from: the `calls=` lines under its cfn entries.
  const id = /\((\d+)\) v8::internal::Runtime_DefineKeyedOwnPropertyInLiteral/.exec(text)?.[1]
  let literalDefinitions = 0
  if (id !== undefined) {
    for (const match of text.matchAll(new RegExp(`^cfn=\\(${id}\\)(?: [^\\n]*)?\\ncalls=(\\d+)`, 'gm'))) literalDefinitions += Number(match[1])
  }
  if (values.keep !== undefined) {
    copyFileSync(out, join(values.keep, `${keepAs}.out`))
    const map = `/tmp/perf-${child.pid ?? ''}.map`
    if (existsSync(map)) copyFileSync(map, join(values.keep, `${keepAs}.map`))
    rmSync(map, { force: true })
  }
  rmSync(out, { force: true })
  return { instructions: instructions / requests, literalDefinitions: literalDefinitions / requests }
}

/** Captures an agent's answer to the hit, which the baseline then answers byte for byte. */
async function capture (cli: string): Promise<void> {
  const port = await freePort()
  const plain = spawn(process.execPath, [cli, 'serve', '--provider', 'local', '--store', store, '--port', String(port)], {
    env: agentEnvironment(dir, token),
    stdio: 'ignore'
  })
  try {
    for (let i = 0; i < 100; i++) {
      const answer = await get(`http://127.0.0.1:${port}${HIT_PATH}`, headers, { timeoutMs: 1000 }).catch(() => undefined)
      if (answer?.status === 200) return writeCapturedResponse(responseFile, answer)
      await sleep(100)
    }
    throw new Error(`${cli} did not answer the hit`)
  } finally {
    plain.kill('SIGTERM')
  }
}

await capture(agents[0]?.[1] ?? built.cli)
const results: Array<{ name: string, counts: Count[] }> = []
for (const [name, cli] of agents) {
  const counts: Count[] = []
  for (let s = 0; s < starts; s++) {
    const port = await freePort()
    const env = { ...agentEnvironment(dir, token), ...envs.get(name) }
    counts.push(await count([...agentNodeFlags(), cli, 'serve', '--provider', 'local', '--store', store, '--port', String(port), '--log-level', levels.get(name) ?? 'info'], env, port, `${name}-${s + 1}`))
    log(`${name}, start ${s + 1}/${starts}: ${round(counts.at(-1)?.instructions ?? NaN, 0)} instructions a hit`)
  }
  results.push({ name, counts })
}
const baseline: Count[] = []
for (let s = 0; s < starts; s++) {
  const port = await freePort()
  baseline.push(await count([built.bareHttp], { PATH: process.env.PATH, BENCH_RESPONSE_FILE: responseFile, BENCH_TOKEN: token, BENCH_PORT: String(port) }, port, `node-http-${s + 1}`))
  log(`node:http, start ${s + 1}/${starts}: ${round(baseline.at(-1)?.instructions ?? NaN, 0)} instructions a hit`)
}
results.push({ name: 'node:http', counts: baseline })

const base = median(baseline.map((c) => c.instructions))
log(`\n${requests} hits counted after ${warmup} of warm-up, ${starts} start(s) each\n`)
log('| server | instructions a hit (each start) | median ÷ node:http | runtime literal definitions a hit |')
log('|---|---|---|---|')
for (const { name, counts } of results) {
  const each = counts.map((c) => round(c.instructions, 0).toLocaleString('en-US')).join(', ')
  log(`| ${name} | ${each} | ${round(median(counts.map((c) => c.instructions)) / base)}× | ${counts.map((c) => round(c.literalDefinitions, 1)).join(', ')} |`)
}
process.exit(0)
