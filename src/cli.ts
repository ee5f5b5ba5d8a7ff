#!/usr/bin/env node
import { parseArgs, type ParseArgsConfig } from 'node:util'
import type { Logger } from 'pino'
import type { RunningAgent } from './agent.js'
import { EXIT } from './commands/exit.js'
import { SETTINGS, loadConfig, type AgentConfig, type LoadedConfig } from './config/index.js'
import type { Token } from './token.js'
import { VERSION } from './version.js'

// The server, pino and the AWS SDK load only for the commands that run the agent: `health`
// runs every few seconds in a container and must start fast.

/** Exit codes (README "Exit codes"). */
export { EXIT }

/** The client commands, each in its own module, loaded when asked for. */
const CLIENT_COMMANDS: Record<string, () => Promise<(args: string[], env: NodeJS.ProcessEnv) => Promise<number>>> = {
  health: async () => (await import('./commands/health.js')).runHealth,
  get: async () => (await import('./commands/get.js')).runGet,
  store: async () => (await import('./commands/store.js')).runStore
}

type Flags = Record<string, string | boolean | undefined>

const SETTING_FLAGS: ParseArgsConfig['options'] = Object.fromEntries([
  ...SETTINGS.filter((s) => s.flag !== undefined).map((s) => [s.flag, { type: s.type.kind === 'bool' ? 'boolean' : 'string' }]),
  ...SETTINGS.filter((s) => s.negativeFlag !== undefined).map((s) => [s.negativeFlag, { type: 'boolean' }])
])
const COMMON_FLAGS: ParseArgsConfig['options'] = {
  config: { type: 'string' },
  help: { type: 'boolean', short: 'h' }
}

const HELP: Record<string, string> = {
  main: `secrets-agent ${VERSION}: AWS secrets, parameters and KMS for local apps, over HTTP on 127.0.0.1:2773.

Usage: secrets-agent <command> [flags]

Commands:
  serve    run the agent (production; provider aws by default)
  dev      run the agent for local development (local store by default, generated token)
  config   print the effective configuration and where each value came from
  health   exit 0 when the local agent answers /ping (or /ready with --ready)
  get      print a secret's or parameter's value, asking the local agent (for scripts)
  store    set, list or delete entries of the local store file

Flags:
  --version   print the version
  --help      help for a command: secrets-agent serve --help
`,
  serve: `Usage: secrets-agent serve [flags]

Runs the agent. Clients send the token in the X-Aws-Parameters-Secrets-Token header.

Flags (each also settable in the environment and the TOML file; see the README):
  --config PATH          TOML config file (also SECRETS_AGENT_CONFIG)
  --provider aws|local   where values come from (default aws)
  --store PATH           local store file, for --provider local
  --host HOST            listen address (default 127.0.0.1; others need --allow-remote)
  --port N               listen port (default 2773; 0 picks a free one and logs it)
  --allow-remote         permit a non-loopback --host
  --token-file PATH      file holding the token (else AWS_TOKEN, AWS_SESSION_TOKEN,
                         AWS_CONTAINER_AUTHORIZATION_TOKEN; a value file:///path names a file)
  --generate-token       create --token-file with a fresh token when it does not exist
  --log-level LEVEL      trace, debug, info, warn, error or none (default info)
  --profile NAME         AWS profile, for --provider aws
  --no-validate-credentials  turn ready without checking credentials with STS
  --metrics-listen H:P   serve Prometheus metrics on HOST:PORT (off by default)
`,
  dev: `Usage: secrets-agent dev [flags]

Runs the agent for local development: the local store (created with examples if missing)
unless --provider aws, pretty logs, and a token generated into a file only you can read
(unless --token-file or AWS_TOKEN gives one). Prints a curl line to try it.

Flags: as for serve (secrets-agent serve --help); --provider aws --profile NAME reads
real AWS with your own profile or SSO session.
`,
  config: `Usage: secrets-agent config [flags]

Prints every setting's effective value and where it came from (flag, env, file, default).
Takes the same flags as serve.
`
}

