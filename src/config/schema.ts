/**
 * Every setting the agent knows: its TOML key, the environment variables and flag that set it,
 * its type, range and default. One table, so that loading, validation, `secrets-agent config`
 * and the README's reference all read the same facts.
 *
 * Names follow DESIGN §6: our own keys are snake_case in TOML and `SECRETS_AGENT_<KEY>` in the
 * environment; the Lambda extension's variables and the Secrets Manager Agent's TOML keys are
 * accepted with their meanings. Ranges are supersets of theirs.
 */

export type SettingType =
  | { kind: 'int', min: number, max: number }
  | { kind: 'bool' }
  | { kind: 'string', pattern?: RegExp, describe?: string }
  | { kind: 'enum', values: readonly string[] }
  | { kind: 'list' }

export interface SettingSpec {
  /** Dotted key: `cache_size`, `prefetch.secrets`. The TOML key (tables for the dotted part). */
  key: string
  type: SettingType
  default: unknown
  /** Extra environment variables, after `SECRETS_AGENT_<KEY>` (which always works). */
  env?: readonly string[]
  /** Long flag name, without the dashes. */
  flag?: string
  /** For a boolean: a flag that sets it false (`no-validate-credentials`). */
  negativeFlag?: string
  /** Keys that set this one too, with lower precedence (SMA's `ttl_seconds` sets both TTLs). */
  alsoFrom?: readonly string[]
  /** Redacted by `secrets-agent config`. */
  secret?: boolean
  /**
   * An empty environment variable is a value (an empty list), not "unset". For the allow-lists:
   * `SECRETS_AGENT_ALLOW_SECRETS=""`, what a deployment template writes for an empty list, must
   * allow nothing, not fall back on the default `*`.
   */
  emptyIsValue?: boolean
  doc: string
}

const HOUR = 3600
const DAY = 24 * HOUR
const MiB = 1024 * 1024

const int = (min: number, max: number): SettingType => ({ kind: 'int', min, max })
const bool: SettingType = { kind: 'bool' }
const str: SettingType = { kind: 'string' }
const list: SettingType = { kind: 'list' }

/** A host as the network calls take it: an IPv6 literal without the brackets a URL puts around it (`[::1]`). */
export function unbracketed (host: string): string {
  return host.replace(/^\[(.*)\]$/, '$1')
}

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'none'] as const
export type LogLevel = typeof LOG_LEVELS[number]

