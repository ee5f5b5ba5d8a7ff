import { mkdir } from 'node:fs/promises'
import { setTimeout as wait } from 'node:timers/promises'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { backoffMs } from './backoff.js'
import { SecretCache } from './cache/secret-cache.js'
import { ConfigError, unbracketed, type AgentConfig } from './config/index.js'
import { pathExists, writeFileAtomic } from './providers/local/atomic.js'
import { defaultStoreText } from './providers/local/default-store.js'
import type { Envelope } from './envelope/envelope.js'
import type { Provider } from './providers/types.js'
import { Metrics, instrumentProvider, startMetricsServer, type MetricsServer } from './metrics.js'
import { AllowList } from './server/allow.js'
import { buildApp } from './server/app.js'
import { prefetch } from './server/prefetch.js'
import { Reads } from './server/reads.js'
import type { Readiness, ReadinessState } from './server/routes/health.js'
import { holdTickShape } from './tick-shape.js'
import type { Token } from './token.js'
import { VERSION } from './version.js'

export interface AgentOptions {
  config: AgentConfig
  token: Token
  logger: Logger
  env?: NodeJS.ProcessEnv
  /** Create the store with example content when it does not exist (dev). */
  createStore?: boolean
  /** Shared with the caller (tests scrape it); made here when omitted. */
  metrics?: Metrics
}

export interface RunningAgent {
  app: FastifyInstance
  provider: Provider
  cache: SecretCache
  metrics: Metrics
  readiness: AgentReadiness
  /** The metrics listener's address, when one was asked for. */
  metricsUrl: string | null
  /** The bound address, `http://host:port`. */
  url: string
  port: number
  storeFile: string | null
  /** Stops accepting, lets in-flight requests finish, releases everything. */
  close (): Promise<void>
}

/** True for addresses only this machine can reach. */
export function isLoopback (host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127(\.\d{1,3}){3}$/.test(host)
}

export function defaultStorePath (env: NodeJS.ProcessEnv): string {
  const base = env.XDG_CONFIG_HOME !== undefined && env.XDG_CONFIG_HOME !== '' ? env.XDG_CONFIG_HOME : join(env.HOME ?? homedir(), '.config')
  return join(base, 'secrets-agent', 'store.yaml')
}

/** Pauses between readiness checks that failed for a reason of setup (no or expired credentials, no region). */
const READY_RETRY_MS: readonly [number, number] = [1000, 60_000]

/**
 * Waits until the provider says it can answer (checkReady; it retries network blips itself).
 * A failure for a reason of setup shows on /ready at once, and is checked again, less and less
 * often, until fixed: credentials that appear or are renewed after the start (an `aws sso
 * login`, a credentials endpoint up late) make the agent ready without a restart. False when the
 * agent stops first.
 */
async function providerReady (provider: Provider, readiness: AgentReadiness, logger: Logger, signal: AbortSignal): Promise<boolean> {
  let shown: string | undefined
  for (let attempt = 0; !signal.aborted; attempt += 1) {
    try {
      await provider.checkReady({ signal })
      if (shown !== undefined) logger.info('provider ready')
      return !signal.aborted
    } catch (error) {
      if (signal.aborted) return false
      const reason = error instanceof Error ? error.message : 'unknown error'
      const retryInMs = backoffMs(attempt, ...READY_RETRY_MS)
      readiness.set({ ready: false, reason: 'The provider is not ready: ' + reason })
      // Said once per reason, not at every check.
      if (reason !== shown) logger.error({ err: { message: reason }, retryInMs }, 'provider not ready; checking again')
      shown = reason
      // timers/promises: the abort listener goes with the timer, so retries do not pile them up.
      await wait(retryInMs, undefined, { signal, ref: false }).catch(() => {})
    }
  }
  return false
}

export function resolveRegion (config: AgentConfig, env: NodeJS.ProcessEnv): string | null {
  return config.region ?? nonEmpty(env.AWS_REGION) ?? nonEmpty(env.AWS_DEFAULT_REGION) ?? null
}

/** The region in the local provider's ARNs: the configured one, else us-east-1. */
export function localRegion (config: AgentConfig, env: NodeJS.ProcessEnv): string {
  return resolveRegion(config, env) ?? 'us-east-1'
}

/**
 * Tracks what `/ready` reports: not ready until the provider answers its readiness check (store
 * loaded, credentials resolved); the prefetch of DESIGN §3 adds its own condition.
 */
