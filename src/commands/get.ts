import { access, readFile } from 'node:fs/promises'
import { ConfigError, type AgentConfig } from '../config/index.js'
import { devTokenPath, namedFile } from '../token.js'
import { clientConfig, dialAddress, errorMessage, getFromAgent, type AgentAnswer } from './agent-client.js'
import { CommandError, fail, parseCommand, seconds, writeOut } from './common.js'
import { EXIT } from './exit.js'

export const GET_HELP = `Usage: secrets-agent get ID [flags]
       secrets-agent get --parameter NAME [--with-decryption] [flags]

Reads a secret (or, with --parameter, a parameter) from the local agent and prints its value:
the SecretString, the raw bytes of a SecretBinary, one field of a JSON secret, or the
parameter's Value. For shell scripts:

  PGPASSWORD=$(secrets-agent get prod/app/db --field password)

A newline follows the value only when stdout is a terminal: piped or redirected, the bytes
are exactly the value's.

The token is found as an app would: --token-file, else AWS_TOKEN, else the file
secrets-agent dev generates ($XDG_RUNTIME_DIR/secrets-agent/token or
~/.cache/secrets-agent/token) when it exists, else AWS_SESSION_TOKEN and
AWS_CONTAINER_AUTHORIZATION_TOKEN (on a laptop AWS_SESSION_TOKEN is an AWS credential). These
variables are ssrf_env_variables; a value file:///path names a file.

Flags:
  --field NAME         print one top-level field of a JSON SecretString
  --stage S            the version with staging label S (default AWSCURRENT)
  --version-id V       the version with id V
  --parameter          ID is a parameter name or ARN (name:label and name:version select one)
  --with-decryption    decrypt a SecureString parameter (without it, its ciphertext)
  --port N, --host H   where the agent listens (default from the configuration, as serve)
  --token-file PATH    file holding the token
  --config PATH        the TOML file serve reads (also SECRETS_AGENT_CONFIG)
  --timeout S          give up after S seconds (default 15)

Exit codes: 0 printed; 3 not found (secret, version, parameter or field); 4 the agent refused
the token or denied access; 5 the agent could not be reached or could not answer (connection
refused, timeout, 429, 5xx); 2 bad usage (also a request the agent calls invalid, such as
--field on a binary secret); 1 anything else. The reason is one line on stderr.
`

const FLAGS = {
  field: { type: 'string' },
  stage: { type: 'string' },
  'version-id': { type: 'string' },
  parameter: { type: 'boolean' },
  'with-decryption': { type: 'boolean' },
  port: { type: 'string' },
  host: { type: 'string' },
  'token-file': { type: 'string' },
  config: { type: 'string' },
  timeout: { type: 'string' }
} as const

export async function runGet (args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const parsed = parseCommand('get', args, FLAGS, GET_HELP, true)
  if (typeof parsed === 'number') return parsed
  const { values, positionals } = parsed
  try {
    const id = positionals[0]
    if (id === undefined || id === '' || positionals.length > 1) throw new CommandError(EXIT.usage, 'give exactly one ID (secrets-agent get --help)')
    const timeoutMs = seconds(values.timeout, 15, '--timeout') * 1000
    const path = requestPath(id, values)
    const config = await clientConfig(values, env)
    const token = await clientToken(config, env)
    const header = config.ssrfHeaders[0] ?? 'X-Aws-Parameters-Secrets-Token'
    const answer = await getFromAgent(dialAddress(config), path, { [header]: token }, timeoutMs)
    if (answer.status !== 200) return fail('get', exitFor(answer.status), errorMessage(answer))
    await writeOut(valueOf(answer, values))
    return EXIT.ok
  } catch (error) {
    if (error instanceof CommandError) return fail('get', error.code, error.message)
    if (error instanceof ConfigError) return fail('get', EXIT.usage, error.message)
    throw error
  }
}

function requestPath (id: string, values: Record<string, string | boolean | undefined>): string {
  const query = new URLSearchParams()
  if (values.parameter === true) {
    for (const flag of ['field', 'stage', 'version-id']) {
      if (values[flag] !== undefined) throw new CommandError(EXIT.usage, `--${flag} applies to secrets, not to --parameter (select a parameter version with NAME:label or NAME:version)`)
    }
    query.set('name', id)
    if (values['with-decryption'] === true) query.set('withDecryption', 'true')
    return `/systemsmanager/parameters/get?${query.toString()}`
  }
  if (values['with-decryption'] === true) throw new CommandError(EXIT.usage, '--with-decryption applies to --parameter (secrets always come decrypted)')
  query.set('secretId', id)
  if (typeof values.stage === 'string') query.set('versionStage', values.stage)
  if (typeof values['version-id'] === 'string') query.set('versionId', values['version-id'])
  if (typeof values.field === 'string') query.set('field', values.field)
  return `/secretsmanager/get?${query.toString()}`
}