export async function main (argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const [command, ...rest] = argv
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(HELP.main ?? '')
    return command === undefined ? EXIT.usage : EXIT.ok
  }
  if (command === '--version' || command === '-v' || command === 'version') {
    process.stdout.write(`${VERSION}\n`)
    return EXIT.ok
  }
  const client = CLIENT_COMMANDS[command]
  if (client !== undefined) return (await client())(rest, env)
  if (!['serve', 'dev', 'config'].includes(command)) {
    process.stderr.write(`secrets-agent: unknown command ${JSON.stringify(command)}\n\n${HELP.main ?? ''}`)
    return EXIT.usage
  }

  let flags: Flags
  try {
    flags = parseArgs({ args: rest, options: { ...COMMON_FLAGS, ...SETTING_FLAGS }, strict: true, allowPositionals: false }).values as Flags
  } catch (error) {
    process.stderr.write(`secrets-agent ${command}: ${(error as Error).message}\nSee: secrets-agent ${command} --help\n`)
    return EXIT.usage
  }
  if (flags.help === true) {
    process.stdout.write(HELP[command] ?? '')
    return EXIT.ok
  }

  let loaded: LoadedConfig
  try {
    loaded = await loadConfig({
      flags,
      env,
      ...(typeof flags.config === 'string' ? { configFile: flags.config } : {}),
      defaults: command === 'dev' ? { provider: 'local' } : { provider: 'aws' }
    })
  } catch (error) {
    return usageError(command, error)
  }

  if (command === 'config') {
    printConfig(loaded)
    return EXIT.ok
  }
  return run(command, loaded, env)
}

async function run (command: string, loaded: LoadedConfig, env: NodeJS.ProcessEnv): Promise<number> {
  const config = loaded.config
  const [{ startAgent }, { createLogger, prettyStream }, { loadDevToken, loadToken }] = await Promise.all([import('./agent.js'), import('./logger.js'), import('./token.js')])
  const logger = createLogger({ level: config.logLevel, ...(command === 'dev' ? { pretty: await prettyStream() } : {}) })
  for (const warning of loaded.warnings) logger.warn(warning)

  let token: Token
  let agent: RunningAgent
  try {
    token = command === 'dev'
      ? await loadDevToken({ tokenFile: config.tokenFile, generate: config.generateToken, fileMode: config.tokenFileMode, env, logger })
      : await loadToken({ tokenFile: config.tokenFile, generate: config.generateToken, fileMode: config.tokenFileMode, envVariables: config.ssrfEnvVariables, env, logger })
    agent = await startAgent({ config, token, logger, env, createStore: command === 'dev' })
  } catch (error) {
    if (isUsageError(error)) return usageError(command, error)
    logger.fatal({ err: { message: (error as Error).message, code: (error as NodeJS.ErrnoException).code } }, 'secrets-agent could not start')
    return await new Promise((resolve) => { flushThen(logger, () => { resolve(EXIT.failure) }) })
  }

  if (command === 'dev') process.stdout.write(devBanner(config, agent, token, env))
  return waitForSignal(agent, config, logger)
}

/**
 * Writes out the log lines still buffered (they go out in 16 KiB writes), then calls `then`. This
 * waits as long as stdout's reader takes: exiting earlier would not help, as Node's exit waits for
 * a write already under way in its threads.
 */
function flushThen (logger: Logger, then: () => void): void {
  try {
    logger.flush(() => { then() })
  } catch {
    then()
  }
}

