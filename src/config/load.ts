import { readFile } from 'node:fs/promises'
import { parse as parseToml } from 'smol-toml'
import { SETTINGS, SETTINGS_BY_KEY, envName, type AgentConfig, type SettingSpec } from './schema.js'

/** A configuration problem that stops the start; the message names the key and what is allowed. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError'
}

export type Source = 'flag' | 'env' | 'file' | 'default'

export interface ResolvedSetting {
  value: unknown
  source: Source
  /** The flag, variable or file key the value came from. */
  origin: string
}

export interface LoadedConfig {
  config: AgentConfig
  /** Where each setting's value came from, for `secrets-agent config`. */
  settings: Map<string, ResolvedSetting>
  /** Things worth a warning at start that are not errors. */
  warnings: string[]
}

export interface LoadOptions {
  /** Flag values by flag name (`port`, `allow-remote`), as parsed from argv. */
  flags?: Record<string, string | boolean | undefined>
  env?: NodeJS.ProcessEnv
  /** TOML file; `SECRETS_AGENT_CONFIG` names one when this is unset. */
  configFile?: string
  /** Defaults that depend on the command (`provider`: aws for serve, local for dev). */
  defaults?: Record<string, unknown>
}

/** Environment variables with the prefix that are not settings. */
const OTHER_AGENT_VARIABLES = new Set(['SECRETS_AGENT_CONFIG'])

export async function loadConfig (options: LoadOptions = {}): Promise<LoadedConfig> {
  const env = options.env ?? process.env
  const flags = options.flags ?? {}
  const configFile = options.configFile ?? nonEmpty(env.SECRETS_AGENT_CONFIG)
  const file = configFile === undefined ? new Map<string, unknown>() : await readTomlFile(configFile)
  rejectUnknownEnv(env)

  const settings = new Map<string, ResolvedSetting>()
  for (const spec of SETTINGS) {
    settings.set(spec.key, resolve(spec, { flags, env, file, configFile, defaults: options.defaults ?? {} }))
  }
  const config = toAgentConfig(settings)
  return { config, settings, warnings: crossCheck(config) }
}

interface Sources {
  flags: Record<string, string | boolean | undefined>
  env: NodeJS.ProcessEnv
  file: Map<string, unknown>
  configFile: string | undefined
  defaults: Record<string, unknown>
}

function resolve (spec: SettingSpec, sources: Sources): ResolvedSetting {
  const chain = [spec, ...(spec.alsoFrom ?? []).map((key) => SETTINGS_BY_KEY.get(key)).filter((s): s is SettingSpec => s !== undefined)]

  for (const s of chain) {
    if (s.negativeFlag !== undefined && sources.flags[s.negativeFlag] === true) return { value: false, source: 'flag', origin: `--${s.negativeFlag}` }
    if (s.flag === undefined) continue
    const raw = sources.flags[s.flag]
    if (raw !== undefined) return { value: coerce(spec, raw, `--${s.flag}`), source: 'flag', origin: `--${s.flag}` }
  }
  // Our variables first, then the ones the Lambda extension and the Secrets Manager Agent read:
  // where ours and theirs both set a value, ours wins, even when theirs is the narrower setting.
  for (const names of [(s: SettingSpec) => [envName(s.key)], (s: SettingSpec) => s.env ?? []]) {
    for (const s of chain) {
      for (const name of names(s)) {
        const raw = sources.env[name]
        if (raw !== undefined && (raw !== '' || spec.emptyIsValue === true)) return { value: coerce(spec, raw, name), source: 'env', origin: name }
      }
    }
  }
  for (const s of chain) {
    if (sources.file.has(s.key)) {
      const origin = `${s.key} in ${sources.configFile ?? 'config file'}`
      return { value: coerce(spec, sources.file.get(s.key), origin), source: 'file', origin }
    }
  }
  const value = spec.key in sources.defaults ? sources.defaults[spec.key] : spec.default
  return { value, source: 'default', origin: 'default' }
}

/** Turns a raw flag, environment or TOML value into the setting's type, or throws naming it. */
export function coerce (spec: SettingSpec, raw: unknown, origin: string): unknown {
  const type = spec.type
  const fail = (expected: string): never => {
    throw new ConfigError(`invalid value for ${spec.key} (from ${origin}): ${JSON.stringify(raw)}; expected ${expected}`)
  }
  switch (type.kind) {
    case 'int': {
      const range = `a whole number from ${type.min} to ${type.max}`
      let n: number
      if (typeof raw === 'number') n = raw
      else if (typeof raw === 'bigint') n = Number(raw)
      else if (typeof raw === 'string' && /^\s*\d+\s*$/.test(raw)) n = Number(raw.trim())
      else return fail(range)
      if (!Number.isSafeInteger(n) || n < type.min || n > type.max) return fail(range)
      return n
    }
    case 'bool': {
      if (typeof raw === 'boolean') return raw
      if (typeof raw === 'string') {
        const v = raw.trim().toLowerCase()
        if (['true', '1', 'yes', 'on'].includes(v)) return true
        if (['false', '0', 'no', 'off'].includes(v)) return false
      }
      return fail('true or false')
    }
    case 'enum': {
      if (typeof raw === 'string') {
        const v = raw.trim().toLowerCase()
        if (type.values.includes(v)) return v
      }
      return fail(`one of ${type.values.join(', ')}`)
    }
    case 'string': {
      if (typeof raw !== 'string' || raw.trim() === '') return fail(type.describe ?? 'a non-empty string')
      const v = raw.trim()
      if (type.pattern !== undefined && !type.pattern.test(v)) return fail(type.describe ?? `a value matching ${String(type.pattern)}`)
      return v
    }
    case 'list': {
      if (typeof raw === 'string') return raw.split(',').map((s) => s.trim()).filter((s) => s !== '')
      if (Array.isArray(raw) && raw.every((x) => typeof x === 'string')) return raw.map((s: string) => s.trim())
      return fail('a list of strings (in the environment: comma-separated)')
    }
  }
}