export const SETTINGS: readonly SettingSpec[] = [
  { key: 'provider', type: { kind: 'enum', values: ['local', 'aws'] }, default: null, flag: 'provider', doc: 'Where values come from: `local` (the store file) or `aws`. Default: `aws` for serve, `local` for dev.' },
  { key: 'host', type: str, default: '127.0.0.1', flag: 'host', alsoFrom: ['http_address'], doc: 'Address the API listens on. Anything but loopback needs allow_remote.' },
  { key: 'http_address', type: str, default: null, doc: 'Sets host (Secrets Manager Agent key).' },
  { key: 'http_port', type: int(0, 65535), default: 2773, env: ['PARAMETERS_SECRETS_EXTENSION_HTTP_PORT'], flag: 'port', doc: 'API port; 0 picks a free one (the agent logs it).' },
  { key: 'allow_remote', type: bool, default: false, flag: 'allow-remote', doc: 'Permit a non-loopback host. Logs a warning at every start.' },
  { key: 'log_level', type: { kind: 'enum', values: LOG_LEVELS }, default: 'info', env: ['PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL'], flag: 'log-level', doc: 'trace, debug, info, warn, error or none (case-insensitive).' },
  { key: 'log_to_file', type: bool, default: false, doc: 'Accepted for Secrets Manager Agent configs; logs always go to stdout (a warning says so when true).' },
  { key: 'credentials_file_path', type: str, default: null, doc: 'Accepted for Secrets Manager Agent configs: the AWS shared credentials file to use.' },

  { key: 'store', type: str, default: null, flag: 'store', doc: 'Local store file (YAML or JSON). Default: $XDG_CONFIG_HOME/secrets-agent/store.yaml.' },

  { key: 'token_file', type: str, default: null, flag: 'token-file', doc: 'File holding the token clients must send.' },
  { key: 'generate_token', type: bool, default: false, flag: 'generate-token', doc: 'Write a fresh 256-bit token to token_file when the file is absent.' },
  // The token is a password: others get nothing, the group (a sidecar's app) at most read.
  { key: 'token_file_mode', type: { kind: 'string', pattern: /^0?[4-7][04]0$/, describe: 'an octal file mode that the owner can read, the group at most read and others nothing, such as 0600 or 0640' }, default: '0640', doc: 'Mode of a generated token file (octal): the group may read it at most, others not at all.' },
  { key: 'ssrf_headers', type: list, default: ['X-Aws-Parameters-Secrets-Token', 'X-Vault-Token'], doc: 'Request headers that may carry the token, in order.' },
  { key: 'ssrf_env_variables', type: list, default: ['AWS_TOKEN', 'AWS_SESSION_TOKEN', 'AWS_CONTAINER_AUTHORIZATION_TOKEN'], doc: 'Environment variables the token is read from, first found; a value `file:///path` names a file.' },
  // As the Secrets Manager Agent reads it: whatever follows the prefix is the id, so `/v1` serves
  // `GET /v1/prod/db` as the secret `/prod/db`, and `/v1/` as `prod/db`.
  { key: 'path_prefix', type: { kind: 'string', pattern: /^\/[A-Za-z0-9_\-/]*$/, describe: 'a path starting with /' }, default: '/v1/', doc: 'Prefix of the `GET <prefix><secretId>` route; the rest of the path is the id.' },
  { key: 'max_conn', type: int(1, 10000), default: 800, doc: 'Inbound connections held open at once; more are answered 429 (`/ping` and `/ready` excepted).' },

  { key: 'cache_enabled', type: bool, default: true, env: ['PARAMETERS_SECRETS_EXTENSION_CACHE_ENABLED'], doc: 'false: every read goes upstream (still coalesced).' },
  { key: 'cache_size', type: int(0, 100000), default: 1000, env: ['PARAMETERS_SECRETS_EXTENSION_CACHE_SIZE'], doc: 'Most entries cached; 0 turns caching off.' },
  { key: 'cache_max_bytes', type: int(0, 4096 * MiB), default: 64 * MiB, doc: 'Most bytes of cached responses; a larger single value is served but not cached.' },
  { key: 'ttl_seconds', type: int(0, 7 * DAY), default: null, doc: 'Sets both secrets_ttl_seconds and parameters_ttl_seconds (Secrets Manager Agent key).' },
  { key: 'secrets_ttl_seconds', type: int(0, 7 * DAY), default: 300, env: ['SECRETS_MANAGER_TTL'], alsoFrom: ['ttl_seconds'], doc: 'Life of a cached secret; 0 turns caching off for secrets.' },
  { key: 'parameters_ttl_seconds', type: int(0, 7 * DAY), default: 300, env: ['SSM_PARAMETER_STORE_TTL'], alsoFrom: ['ttl_seconds'], doc: 'Life of a cached parameter; 0 turns caching off for parameters.' },
  { key: 'max_stale_seconds', type: int(0, 30 * DAY), default: DAY, doc: 'How long a value may be served stale while refreshes fail transiently.' },
  { key: 'ignore_transient_errors', type: bool, default: true, doc: 'Serve the last good value while upstream fails transiently; false answers the error instead.' },
  { key: 'negative_ttl_seconds', type: int(0, HOUR), default: 0, doc: 'Remember "not found" this long; 0 (default) does not.' },
  { key: 'refresh_jitter_min_percent', type: int(1, 99), default: 75, doc: 'Earliest point of a TTL at which a read entry is refreshed ahead.' },
  { key: 'refresh_jitter_max_percent', type: int(1, 99), default: 90, doc: 'Latest point of a TTL at which a read entry is refreshed ahead.' },

  { key: 'region', type: str, default: null, doc: 'AWS region; default from the SDK chain (AWS_REGION, profile).' },
  { key: 'profile', type: str, default: null, flag: 'profile', doc: 'AWS profile for the aws provider (as AWS_PROFILE).' },
  { key: 'validate_credentials', type: bool, default: true, negativeFlag: 'no-validate-credentials', doc: 'Check credentials with STS GetCallerIdentity before turning ready.' },
  { key: 'secrets_manager_timeout_millis', type: int(0, 10 * 60 * 1000), default: 5000, env: ['SECRETS_MANAGER_TIMEOUT_MILLIS'], doc: 'Timeout of a Secrets Manager call; 0 means none.' },
  { key: 'ssm_parameter_store_timeout_millis', type: int(0, 10 * 60 * 1000), default: 5000, env: ['SSM_PARAMETER_STORE_TIMEOUT_MILLIS'], doc: 'Timeout of a Parameter Store call; 0 means none.' },
  { key: 'kms_timeout_millis', type: int(0, 10 * 60 * 1000), default: 5000, doc: 'Timeout of a KMS call; 0 means none.' },
  { key: 'upstream_max_connections', type: int(1, 1000), default: 3, env: ['PARAMETERS_SECRETS_EXTENSION_MAX_CONNECTIONS'], doc: 'Connection pool size per AWS service.' },

  { key: 'prefetch.secrets', type: list, default: [], doc: 'Secrets loaded at start.' },
  { key: 'prefetch.parameters', type: list, default: [], doc: 'Parameters loaded at start (decrypted).' },
  { key: 'prefetch.parameter_paths', type: list, default: [], doc: 'Parameter paths loaded (recursively, decrypted) at start.' },
  { key: 'prefetch_timeout_seconds', type: int(0, HOUR), default: 30, doc: 'Longest that prefetch (its transient failures, its loads under way) holds readiness; 0: readiness does not wait for it.' },

  { key: 'allow.secrets', type: list, default: ['*'], emptyIsValue: true, doc: 'Glob patterns of secrets that may be read.' },
  { key: 'allow.parameters', type: list, default: ['*'], emptyIsValue: true, doc: 'Glob patterns of parameters that may be read.' },
  { key: 'allow.kms_keys', type: list, default: ['*'], emptyIsValue: true, doc: 'Glob patterns of KMS key ids, ARNs or aliases that may be used.' },

  { key: 'kms.default_key_id', type: str, default: null, doc: 'Key for /envelope/encrypt when the request names none.' },
  { key: 'kms.data_key_caching', type: bool, default: true, doc: 'Reuse envelope data keys within the limits below.' },
  { key: 'kms.data_key_max_age_seconds', type: int(1, DAY), default: 300, doc: 'Longest a data key is reused.' },
  { key: 'kms.data_key_max_messages', type: int(1, 2 ** 32), default: 10000, doc: 'Most messages encrypted under one data key.' },
  { key: 'kms.data_key_max_bytes', type: int(1, Number.MAX_SAFE_INTEGER), default: 1024 * MiB, doc: 'Most plaintext bytes encrypted under one data key.' },
  { key: 'envelope_max_body_bytes', type: int(1024, 256 * MiB), default: MiB, doc: 'Body limit of /envelope/* requests.' },

  { key: 'metrics_listen', type: { kind: 'string', pattern: /^(\[[0-9a-fA-F:]+\]|[^:\s]+):(6553[0-5]|655[0-2]\d|65[0-4]\d\d|6[0-4]\d{3}|[1-5]\d{4}|[1-9]\d{0,3}|0)$/, describe: 'HOST:PORT, the port a whole number from 0 to 65535' }, default: null, flag: 'metrics-listen', doc: 'HOST:PORT of the Prometheus listener; off when unset.' },
  { key: 'shutdown_timeout_seconds', type: int(0, 600), default: 10, doc: 'Longest in-flight requests may run after SIGTERM.' }
]