function waitForSignal (agent: RunningAgent, config: AgentConfig, logger: Logger): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false
    // Listening for every signal (not once): a second SIGTERM, or Ctrl-C twice, is ours to answer.
    const done = (code: number): void => {
      process.off('SIGTERM', stop)
      process.off('SIGINT', stop)
      resolve(code)
    }
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        logger.warn({ signal }, 'second signal: exiting now')
        done(EXIT.failure)
        return
      }
      stopping = true
      logger.info({ signal }, 'stopping: no new connections, finishing requests in flight')
      const deadline = setTimeout(() => {
        logger.warn({ seconds: config.shutdownTimeoutSeconds }, 'requests still in flight at the shutdown deadline; exiting')
        done(EXIT.ok)
      }, config.shutdownTimeoutSeconds * 1000)
      deadline.unref()
      agent.close().then(
        () => { clearTimeout(deadline); logger.info('stopped'); flushThen(logger, () => done(EXIT.ok)) },
        (error: unknown) => { clearTimeout(deadline); logger.error({ err: { message: (error as Error).message } }, 'error while stopping'); flushThen(logger, () => done(EXIT.ok)) }
      )
    }
    process.on('SIGTERM', stop)
    process.on('SIGINT', stop)
  })
}

/** The lines `dev` prints once listening: a curl command that reads the token from where it is. */
export function devBanner (config: AgentConfig, agent: RunningAgent, token: Token, env: NodeJS.ProcessEnv): string {
  const header = config.ssrfHeaders[0] ?? 'X-Aws-Parameters-Secrets-Token'
  const tokenExpr = token.choice.file !== null ? `$(cat ${shellQuote(token.choice.file)})` : env.AWS_TOKEN !== undefined ? '$AWS_TOKEN' : '$TOKEN'
  const host = config.host.includes(':') && !config.host.startsWith('[') ? `[${config.host}]` : config.host
  const example = agent.provider.kind === 'local' ? 'dev/example/database' : 'YOUR-SECRET-ID'
  const lines = [
    '',
    `secrets-agent ${VERSION} (dev, provider ${agent.provider.kind}) on http://${host}:${agent.port}`,
    ...(agent.storeFile !== null ? [`store: ${agent.storeFile}`] : []),
    'Try:',
    `curl -sS -H "${header}: ${tokenExpr}" 'http://${host}:${agent.port}/secretsmanager/get?secretId=${example}'`,
    ''
  ]
  return lines.join('\n') + '\n'
}

/** Quotes a path for a POSIX shell: single quotes, with any single quote closed and escaped. */
export function shellQuote (s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`
}

function printConfig (loaded: LoadedConfig): void {
  const width = Math.max(...SETTINGS.map((s) => s.key.length))
  for (const spec of SETTINGS) {
    const resolved = loaded.settings.get(spec.key)
    if (resolved === undefined) continue
    const shown = spec.secret === true && resolved.value !== null ? '[redacted]' : JSON.stringify(resolved.value)
    const from = resolved.source === 'default' ? 'default' : `${resolved.source}: ${resolved.origin}`
    process.stdout.write(`${spec.key.padEnd(width)} = ${shown}  # ${from}\n`)
  }
  for (const warning of loaded.warnings) process.stdout.write(`# warning: ${warning}\n`)
}

/** Errors the user can fix. By name, so that checking does not load the modules that define them. */
const USAGE_ERRORS = new Set(['ConfigError', 'TokenError', 'StoreFormatError', 'KeyFileError'])

function isUsageError (error: unknown): boolean {
  return error instanceof Error && USAGE_ERRORS.has(error.name)
}

function usageError (command: string, error: unknown): number {
  if (!isUsageError(error)) throw error
  process.stderr.write(`secrets-agent ${command}: ${(error as Error).message}\n`)
  return EXIT.usage
}

// Run when executed as the bin (not when imported by tests).
const invokedAs = process.argv[1] ?? ''
if (/(^|[/\\])(cli\.(js|ts)|secrets-agent)$/.test(invokedAs)) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code
    // Listeners, watchers and timers are unref'd or closed; give stdout a moment, then go.
    setTimeout(() => process.exit(code), 100).unref()
  }, (error: unknown) => {
    process.stderr.write(`secrets-agent: ${(error as Error).stack ?? String(error)}\n`)
    process.exit(EXIT.failure)
  })
}
