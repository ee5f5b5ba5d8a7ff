import type { Logger } from 'pino'
import type { Credentials } from './clients.js'

export interface AwsProviderOptions {
  /** The agent's region; null lets the SDK find it (AWS_REGION, AWS_DEFAULT_REGION, the profile). */
  region: string | null
  /** Profile for credentials and settings, as AWS_PROFILE would name it. */
  profile: string | null
  /** Shared credentials file to read instead of ~/.aws/credentials (SMA's `credentials_file_path`). */
  credentialsFilePath: string | null
  /** Whole-call deadlines per service, retries included; 0 means none. STS uses Secrets Manager's. */
  secretsManagerTimeoutMillis: number
  ssmParameterStoreTimeoutMillis: number
  kmsTimeoutMillis: number
  /** Sockets per service and region (PARAMETERS_SECRETS_EXTENSION_MAX_CONNECTIONS). */
  maxConnections: number
  /** Check credentials with STS GetCallerIdentity before `/ready` turns 200. */
  validateCredentials: boolean
  /** `secrets-agent/<version>`, appended to the SDK's user agent. */
  userAgentSuffix: string
  logger: Logger
  /**
   * Where the agent reads `AWS_CA_BUNDLE`; default `process.env`. The SDK itself (credentials,
   * region, `AWS_ENDPOINT_URL*`, `AWS_MAX_ATTEMPTS`) and the proxy settings are read from
   * `process.env`, as the SDK and proxy-from-env always do.
   */
  env?: NodeJS.ProcessEnv
  /** Credentials to use instead of the SDK's default chain (tests, embedding). */
  credentials?: Credentials
  /** One endpoint for all four services, instead of the SDK's `AWS_ENDPOINT_URL*` (tests). */
  endpoint?: string
  /** Attempts per call, the first included; default the SDK's (3, or AWS_MAX_ATTEMPTS). */
  maxAttempts?: number
  /** The SDK's retry mode; default the SDK's (`standard`, or AWS_RETRY_MODE). */
  retryMode?: 'standard' | 'adaptive'
  /** First and longest pause between readiness checks after transient failures (default 1 s, 30 s). */
  readinessBackoffMs?: readonly [number, number]
  /** How long a proxy may take to open a tunnel before it is given up (default 10 s; tests). */
  proxyTunnelTimeoutMs?: number
}
