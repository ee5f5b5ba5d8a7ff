/**
 * Where a cache hit's time goes: runs the agent (compiled, `serve --provider local`, log level
 * info, metrics on) under `node --cpu-prof`, drives it with wrk, and prints the top frames by
 * self time, and self time summed by package / source file.
 *
 * Usage: node --import tsx bench/profile.ts [--duration 10] [--connections 32] [--cli PATH]
 *        [--keep DIR] [--log-level info] [--start]
 *
 * --cli runs another build of the CLI (a scratch copy with a candidate fix); --keep writes the
 * .cpuprofile there (open it in Chrome DevTools); --start profiles start-up to the first 200
 * instead of the hit path.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, readdirSync, rmSync, cpSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { build } from './lib/build.js'
import { HIT_PATH, writeCapturedResponse, writeHitStore } from './lib/hit.js'
import { get } from './lib/http.js'
import { ensureWrk, wrk } from './lib/load.js'
import { LOADGEN_CPU, PINNING, SERVER_CPU, onExit, pinSelf } from './lib/procs.js'
import { TOKEN_HEADER, startAgentProcess, startBaseline, type ServerProcess } from './lib/servers.js'

interface CallFrame { functionName: string, url: string, lineNumber: number }
interface ProfileNode { id: number, callFrame: CallFrame, hitCount?: number, children?: number[] }
interface CpuProfile { nodes: ProfileNode[], startTime: number, endTime: number, samples: number[], timeDeltas: number[] }

/** Self time per node id, from the sample deltas (µs). */
function selfTimes (profile: CpuProfile): Map<number, number> {
  const self = new Map<number, number>()
  profile.samples.forEach((id, i) => { self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)) })
  return self
}

function where (frame: CallFrame): string {
  const url = frame.url.replace(/^file:\/\//, '')
  if (url === '') return '(native/V8)'
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)
  if (pkg !== null && !url.includes('.cache/secrets-agent-bench')) return pkg[1] ?? url
  const ours = /\.cache\/[^/]+\/((?:src|bench)\/.*)$/.exec(url) ?? /\/(src\/.*)$/.exec(url)
  if (ours !== null) return ours[1] ?? url
  if (url.startsWith('node:')) return url
  return url
}

export function summarise (profile: CpuProfile, top = 25): string {
  const self = selfTimes(profile)
  const total = [...self.values()].reduce((a, b) => a + b, 0)
  const byFrame = new Map<string, number>()
  const byPlace = new Map<string, number>()
  for (const node of profile.nodes) {
    const t = self.get(node.id) ?? 0
    if (t === 0) continue
    const f = node.callFrame
    const name = `${f.functionName === '' ? '(anonymous)' : f.functionName}  ${where(f)}${f.url === '' ? '' : ':' + String(f.lineNumber + 1)}`
    byFrame.set(name, (byFrame.get(name) ?? 0) + t)
    const place = where(f)
    byPlace.set(place, (byPlace.get(place) ?? 0) + t)
  }
  const pct = (t: number): string => `${((100 * t) / total).toFixed(1).padStart(5)}%`
  const lines = [`total sampled: ${(total / 1e6).toFixed(2)} s`, '', 'top frames by self time:']
  for (const [name, t] of [...byFrame].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`  ${pct(t)}  ${name}`)
  lines.push('', 'self time by package / file:')
  for (const [name, t] of [...byPlace].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`  ${pct(t)}  ${name}`)
  return lines.join('\n')
}

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '10' },
      connections: { type: 'string', default: '32' },
      cli: { type: 'string' },
      keep: { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
      start: { type: 'boolean', default: false },
      server: { type: 'string', default: 'agent' }
    }
  })
  if (!['agent', 'node-http', 'fastify'].includes(values.server)) throw new Error('--server is agent, node-http or fastify')
  pinSelf(LOADGEN_CPU)
  const built = await build((l) => console.log(l))
  const cli = values.cli ?? built.cli
  const dir = mkdtempSync(join(tmpdir(), 'sa-bench-prof-'))
  onExit(() => { rmSync(dir, { recursive: true, force: true }) })
  const profDir = join(dir, 'prof')
  const token = randomBytes(32).toString('base64url')
  const store = writeHitStore(dir)
  const path = HIT_PATH
  const headers = { [TOKEN_HEADER]: token }
  try {
    const nodeArgs = ['--cpu-prof', '--cpu-prof-dir', profDir, ...(values.start ? [] : ['--cpu-prof-interval', '100'])]
    const cpu = PINNING ? SERVER_CPU : null
    let agent: ServerProcess
    if (values.server === 'agent') {
      agent = await startAgentProcess({ cli, dir, token, provider: 'local', store, cpu, waitPath: path, logLevel: values['log-level'], nodeArgs })
    } else {
      // The baselines answer what the agent answers: capture it from an agent started for that.
      const source = await startAgentProcess({ cli, dir, token, provider: 'local', store, cpu, waitPath: path })
      const answer = await get(source.base + path, headers)
      await source.stop()
      const responseFile = join(dir, 'response.json')
      writeCapturedResponse(responseFile, answer)
      agent = await startBaseline({ name: values.server, script: values.server === 'fastify' ? built.bareFastify : built.bareHttp, dir, token, responseFile, cpu, waitPath: path, nodeArgs })
    }
    if (!values.start) {
      const hasWrk = await ensureWrk(console.log)
      if (!hasWrk.ok) throw new Error(hasWrk.reason)
      if ((await get(agent.base + path, headers)).status !== 200) throw new Error('the agent does not answer the hit read')
      const result = await wrk(agent.base + path, headers, { connections: Number(values.connections), durationS: Number(values.duration) })
      console.log(`wrk under the profiler: ${Math.round(result.rps)} req/s (profiling slows it down)`)
    } else {
      console.log(`start to first 200 under the profiler: ${Math.round(agent.readyAt - agent.spawnedAt)} ms`)
    }
    await agent.stop()
    const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'))
    if (file === undefined) throw new Error('no .cpuprofile written')
    const profile = JSON.parse(readFileSync(join(profDir, file), 'utf8')) as CpuProfile
    console.log(summarise(profile))
    if (values.keep !== undefined) {
      mkdirSync(values.keep, { recursive: true })
      cpSync(join(profDir, file), join(values.keep, file))
      console.log(`kept ${join(values.keep, file)}`)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

if (import.meta.url === `file://${process.argv[1] ?? ''}`) {
  main().then(() => process.exit(0), (error: unknown) => {
    console.error(error)
    process.exit(1)
  })
}

