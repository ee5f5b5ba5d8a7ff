/**
 * The load generators, each in its own process pinned away from the server: wrk for closed-loop
 * throughput, autocannon (through autocannon-worker.ts) for a set offered rate and for counted runs.
 */
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { WorkerOptions, WorkerResult } from './autocannon-worker.js'
import { LOADGEN_CPU, pinned, runChild } from './procs.js'

export interface WrkResult {
  requests: number
  rps: number
  non2xx: number
  socketErrors: number
}

function onPath (command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0
}

/**
 * Makes sure wrk is there: installs Debian's package when missing and running as root;
 * otherwise answers why not (the caller skips the wrk part and says so).
 */
export async function ensureWrk (log: (line: string) => void): Promise<{ ok: true } | { ok: false, reason: string }> {
  if (onPath('wrk')) return { ok: true }
  if (process.getuid?.() !== 0) return { ok: false, reason: 'wrk is not installed and this is not root (install it: apt-get install wrk)' }
  if (!onPath('apt-get')) return { ok: false, reason: 'wrk is not installed and there is no apt-get to install it with' }
  log('wrk missing: apt-get update && apt-get install -y wrk ...')
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  const update = await runChild('apt-get', ['update'], { env, timeoutMs: 300_000 })
  if (update.code !== 0) return { ok: false, reason: `apt-get update failed: ${update.stderr.trim().split('\n').slice(-1)[0] ?? ''}` }
  const install = await runChild('apt-get', ['install', '-y', 'wrk'], { env, timeoutMs: 300_000 })
  if (install.code !== 0 || !onPath('wrk')) return { ok: false, reason: `apt-get install wrk failed: ${install.stderr.trim().split('\n').slice(-1)[0] ?? ''}` }
  return { ok: true }
}

/** Closed loop: `connections` connections, each sending its next request when the last answer arrives. */
export async function wrk (url: string, headers: Record<string, string>, options: { connections: number, durationS: number, threads?: number }): Promise<WrkResult> {
  const threads = Math.min(options.threads ?? 1, options.connections)
  const args = ['wrk', `-t${threads}`, `-c${options.connections}`, `-d${options.durationS}s`]
  for (const [name, value] of Object.entries(headers)) args.push('-H', `${name}: ${value}`)
  args.push(url)
  const [command, rest] = pinned(LOADGEN_CPU, args)
  const out = await runChild(command, rest, { timeoutMs: (options.durationS + 30) * 1000 })
  if (out.code !== 0) throw new Error(`wrk failed (${String(out.code)}): ${out.stderr}${out.stdout}`)
  const num = (pattern: RegExp): number => Number(pattern.exec(out.stdout)?.[1] ?? '0')
  const rps = num(/Requests\/sec:\s+([\d.]+)/)
  if (!(rps > 0)) throw new Error(`wrk: no Requests/sec in its output:\n${out.stdout}`)
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out.stdout)
  return {
    requests: num(/(\d+) requests in/),
    rps,
    non2xx: num(/Non-2xx or 3xx responses: (\d+)/),
    socketErrors: errors === null ? 0 : errors.slice(1).reduce((sum, n) => sum + Number(n), 0)
  }
}

const WORKER = fileURLToPath(new URL('./autocannon-worker.ts', import.meta.url))

/** autocannon in its own pinned process; `timeoutMs` bounds it whatever the options say. */
export async function autocannon (options: WorkerOptions, timeoutMs: number): Promise<WorkerResult> {
  const [command, rest] = pinned(LOADGEN_CPU, [process.execPath, '--import', 'tsx', WORKER, JSON.stringify(options)])
  const out = await runChild(command, rest, { timeoutMs })
  const line = out.stdout.trim().split('\n').pop() ?? ''
  if (out.code !== 0 || !line.startsWith('{')) throw new Error(`autocannon failed (${String(out.code)}): ${out.stderr}${out.stdout}`)
  return JSON.parse(line) as WorkerResult
}