export const SETTINGS_BY_KEY: ReadonlyMap<string, SettingSpec> = new Map(SETTINGS.map((s) => [s.key, s]))

/** `prefetch.secrets` → `SECRETS_AGENT_PREFETCH_SECRETS`. */
export function envName (key: string): string {
  return 'SECRETS_AGENT_' + key.replace(/\./g, '_').toUpperCase()
}

/** The resolved configuration, typed. Built by load.ts from the table above. */
export interface AgentConfig {
  provider: 'local' | 'aws'
  host: string
  httpPort: number
  allowRemote: boolean
  logLevel: LogLevel
  logToFile: boolean
  credentialsFilePath: string | null
  store: string | null
  tokenFile: string | null
  generateToken: boolean
  tokenFileMode: number
  ssrfHeaders: string[]
  ssrfEnvVariables: string[]
  pathPrefix: string
  maxConn: number
  cacheEnabled: boolean
  cacheSize: number
  cacheMaxBytes: number
  secretsTtlSeconds: number
  parametersTtlSeconds: number
  maxStaleSeconds: number
  ignoreTransientErrors: boolean
  negativeTtlSeconds: number
  refreshJitterMinPercent: number
  refreshJitterMaxPercent: number
  region: string | null
  profile: string | null
  validateCredentials: boolean
  secretsManagerTimeoutMillis: number
  ssmParameterStoreTimeoutMillis: number
  kmsTimeoutMillis: number
  upstreamMaxConnections: number
  prefetch: { secrets: string[], parameters: string[], parameterPaths: string[] }
  prefetchTimeoutSeconds: number
  allow: { secrets: string[], parameters: string[], kmsKeys: string[] }
  kms: {
    defaultKeyId: string | null
    dataKeyCaching: boolean
    dataKeyMaxAgeSeconds: number
    dataKeyMaxMessages: number
    dataKeyMaxBytes: number
  }
  envelopeMaxBodyBytes: number
  metricsListen: string | null
  shutdownTimeoutSeconds: number
}