/** The status → exit code table of README "Exit codes". */
export function exitFor (status: number): number {
  if (status === 404) return EXIT.notFound
  if (status === 401 || status === 403) return EXIT.denied
  if (status === 400) return EXIT.usage
  if (status === 408 || status === 429 || status >= 500) return EXIT.unreachable
  return EXIT.failure
}

/** The bytes to print: a terminal gets a newline after a text value, anything else exactly the value. */
function valueOf (answer: AgentAnswer, values: Record<string, string | boolean | undefined>): string | Uint8Array {
  const newline = process.stdout.isTTY === true ? '\n' : ''
  // field= answers text/plain: the field itself.
  if (typeof values.field === 'string') return answer.body.toString('utf8') + newline
  let body: Record<string, unknown>
  try {
    body = JSON.parse(answer.body.toString('utf8')) as Record<string, unknown>
  } catch {
    throw new CommandError(EXIT.failure, 'the agent answered 200 with a body that is not JSON')
  }
  if (values.parameter === true) {
    const value = (body.Parameter as { Value?: unknown } | undefined)?.Value
    if (typeof value !== 'string') throw new CommandError(EXIT.failure, 'the agent\'s answer has no Parameter.Value')
    return value + newline
  }
  if (typeof body.SecretString === 'string') return body.SecretString + newline
  if (typeof body.SecretBinary === 'string') return Buffer.from(body.SecretBinary, 'base64')
  throw new CommandError(EXIT.failure, 'the agent\'s answer has neither SecretString nor SecretBinary')
}

/**
 * Variables of ssrf_env_variables that, outside a container, hold AWS credentials rather than the
 * agent's token: AWS_SESSION_TOKEN is set by SSO and assumed-role sessions on a laptop.
 */
const AWS_CREDENTIAL_VARIABLES: ReadonlySet<string> = new Set(['AWS_SESSION_TOKEN', 'AWS_CONTAINER_AUTHORIZATION_TOKEN'])

/**
 * The token, found as an app would find the one `serve` uses (DESIGN §4): --token-file, then the
 * ssrf_env_variables (a `file://` value names a file), except that the file `dev` writes, when it
 * exists, comes before the variables that on a laptop hold AWS credentials. In a container there
 * is no such file, so the Lambda extension's order is unchanged there.
 * The value is only ever sent in the header, never printed.
 */
export async function clientToken (config: Pick<AgentConfig, 'tokenFile' | 'ssrfEnvVariables'>, env: NodeJS.ProcessEnv): Promise<string> {
  if (config.tokenFile !== null) return readTokenFile(config.tokenFile)
  const variables = config.ssrfEnvVariables
  const fromVariables = async (names: readonly string[]): Promise<string | undefined> => {
    for (const name of names) {
      const token = await tokenFromVariable(name, env)
      if (token !== undefined) return token
    }
    return undefined
  }
  const devFile = devTokenPath(env)
  const token = await fromVariables(variables.filter((name) => !AWS_CREDENTIAL_VARIABLES.has(name))) ??
    await readTokenFileIfAny(devFile) ??
    await fromVariables(variables.filter((name) => AWS_CREDENTIAL_VARIABLES.has(name)))
  if (token !== undefined) return token
  throw new CommandError(EXIT.usage, `no token: pass --token-file PATH, set one of ${variables.join(', ')}, or run secrets-agent dev (which writes ${devFile})`)
}

async function tokenFromVariable (name: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const raw = env[name]?.trim()
  if (raw === undefined || raw === '') return undefined
  let file: string | undefined
  try {
    // The agent's own reading of the value, so that both find the same file.
    file = namedFile(name, raw)
  } catch (error) {
    throw new CommandError(EXIT.usage, (error as Error).message)
  }
  return file === undefined ? raw : readTokenFile(file)
}

/** The token in `file`, or undefined when there is no such file; any other failure is reported. */
async function readTokenFileIfAny (file: string): Promise<string | undefined> {
  try {
    await access(file)
  } catch {
    return undefined
  }
  return readTokenFile(file)
}

async function readTokenFile (file: string): Promise<string> {
  let value: string
  try {
    value = (await readFile(file, 'utf8')).trim()
  } catch (error) {
    throw new CommandError(EXIT.usage, `cannot read the token file ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`)
  }
  if (value === '') throw new CommandError(EXIT.usage, `the token file ${file} is empty`)
  return value
}