export class AgentReadiness implements Readiness {
  #state: ReadinessState = { ready: false, reason: 'The agent is starting.' }
  #closing = false
  state (): ReadinessState { return this.#closing ? { ready: false, reason: 'The agent is shutting down.' } : this.#state }
  set (state: ReadinessState): void { this.#state = state }
  closing (): void { this.#closing = true }
}

export async function startAgent (options: AgentOptions): Promise<RunningAgent> {
  holdTickShape()
  const { config, logger, token } = options
  const env = options.env ?? process.env
  if (!isLoopback(config.host)) {
    if (!config.allowRemote) {
      throw new ConfigError(`refusing to listen on ${config.host}: it is not a loopback address, so other machines could ask for secrets. Pass --allow-remote (SECRETS_AGENT_ALLOW_REMOTE=true) if that is really wanted`)
    }
    logger.warn({ host: config.host }, 'listening on a non-loopback address (--allow-remote): anything that can reach it and holds the token can read secrets')
  }

  const metrics = options.metrics ?? new Metrics(VERSION)
  const opened = await openProvider(options, env)
  const storeFile = opened.storeFile
  const provider = instrumentProvider(opened.provider, metrics)
  const cache = new SecretCache({
    onEvent: metrics.onCacheEvent,
    maxEntries: config.cacheEnabled ? config.cacheSize : 0,
    maxBytes: config.cacheMaxBytes,
    maxStaleMs: config.maxStaleSeconds * 1000,
    staleIfError: config.ignoreTransientErrors,
    refreshWindow: [config.refreshJitterMinPercent / 100, config.refreshJitterMaxPercent / 100],
    negativeTtlMs: config.negativeTtlSeconds * 1000
  })
  metrics.watchCache(cache)
  // An edit of the local store makes every cached answer suspect: drop them all at once.
  const unsubscribe = provider.onChange(() => { cache.clear() })

  const readiness = new AgentReadiness()
  const allow = new AllowList(config.allow)
  // The Encryption SDK loads on the first /envelope request: it is a quarter of a second of start-up.
  const envelope = async (): Promise<Envelope> => {
    const { Envelope, envelopeSettings } = await import('./envelope/index.js')
    return new Envelope({ provider, ...envelopeSettings(config.kms), timeoutMs: config.kmsTimeoutMillis, allowKey: (id) => allow.kmsKey(id) })
  }
  const app = buildApp({
    provider,
    cache,
    token,
    logger,
    tokenHeaders: config.ssrfHeaders,
    pathPrefix: config.pathPrefix,
    secretsTtlMs: config.secretsTtlSeconds * 1000,
    parametersTtlMs: config.parametersTtlSeconds * 1000,
    readiness,
    metrics,
    maxConnections: config.maxConn,
    allow,
    envelope,
    envelopeMaxBodyBytes: config.envelopeMaxBodyBytes
  })
  token.watchFile()

  let url: string
  try {
    url = await app.listen({ host: unbracketed(config.host), port: config.httpPort })
  } catch (error) {
    await provider.close()
    token.close()
    throw error
  }
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : config.httpPort

  let metricsServer: MetricsServer | null = null
  if (config.metricsListen !== null) {
    try {
      metricsServer = await startMetricsServer(metrics, config.metricsListen)
    } catch (error) {
      await app.close()
      await provider.close()
      token.close()
      throw error
    }
    logger.info({ url: metricsServer.url }, 'metrics listening')
  }
  // Said once both listeners are up: a metrics address that cannot be bound stops the start.
  logger.info({ url, port, provider: provider.kind, version: VERSION, tokenSource: token.choice.source }, 'secrets-agent listening')

  // Ready once the provider can answer and the prefetch list has settled (DESIGN §3).
  const stopping = new AbortController()
  // The app's Reads and this one share the cache, so they filter get-by-path answers alike.
  const reads = new Reads(provider, cache, { secretsMs: config.secretsTtlSeconds * 1000, parametersMs: config.parametersTtlSeconds * 1000 }, allow)
  void (async () => {
    if (!await providerReady(provider, readiness, logger, stopping.signal)) return
    readiness.set({ ready: false, reason: 'Prefetching.' })
    const result = await prefetch(reads, config.prefetch, { timeoutMs: config.prefetchTimeoutSeconds * 1000, logger, signal: stopping.signal })
    if (result.loaded + result.failed + result.timedOut > 0) logger.info(result, 'prefetch settled')
    readiness.set({ ready: true })
  })()

  return {
    app,
    provider,
    cache,
    metrics,
    readiness,
    metricsUrl: metricsServer?.url ?? null,
    url,
    port,
    storeFile,
    async close () {
      readiness.closing()
      stopping.abort()
      unsubscribe()
      await Promise.all([app.close(), metricsServer?.close()])
      token.close()
      await provider.close()
    }
  }
}

async function openProvider (options: AgentOptions, env: NodeJS.ProcessEnv): Promise<{ provider: Provider, storeFile: string | null }> {
  const { config, logger } = options
  if (config.provider === 'aws') {
    // Loaded only when used: the AWS SDK is most of the agent's start-up time.
    const { createAwsProvider } = await import('./providers/aws/index.js')
    const provider = await createAwsProvider({
      region: config.region,
      profile: config.profile,
      credentialsFilePath: config.credentialsFilePath,
      secretsManagerTimeoutMillis: config.secretsManagerTimeoutMillis,
      ssmParameterStoreTimeoutMillis: config.ssmParameterStoreTimeoutMillis,
      kmsTimeoutMillis: config.kmsTimeoutMillis,
      maxConnections: config.upstreamMaxConnections,
      validateCredentials: config.validateCredentials,
      userAgentSuffix: `secrets-agent/${VERSION}`,
      logger,
      env
    })
    return { provider, storeFile: null }
  }
  const storeFile = config.store ?? defaultStorePath(env)
  if (!(await pathExists(storeFile))) {
    if (options.createStore !== true) throw new ConfigError(`the local store ${storeFile} does not exist (secrets-agent dev creates an example one)`)
    await mkdir(dirname(storeFile), { recursive: true, mode: 0o700 })
    await writeFileAtomic(storeFile, defaultStoreText(), 0o600)
    logger.info({ store: storeFile }, 'created an example local store')
  }
  const region = localRegion(config, env)
  // Loaded only when used, as the AWS provider is: the store's YAML parser has no place in an
  // agent on AWS.
  const { LocalProvider } = await import('./providers/local/provider.js')
  const provider = await LocalProvider.open({ storeFile, region, logger })
  return { provider, storeFile }
}


function nonEmpty (s: string | undefined): string | undefined {
  return s === undefined || s === '' ? undefined : s
}
