import type { IncomingHttpHeaders } from 'node:http'
import { nodeHttp } from '../builtins.js'
import { loadConfig, unbracketed, type AgentConfig } from '../config/index.js'
import { CommandError } from './common.js'
import { EXIT } from './exit.js'

/** Where the local agent is, from the same flags, environment and TOML file `serve` reads. */
export interface AgentAddress {
  host: string
  port: number
}

export interface AgentAnswer {
  status: number
  headers: IncomingHttpHeaders
  body: Buffer
}

/**
 * Loads the configuration as `serve` does (flags > environment > TOML > defaults), so a
 * client run beside the agent, with the same environment, finds it without arguments.
 */
export async function clientConfig (flags: Record<string, string | boolean | undefined>, env: NodeJS.ProcessEnv): Promise<AgentConfig> {
  const configFile = typeof flags.config === 'string' ? flags.config : undefined
  const settingFlags = Object.fromEntries(['port', 'host', 'token-file', 'store'].filter((k) => flags[k] !== undefined).map((k) => [k, flags[k]]))
  const loaded = await loadConfig({ flags: settingFlags, env, ...(configFile === undefined ? {} : { configFile }) })
  return loaded.config
}

/**
 * The address to dial for the agent's listen address: an agent bound to every interface
 * (`0.0.0.0`, `::`) is reached on loopback; brackets of an IPv6 literal are dropped.
 */
export function dialAddress (config: Pick<AgentConfig, 'host' | 'httpPort'>): AgentAddress {
  let host = unbracketed(config.host)
  if (host === '0.0.0.0' || host === '') host = '127.0.0.1'
  if (host === '::') host = '::1'
  return { host, port: config.httpPort }
}

export function describeAddress (address: AgentAddress): string {
  return `${address.host.includes(':') ? `[${address.host}]` : address.host}:${address.port}`
}

/**
 * One GET to the agent, bounded by `timeoutMs` from start to the last byte. Anything that keeps
 * an answer from arriving (refused, reset, timed out) becomes a CommandError with EXIT.unreachable.
 */
export function getFromAgent (address: AgentAddress, path: string, headers: Record<string, string>, timeoutMs: number): Promise<AgentAnswer> {
  return new Promise((resolve, reject) => {
    let settled = false
    const finish = (error: Error | null, answer?: AgentAnswer): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      if (error !== null) reject(error)
      else resolve(answer as AgentAnswer)
    }
    // No keep-alive agent: one request, then the socket closes and the process can exit.
    const req = nodeHttp().request({ host: address.host, port: address.port, path, method: 'GET', headers, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => finish(null, { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on('error', (error) => finish(unreachable(address, error)))
    })
    const timer = setTimeout(() => {
      finish(new CommandError(EXIT.unreachable, `no answer from the agent at ${describeAddress(address)} within ${timeoutMs / 1000} s`))
      req.destroy()
    }, timeoutMs)
    req.on('error', (error) => finish(unreachable(address, error)))
    req.end()
  })
}

function unreachable (address: AgentAddress, error: NodeJS.ErrnoException): CommandError {
  const where = describeAddress(address)
  if (error.code === 'ECONNREFUSED') return new CommandError(EXIT.unreachable, `nothing is listening on ${where} (is the agent running? is the port right?)`)
  return new CommandError(EXIT.unreachable, `cannot reach the agent at ${where}: ${error.code ?? error.message}`)
}

/** The agent's `message` from an error body, or a generic line when the body is not ours. */
export function errorMessage (answer: AgentAnswer): string {
  try {
    const body = JSON.parse(answer.body.toString('utf8')) as { __type?: unknown, message?: unknown }
    if (typeof body.message === 'string') return typeof body.__type === 'string' ? `${body.__type}: ${body.message}` : body.message
  } catch { /* not JSON */ }
  return `the agent answered ${answer.status}`
}
