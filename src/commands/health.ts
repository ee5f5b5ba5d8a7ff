import { ConfigError } from '../config/index.js'
import { clientConfig, describeAddress, dialAddress, errorMessage, getFromAgent } from './agent-client.js'
import { CommandError, fail, parseCommand, seconds, writeOut } from './common.js'
import { EXIT } from './exit.js'

export const HEALTH_HELP = `Usage: secrets-agent health [--ready] [--port N] [--host H] [--config PATH] [--timeout S]

Asks the local agent GET /ping (or /ready with --ready) and exits 0 when it answers 200.
For container health checks and Kubernetes exec probes: needs no token, and with no flags
finds the agent where serve listens (the same --config file, SECRETS_AGENT_HTTP_PORT,
PARAMETERS_SECRETS_EXTENSION_HTTP_PORT, http_port and host settings).

Flags:
  --ready        ask /ready: 200 only once the agent can serve (store or credentials
                 checked, prefetch settled); use it to hold an app back until then
  --port N       the agent's port (default from the configuration, else 2773)
  --host H       the agent's address (default from the configuration, else 127.0.0.1;
                 0.0.0.0 and :: are reached on loopback)
  --config PATH  the TOML file serve reads (also SECRETS_AGENT_CONFIG)
  --timeout S    give up after S seconds (default 2)

Exit codes: 0 healthy (or ready); 5 nothing answered in time (a stopping agent takes no new
connection); 6 the agent answered, but not 200 (not ready yet); 2 bad usage. The reason is one
line on stderr.
`

const FLAGS = {
  ready: { type: 'boolean' },
  port: { type: 'string' },
  host: { type: 'string' },
  config: { type: 'string' },
  timeout: { type: 'string' }
} as const

export async function runHealth (args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const parsed = parseCommand('health', args, FLAGS, HEALTH_HELP)
  if (typeof parsed === 'number') return parsed
  const { values } = parsed
  const path = values.ready === true ? '/ready' : '/ping'
  try {
    const timeoutMs = seconds(values.timeout, 2, '--timeout', 60) * 1000
    const address = dialAddress(await clientConfig(values, env))
    const answer = await getFromAgent(address, path, {}, timeoutMs)
    if (answer.status !== 200) {
      const what = values.ready === true ? 'not ready' : 'unhealthy'
      return fail('health', EXIT.unhealthy, `${what}: ${path} on ${describeAddress(address)} answered ${answer.status}: ${errorMessage(answer)}`)
    }
    await writeOut(`${answer.body.toString('utf8').trim() || 'ok'}\n`)
    return EXIT.ok
  } catch (error) {
    if (error instanceof CommandError) return fail('health', error.code, error.message)
    if (error instanceof ConfigError) return fail('health', EXIT.usage, error.message)
    throw error
  }
}
