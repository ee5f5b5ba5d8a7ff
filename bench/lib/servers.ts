/**
 * Starting the servers under test as child processes: the agent (the compiled CLI, `serve`, run
 * with the node flags it ships with) and the two baselines (plain `node`). Everything listens on
 * 127.0.0.1; every process is tracked and killed when the bench ends (procs.ts).
 */
import type { ChildProcess } from 'node:child_process'
import { closeSync, openSync } from 'node:fs'
import { join } from 'node:path'
import { until200 } from './http.js'
import { shippedEnvironment, shippedNodeFlags } from './node-flags.js'
import { freePort, freePorts, pinned, spawnTracked, stopChild, type MemoryCgroup } from './procs.js'

export const TOKEN_HEADER = 'X-Aws-Parameters-Secrets-Token'

export interface ServerProcess {
  name: string
  child: ChildProcess
  pid: number
  port: number
  base: string
  /** The metrics endpoint (agent with metrics on). */
  metricsUrl: string | null
  /** performance.now() just before spawn, and when the wait path first answered 200. */
  spawnedAt: number
  readyAt: number
  stop (): Promise<void>
}

export interface AgentStart {
  cli: string
  dir: string
  token: string
  provider: 'local' | 'aws'
  store?: string
  /** Extra environment (settings, AWS endpoint and credentials). */
  env?: Record<string, string>
  /** Core to pin to; null: not pinned. */
  cpu: number | null
  metrics?: boolean
  logLevel?: string
  /** Where the agent's stdout/stderr go (default: dir/agent.log). */
  logFile?: string
  /** Path polled until 200 (with the token) before the agent counts as started; default /ping. */
  waitPath?: string
  /** Node flags beyond the agent's own (agentNodeFlags()), e.g. --cpu-prof. */
  nodeArgs?: string[]
  /** A memory cgroup to run in (procs.ts memoryCgroup): as in a container with a memory limit. */
  cgroup?: MemoryCgroup
}

/**
 * The node flags the agent runs with in the benches: those it ships with (the image's ENTRYPOINT,
 * see node-flags.ts), unless BENCH_AGENT_NODE_FLAGS (space-separated; empty for none) says
 * otherwise, to compare: `BENCH_AGENT_NODE_FLAGS= npm run bench` measures the agent without them.
 */
export function agentNodeFlags (): string[] {
  const given = process.env.BENCH_AGENT_NODE_FLAGS
  if (given === undefined) return shippedNodeFlags()
  return given.split(/\s+/).filter((flag) => flag !== '')
}

function spawnServer (name: string, argv: string[], env: NodeJS.ProcessEnv, cpu: number | null, logFile: string): { child: ChildProcess, spawnedAt: number } {
  const fd = openSync(logFile, 'a')
  const [command, args] = cpu === null ? [argv[0] ?? '', argv.slice(1)] : pinned(cpu, argv)
  const spawnedAt = performance.now()
  const child = spawnTracked(command, args, { env, stdio: ['ignore', fd, fd] })
  closeSync(fd)
  if (child.pid === undefined) throw new Error(`${name}: spawn failed`)
  return { child, spawnedAt }
}

async function started (name: string, child: ChildProcess, spawnedAt: number, port: number, waitPath: string, headers: Record<string, string>, metricsUrl: string | null, logFile: string): Promise<ServerProcess> {
  const base = `http://127.0.0.1:${port}`
  let readyAt: number
  const exited = new Promise<never>((_resolve, reject) => {
    child.once('exit', (code, signal) => reject(new Error(`${name} exited (${String(code ?? signal)}) before answering; see ${logFile}`)))
  })
  exited.catch(() => {})
  try {
    readyAt = await Promise.race([until200(base + waitPath, headers, 60_000), exited])
  } catch (error) {
    await stopChild(child)
    throw error
  }
  return {
    name, child, pid: child.pid ?? 0, port, base, metricsUrl, spawnedAt, readyAt,
    stop: async () => { await stopChild(child) }
  }
}

/**
 * The environment a bench starts the agent with: its files under `dir`, `token` as its token,
 * and the image's own variables (docker/Dockerfile ENV), as for its flags; a candidate's own
 * variables go on top.
 */
export function agentEnvironment (dir: string, token: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: dir,
    XDG_CONFIG_HOME: join(dir, 'config'),
    XDG_RUNTIME_DIR: join(dir, 'run'),
    // Nothing from this machine's own AWS setup: the agent must never reach real AWS from a bench.
    AWS_CONFIG_FILE: join(dir, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(dir, 'no-aws-credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_TOKEN: token,
    ...shippedEnvironment()
  }
}

export async function startAgentProcess (options: AgentStart): Promise<ServerProcess> {
  const [port = 0, metricsPort = null] = await freePorts(options.metrics === false ? 1 : 2)
  const logFile = options.logFile ?? join(options.dir, 'agent.log')
  const args = [
    ...agentNodeFlags(), ...(options.nodeArgs ?? []), options.cli, 'serve',
    '--provider', options.provider,
    '--port', String(port),
    '--log-level', options.logLevel ?? 'info',
    ...(options.store !== undefined ? ['--store', options.store] : []),
    ...(metricsPort !== null ? ['--metrics-listen', `127.0.0.1:${metricsPort}`] : [])
  ]
  const env = { ...agentEnvironment(options.dir, options.token), ...options.env }
  const argv = [process.execPath, ...args]
  const { child, spawnedAt } = spawnServer('agent', options.cgroup === undefined ? argv : options.cgroup.wrap(argv), env, options.cpu, logFile)
  return started('agent', child, spawnedAt, port, options.waitPath ?? '/ping', { [TOKEN_HEADER]: options.token }, metricsPort === null ? null : `http://127.0.0.1:${metricsPort}/metrics`, logFile)
}

export interface BaselineStart {
  name: string
  script: string
  dir: string
  token: string
  responseFile: string
  cpu: number | null
  waitPath: string
  nodeArgs?: string[]
}

export async function startBaseline (options: BaselineStart): Promise<ServerProcess> {
  const port = await freePort()
  const logFile = join(options.dir, `${options.name.replace(/\W+/g, '-')}.log`)
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, BENCH_PORT: String(port), BENCH_TOKEN: options.token, BENCH_RESPONSE_FILE: options.responseFile }
  const { child, spawnedAt } = spawnServer(options.name, [process.execPath, ...(options.nodeArgs ?? []), options.script], env, options.cpu, logFile)
  return started(options.name, child, spawnedAt, port, options.waitPath, { [TOKEN_HEADER]: options.token }, null, logFile)
}
