/**
 * Child processes for the benchmarks: every one is tracked and killed when the bench exits,
 * however it exits (normal end, error, Ctrl-C, SIGTERM). Servers and load generators are pinned
 * to different cores with `taskset` where the machine has more than one.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createServer } from 'node:net'
import { availableParallelism } from 'node:os'

const children = new Set<ChildProcess>()
const cleanups = new Set<() => void>()
let hooked = false

function killAll (signal: NodeJS.Signals): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal)
  }
}

/** Installs the exit hooks once: SIGINT/SIGTERM kill every child, then exit 130/143. */
function hookExit (): void {
  if (hooked) return
  hooked = true
  process.on('exit', () => {
    killAll('SIGKILL')
    for (const cleanup of cleanups) {
      try { cleanup() } catch { /* best effort on the way out */ }
    }
  })
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.on(signal, () => {
      process.stderr.write(`\nbench: ${signal}, stopping ${children.size} child process(es)\n`)
      killAll('SIGKILL')
      process.exit(code)
    })
  }
}

/** Runs `cleanup` (synchronous: temp directories) when this process exits, however it exits. */
export function onExit (cleanup: () => void): void {
  hookExit()
  cleanups.add(cleanup)
}

/** Spawns a tracked child: it is killed when this process ends. */
export function spawnTracked (command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
  hookExit()
  const child = spawn(command, args, options)
  children.add(child)
  child.once('exit', () => { children.delete(child) })
  return child
}

/** Stops a child: SIGTERM, then SIGKILL after `graceMs`. Resolves once it has exited. */
export async function stopChild (child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
  await exited
  clearTimeout(timer)
}

/** Runs a child to completion, collecting stdout and stderr; kills it after `timeoutMs`. */
export async function runChild (command: string, args: readonly string[], options: SpawnOptions & { timeoutMs: number }): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const child = spawnTracked(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (chunk: Buffer) => { stdout += chunk.toString('utf8') })
  child.stderr?.on('data', (chunk: Buffer) => { stderr += chunk.toString('utf8') })
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs)
  try {
    // 'error': the command could not be run (not installed, not executable).
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('close', (c) => resolve(c))
      child.once('error', reject)
    })
    return { code, stdout, stderr }
  } finally {
    clearTimeout(timer)
  }
}

const hasTaskset = spawnSync('taskset', ['--version'], { stdio: 'ignore' }).status === 0
export const CPUS = availableParallelism()
/** Pinning is done when taskset exists and there are at least two cores to split. */
export const PINNING = hasTaskset && CPUS >= 2
/** Cores: servers on the last, load generators on the first. */
export const SERVER_CPU = CPUS - 1
export const LOADGEN_CPU = 0

/** `argv` prefixed with `taskset -c CPU` when pinning is possible. taskset execs: the pid is the command's. */
export function pinned (cpu: number, argv: readonly string[]): [string, string[]] {
  const [command, ...rest] = argv
  if (command === undefined) throw new Error('pinned: empty argv')
  return PINNING ? ['taskset', ['-c', String(cpu), command, ...rest]] : [command, rest]
}

/** A port free on 127.0.0.1 right now. */
export async function freePort (): Promise<number> {
  const [port] = await freePorts(1)
  return port ?? 0
}

/**
 * `count` different ports free on 127.0.0.1 right now. Each is held until all are found: a port
 * let go at once can be handed out again by the next request for one, and a process given the
 * same port twice (its server and its metrics listener) fails to start with EADDRINUSE.
 */
export async function freePorts (count: number): Promise<number[]> {
  const servers = Array.from({ length: count }, () => createServer())
  try {
    return await Promise.all(servers.map(async (server) => {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(0, '127.0.0.1', () => resolve())
      })
      const address = server.address()
      return typeof address === 'object' && address !== null ? address.port : 0
    }))
  } finally {
    await Promise.all(servers.map(async (server) => new Promise<void>((resolve) => { if (server.listening) server.close(() => resolve()); else resolve() })))
  }
}

/** Resident set size of a process in bytes (VmRSS), or null when it is gone. */
export function rssBytes (pid: number): number | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)
    return match?.[1] === undefined ? null : Number(match[1]) * 1024
  } catch {
    return null
  }
}

/**
 * CPU time (user + system, every thread) of a process so far, in ms; NaN when it is gone. /proc
 * counts it in USER_HZ ticks, 100 a second on Linux; the machine's steal time does not inflate it.
 */
function cpuMs (pid: number): number {
  try {
    const fields = (readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1] ?? '').split(' ')
    return (Number(fields[11]) + Number(fields[12])) * 10
  } catch {
    return NaN
  }
}

/**
 * Starts counting a process's CPU time; the function returned gives the µs of it spent per
 * request, for `requests` answered since.
 */
export function cpuPerRequest (pid: number): (requests: number) => number {
  const before = cpuMs(pid)
  return (requests) => (cpuMs(pid) - before) * 1000 / requests
}

export const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

/**
 * Pins this process (all its threads) to `cpu`, so the bench's own client work and the fake AWS
 * server it hosts stay off the server's core. Children inherit it; servers are re-pinned by taskset.
 */
export function pinSelf (cpu: number): void {
  if (!PINNING) return
  spawnSync('taskset', ['-a', '-cp', String(cpu), String(process.pid)], { stdio: 'ignore' })
}

/** A memory cgroup a child can be started in (`wrap` its argv), removed when the bench exits. */
export interface MemoryCgroup {
  limitBytes: number
  wrap (argv: readonly string[]): string[]
}

/**
 * A memory cgroup limited to `limitBytes`, to run a server as it runs in a container with that
 * memory limit: Node sizes its heap, the young generation above all, from the limit it finds
 * (libuv's constrained memory), not from the host's memory. Needs a writable cgroup hierarchy (v1
 * memory controller, or v2 with the memory controller), which root usually has; otherwise the
 * reason it cannot.
 */
export function memoryCgroup (name: string, limitBytes: number): MemoryCgroup | { reason: string } {
  const v1 = '/sys/fs/cgroup/memory'
  const v2 = '/sys/fs/cgroup'
  let dir: string
  let limitFile: string
  if (existsSync(join(v1, 'memory.limit_in_bytes'))) {
    dir = join(v1, name)
    limitFile = 'memory.limit_in_bytes'
  } else if (existsSync(join(v2, 'cgroup.controllers')) && readFileSync(join(v2, 'cgroup.subtree_control'), 'utf8').split(/\s+/).includes('memory')) {
    dir = join(v2, name)
    limitFile = 'memory.max'
  } else {
    return { reason: 'no cgroup memory controller to use here' }
  }
  try {
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, limitFile), String(limitBytes))
  } catch (error) {
    return { reason: `cannot make a memory cgroup (${(error as Error).message}); run as root` }
  }
  // Removable once its processes are gone. On an abnormal exit the hook has just sent them
  // SIGKILL, which takes a moment to land: retry for up to 2 s (synchronously, in an exit hook).
  onExit(() => {
    const pause = new Int32Array(new SharedArrayBuffer(4))
    for (let tries = 0; tries < 100; tries++) {
      try {
        rmdirSync(dir)
        return
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EBUSY') return
        Atomics.wait(pause, 0, 0, 20)
      }
    }
  })
  // The shell joins the cgroup, then becomes the server: the child's pid is the server's.
  return { limitBytes, wrap: (argv) => ['sh', '-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', dir, ...argv] }
}