async function readTomlFile (path: string): Promise<Map<string, unknown>> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (error) {
    throw new ConfigError(`cannot read config file ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`)
  }
  let doc: Record<string, unknown>
  try {
    doc = parseToml(text)
  } catch (error) {
    throw new ConfigError(`config file ${path} is not valid TOML: ${(error as Error).message.split('\n')[0] ?? ''}`)
  }
  const flat = new Map<string, unknown>()
  flatten(doc, '', flat)
  for (const key of flat.keys()) {
    if (!SETTINGS_BY_KEY.has(key)) {
      throw new ConfigError(`unknown key ${key} in config file ${path}; known keys: ${SETTINGS.map((s) => s.key).join(', ')}`)
    }
  }
  return flat
}

function flatten (table: Record<string, unknown>, prefix: string, out: Map<string, unknown>): void {
  for (const [k, v] of Object.entries(table)) {
    const key = prefix + k
    const isTable = v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date)
    if (isTable && !SETTINGS_BY_KEY.has(key)) flatten(v as Record<string, unknown>, key + '.', out)
    else out.set(key, v)
  }
}

function rejectUnknownEnv (env: NodeJS.ProcessEnv): void {
  const known = new Set(SETTINGS.map((s) => envName(s.key)))
  for (const name of Object.keys(env)) {
    if (name.startsWith('SECRETS_AGENT_') && !known.has(name) && !OTHER_AGENT_VARIABLES.has(name)) {
      throw new ConfigError(`unknown environment variable ${name}; known: ${[...known, ...OTHER_AGENT_VARIABLES].join(', ')}`)
    }
  }
}

function nonEmpty (s: string | undefined): string | undefined {
  return s === undefined || s.trim() === '' ? undefined : s
}

function toAgentConfig (settings: Map<string, ResolvedSetting>): AgentConfig {
  const get = <T>(key: string): T => settings.get(key)?.value as T
  return {
    provider: get('provider') ?? 'aws',
    host: get('host'),
    httpPort: get('http_port'),
    allowRemote: get('allow_remote'),
    logLevel: get('log_level'),
    logToFile: get('log_to_file'),
    credentialsFilePath: get('credentials_file_path'),
    store: get('store'),
    tokenFile: get('token_file'),
    generateToken: get('generate_token'),
    tokenFileMode: parseInt(get<string>('token_file_mode'), 8),
    ssrfHeaders: get('ssrf_headers'),
    ssrfEnvVariables: get('ssrf_env_variables'),
    pathPrefix: get('path_prefix'),
    maxConn: get('max_conn'),
    cacheEnabled: get('cache_enabled'),
    cacheSize: get('cache_size'),
    cacheMaxBytes: get('cache_max_bytes'),
    secretsTtlSeconds: get('secrets_ttl_seconds'),
    parametersTtlSeconds: get('parameters_ttl_seconds'),
    maxStaleSeconds: get('max_stale_seconds'),
    ignoreTransientErrors: get('ignore_transient_errors'),
    negativeTtlSeconds: get('negative_ttl_seconds'),
    refreshJitterMinPercent: get('refresh_jitter_min_percent'),
    refreshJitterMaxPercent: get('refresh_jitter_max_percent'),
    region: get('region'),
    profile: get('profile'),
    validateCredentials: get('validate_credentials'),
    secretsManagerTimeoutMillis: get('secrets_manager_timeout_millis'),
    ssmParameterStoreTimeoutMillis: get('ssm_parameter_store_timeout_millis'),
    kmsTimeoutMillis: get('kms_timeout_millis'),
    upstreamMaxConnections: get('upstream_max_connections'),
    prefetch: {
      secrets: get('prefetch.secrets'),
      parameters: get('prefetch.parameters'),
      parameterPaths: get('prefetch.parameter_paths')
    },
    prefetchTimeoutSeconds: get('prefetch_timeout_seconds'),
    allow: {
      secrets: get('allow.secrets'),
      parameters: get('allow.parameters'),
      kmsKeys: get('allow.kms_keys')
    },
    kms: {
      defaultKeyId: get('kms.default_key_id'),
      dataKeyCaching: get('kms.data_key_caching'),
      dataKeyMaxAgeSeconds: get('kms.data_key_max_age_seconds'),
      dataKeyMaxMessages: get('kms.data_key_max_messages'),
      dataKeyMaxBytes: get('kms.data_key_max_bytes')
    },
    envelopeMaxBodyBytes: get('envelope_max_body_bytes'),
    metricsListen: get('metrics_listen'),
    shutdownTimeoutSeconds: get('shutdown_timeout_seconds')
  }
}

/** Checks that span settings. Errors throw; softer findings come back as warnings. */
function crossCheck (config: AgentConfig): string[] {
  const warnings: string[] = []
  if (config.refreshJitterMinPercent > config.refreshJitterMaxPercent) {
    throw new ConfigError(`refresh_jitter_min_percent (${config.refreshJitterMinPercent}) must not exceed refresh_jitter_max_percent (${config.refreshJitterMaxPercent})`)
  }
  if (config.ssrfHeaders.length === 0) throw new ConfigError('ssrf_headers must name at least one header')
  for (const h of config.ssrfHeaders) {
    if (!/^[A-Za-z0-9-]+$/.test(h)) throw new ConfigError(`ssrf_headers: ${JSON.stringify(h)} is not a header name`)
  }
  if (config.logToFile) warnings.push('log_to_file is accepted for compatibility, but logs always go to stdout')
  return warnings
}
