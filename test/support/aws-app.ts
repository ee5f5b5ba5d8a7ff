/**
 * The aws provider pointed at the fake AWS endpoint, alone or behind the HTTP app: what
 * `startAgent` wires for `--provider aws`, minus `listen()`, with a clock the test moves.
 */
import { randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { SecretCache, type SecretCacheOptions } from '../../src/cache/secret-cache.js'
import { createLogger } from '../../src/logger.js'
import { instrumentProvider, type Metrics } from '../../src/metrics.js'
import { AwsProvider, type AwsProviderOptions } from '../../src/providers/aws/index.js'
import type { AllowList } from '../../src/server/allow.js'
import { buildApp } from '../../src/server/app.js'
import { Token } from '../../src/token.js'
import { FakeAws, type FakeAwsOptions } from './fake-aws.js'

export const TEST_CREDENTIALS = { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' }
export const TEST_VERSION_SUFFIX = 'secrets-agent/0.0.0-test'

/**
 * Provider options for the fake: static credentials, its endpoint for every service, one attempt
 * per call so that an injected fault is seen as it is, and short readiness backoff.
 */
export function fakeAwsProviderOptions (fake: FakeAws, overrides: Partial<AwsProviderOptions> = {}): AwsProviderOptions {
  return {
    region: fake.region,
    profile: null,
    credentialsFilePath: null,
    secretsManagerTimeoutMillis: 5000,
    ssmParameterStoreTimeoutMillis: 5000,
    kmsTimeoutMillis: 5000,
    maxConnections: 3,
    validateCredentials: true,
    userAgentSuffix: TEST_VERSION_SUFFIX,
    logger: createLogger({ level: 'none' }),
    env: {},
    credentials: TEST_CREDENTIALS,
    endpoint: fake.url,
    maxAttempts: 1,
    readinessBackoffMs: [20, 100],
    ...overrides
  }
}

/** A clock for the cache that only moves when the test says so. */
export class ManualClock {
  // lru-cache reads a start time of 0 as "no TTL": begin well away from it.
  #now = 1_000_000
  readonly now = (): number => this.#now
  advance (ms: number): void { this.#now += ms }
}

export interface AwsAppOptions {
  fake?: FakeAwsOptions
  provider?: Partial<AwsProviderOptions>
  secretsTtlSeconds?: number
  parametersTtlSeconds?: number
  /** Overrides of the cache's options (bounds, max stale, backoff, clock). */
  cache?: Partial<SecretCacheOptions>
  /** Count the provider's calls here, as the agent does (instrumentProvider). */
  metrics?: Metrics
  allow?: AllowList
}

export interface AwsApp {
  app: FastifyInstance
  fake: FakeAws
  provider: AwsProvider
  cache: SecretCache
  clock: ManualClock
  /** Headers carrying the valid token. */
  auth: Record<string, string>
  /** Log lines written so far. */
  logs (): string[]
  close (): Promise<void>
}

export async function openAwsApp (options: AwsAppOptions = {}): Promise<AwsApp> {
  const fake = await FakeAws.start(options.fake)
  const lines: string[] = []
  const logger = createLogger({ level: 'debug', destination: { write: (line: string) => { lines.push(line) } } })
  const provider = new AwsProvider(fakeAwsProviderOptions(fake, { logger, ...options.provider }))
  const clock = new ManualClock()
  const cache = new SecretCache({
    maxEntries: 1000,
    maxBytes: 64 * 1024 * 1024,
    maxStaleMs: 86_400_000,
    staleIfError: true,
    now: clock.now,
    random: () => 0.5,
    ...options.cache
  })
  const token = `test-token-${randomBytes(16).toString('hex')}`
  const app = buildApp({
    provider: options.metrics === undefined ? provider : instrumentProvider(provider, options.metrics),
    cache,
    token: new Token(token),
    logger,
    tokenHeaders: ['X-Aws-Parameters-Secrets-Token', 'X-Vault-Token'],
    secretsTtlMs: (options.secretsTtlSeconds ?? 300) * 1000,
    parametersTtlMs: (options.parametersTtlSeconds ?? 300) * 1000,
    ...(options.allow === undefined ? {} : { allow: options.allow })
  })
  return {
    app,
    fake,
    provider,
    cache,
    clock,
    auth: { 'X-Aws-Parameters-Secrets-Token': token },
    logs: () => [...lines],
    close: async () => {
      await app.close()
      await provider.close()
      await fake.close()
    }
  }
}
