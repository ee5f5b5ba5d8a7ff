/**
 * The HTTP app over a local store in a temp dir, for integration tests: what `startAgent` wires
 * for the local provider (including "a store edit clears the cache"), minus `listen()`.
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import type { TestContext } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { SecretCache } from '../../src/cache/secret-cache.js'
import type { LogLevel } from '../../src/config/index.js'
import { createLogger } from '../../src/logger.js'
import type { Metrics } from '../../src/metrics.js'
import { LocalProvider } from '../../src/providers/local/provider.js'
import type { AllowList } from '../../src/server/allow.js'
import { buildApp } from '../../src/server/app.js'
import { Token } from '../../src/token.js'

export const REGION = 'us-east-1'
export const DEFAULT_TOKEN_HEADERS = ['X-Aws-Parameters-Secrets-Token', 'X-Vault-Token'] as const

/** Names and values of the default store, so tests can name what they expect. */
export const FIXTURE = {
  jsonSecret: {
    name: 'app/db/credentials',
    current: { id: '11111111-1111-4111-a111-111111111111', value: { username: 'app', password: 'current-pw-Q7x2', port: 5432, enabled: true } },
    previous: { id: '22222222-2222-4222-a222-222222222222', value: { username: 'app', password: 'previous-pw-K9m4' } },
    blue: { id: '33333333-3333-4333-a333-333333333333', stage: 'BLUE', value: { username: 'app', password: 'blue-pw-W3n8' } },
    createdDate: '2024-03-01T10:00:00.000Z'
  },
  binarySecret: { name: 'app/tls/certificate', bytes: Buffer.from([0, 1, 2, 250, 251, 252, 255, 104, 105]) },
  stringSecret: { name: 'app/api-key', value: 'plain-api-key-Zr8vN1' },
  stringParameter: {
    name: '/app/config/log-level',
    /** Version 1 carries label Old, version 3 the labels Dev and Prod. */
    versions: ['debug', 'info', 'warn']
  },
  stringListParameter: { name: '/app/config/hosts', value: 'a.example,b.example,c.example' },
  secureParameter: {
    name: '/app/config/db-password',
    /** Version 2 carries label Dev. */
    versions: ['secure-old-Hx5', 'secure-new-plaintext-Pq3']
  },
  tree: {
    root: '/tree',
    /** Every parameter under /tree, sorted. */
    all: ['/tree/a', '/tree/b/c', '/tree/b/d/e', '/tree/b/s', '/tree/z'],
    /** Direct children of /tree. */
    direct: ['/tree/a', '/tree/z'],
    /** The plaintext of the SecureString /tree/b/s. */
    secureValue: 'tree-secure-Vb6k'
  }
} as const

/** Every secret value of the default store: none may appear where it was not asked for. */
export const SECRET_VALUES: readonly string[] = [
  FIXTURE.jsonSecret.current.value.password,
  FIXTURE.jsonSecret.previous.value.password,
  FIXTURE.jsonSecret.blue.value.password,
  FIXTURE.binarySecret.bytes.toString('base64'),
  FIXTURE.stringSecret.value,
  ...FIXTURE.secureParameter.versions,
  FIXTURE.tree.secureValue
]

function yamlJson (value: unknown): string {
  return JSON.stringify(value)
}

export const DEFAULT_STORE = `# integration-test store
secrets:
  ${FIXTURE.jsonSecret.name}:
    versions:
      - id: ${FIXTURE.jsonSecret.current.id}
        stages: [AWSCURRENT]
        created: ${FIXTURE.jsonSecret.createdDate}
        json: ${yamlJson(FIXTURE.jsonSecret.current.value)}
      - id: ${FIXTURE.jsonSecret.previous.id}
        stages: [AWSPREVIOUS]
        json: ${yamlJson(FIXTURE.jsonSecret.previous.value)}
      - id: ${FIXTURE.jsonSecret.blue.id}
        stages: [${FIXTURE.jsonSecret.blue.stage}]
        json: ${yamlJson(FIXTURE.jsonSecret.blue.value)}
  ${FIXTURE.binarySecret.name}:
    binary: ${FIXTURE.binarySecret.bytes.toString('base64')}
  ${FIXTURE.stringSecret.name}: "${FIXTURE.stringSecret.value}"
parameters:
  ${FIXTURE.stringParameter.name}:
    versions:
      - value: ${FIXTURE.stringParameter.versions[0]}
        labels: [Old]
      - value: ${FIXTURE.stringParameter.versions[1]}
      - value: ${FIXTURE.stringParameter.versions[2]}
        labels: [Dev, Prod]
  ${FIXTURE.stringListParameter.name}:
    type: StringList
    value: "${FIXTURE.stringListParameter.value}"
  ${FIXTURE.secureParameter.name}:
    type: SecureString
    versions:
      - value: ${FIXTURE.secureParameter.versions[0]}
      - value: ${FIXTURE.secureParameter.versions[1]}
        labels: [Dev]
  /tree/z: zed
  /tree/a: ay
  /tree/b/c: cee
  /tree/b/d/e: ee
  /tree/b/s:
    type: SecureString
    value: ${FIXTURE.tree.secureValue}
  /treehouse/x: not-under-tree
`

export interface LocalAppOptions {
  /** YAML text of the store; the default fixture when omitted. */
  storeText?: string
  secretsTtlSeconds?: number
  parametersTtlSeconds?: number
  tokenHeaders?: readonly string[]
  debounceMs?: number
  logLevel?: LogLevel
  /** Watch the store for edits (default true). */
  watch?: boolean
  /** The store's file name in the temp dir (default `store.yaml`; `.json` parses as JSON). */
  storeFileName?: string
  /** The cache's clock (ms); tests that step time pass a fake one. */
  now?: () => number
  /** The token the app checks; by default one made from the generated `token` string. */
  token?: Token
  /** The `token` string itself instead of a generated one (two apps sharing one token). */
  tokenString?: string
  /** `AppOptions.fastPath`; the app's default when omitted. */
  fastPath?: boolean
  /** Request counts and latencies go here, and the cache's events (as `startAgent` wires them). */
  metrics?: Metrics
  /** The `[allow]` patterns; everything is allowed when omitted. */
  allow?: AllowList
  /** `AppOptions.maxConnections`; the app's default when omitted. */
  maxConnections?: number
  /** `AppOptions.pathPrefix`; `/v1/` when omitted. */
  pathPrefix?: string
}

export interface LocalApp {
  app: FastifyInstance
  provider: LocalProvider
  cache: SecretCache
  dir: string
  storeFile: string
  /**
   * The generated token, and headers carrying it in the first default header. When the
   * `token` option is given, the app checks that one instead.
   */
  token: string
  auth: Record<string, string>
  /** Log lines written so far. */
  logs (): string[]
  /** How many times the provider's data changed (reloads that succeeded). */
  changes (): number
  /** Resolves after the next change event; rejects after `timeoutMs`. */
  nextChange (timeoutMs?: number): Promise<void>
  /** Replaces the store as editors do: temp file in the same dir, then rename over it. */
  replaceStore (text: string): Promise<void>
  /** Counts calls to `provider.getSecret` (batch-get goes through it too) from now on. */
  countSecretCalls (): { readonly count: number }
  close (): Promise<void>
}

export async function openLocalApp (options: LocalAppOptions = {}): Promise<LocalApp> {
  const dir = await mkdtemp(join(tmpdir(), 'secrets-agent-it-'))
  const storeFile = join(dir, options.storeFileName ?? 'store.yaml')
  const lines: string[] = []
  const logger = createLogger({ level: options.logLevel ?? 'debug', destination: { write: (line: string) => { lines.push(line) } } })
  let provider: LocalProvider
  try {
    await writeFile(storeFile, options.storeText ?? DEFAULT_STORE, { mode: 0o600 })
    provider = await LocalProvider.open({ storeFile, region: REGION, logger, watch: options.watch ?? true, debounceMs: options.debounceMs ?? 10 })
  } catch (error) {
    await rm(dir, { recursive: true, force: true })
    throw error
  }
  const cache = new SecretCache({
    maxEntries: 1000,
    maxBytes: 64 * 1024 * 1024,
    maxStaleMs: 86_400_000,
    staleIfError: true,
    ...(options.now === undefined ? {} : { now: options.now }),
    ...(options.metrics === undefined ? {} : { onEvent: options.metrics.onCacheEvent })
  })
  if (options.metrics !== undefined) options.metrics.watchCache(cache, options.now)
  let changes = 0
  const waiters = new Set<() => void>()
  // As startAgent does: a store edit makes every cached answer suspect.
  const unsubscribe = provider.onChange(() => {
    cache.clear()
    changes += 1
    for (const wake of waiters) wake()
    waiters.clear()
  })
  const token = options.tokenString ?? `test-token-${randomBytes(16).toString('hex')}`
  const app = buildApp({
    provider,
    cache,
    token: options.token ?? new Token(token),
    logger,
    tokenHeaders: options.tokenHeaders ?? DEFAULT_TOKEN_HEADERS,
    secretsTtlMs: (options.secretsTtlSeconds ?? 300) * 1000,
    parametersTtlMs: (options.parametersTtlSeconds ?? 300) * 1000,
    ...(options.fastPath === undefined ? {} : { fastPath: options.fastPath }),
    ...(options.metrics === undefined ? {} : { metrics: options.metrics }),
    ...(options.allow === undefined ? {} : { allow: options.allow }),
    ...(options.maxConnections === undefined ? {} : { maxConnections: options.maxConnections }),
    ...(options.pathPrefix === undefined ? {} : { pathPrefix: options.pathPrefix })
  })
  let temp = 0

  return {
    app,
    provider,
    cache,
    dir,
    storeFile,
    token,
    auth: { 'X-Aws-Parameters-Secrets-Token': token },
    logs: () => [...lines],
    changes: () => changes,
    nextChange: async (timeoutMs = 2000) => new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { waiters.delete(wake); reject(new Error(`no store change event within ${timeoutMs} ms`)) }, timeoutMs)
      const wake = (): void => { clearTimeout(timer); resolve() }
      waiters.add(wake)
    }),
    replaceStore: async (text: string) => {
      temp += 1
      const path = join(dir, `.${basename(storeFile)}.${temp}.tmp`)
      await writeFile(path, text, { mode: 0o600 })
      await rename(path, storeFile)
    },
    countSecretCalls: () => {
      const original = provider.getSecret.bind(provider)
      const counter = { count: 0 }
      provider.getSecret = async (...args) => {
        counter.count += 1
        return original(...args)
      }
      return counter
    },
    close: async () => {
      unsubscribe()
      await app.close()
      await provider.close()
      await rm(dir, { recursive: true, force: true })
    }
  }
}

/** The parsed JSON body of an inject() answer. */
export function json (response: { body: string }): Record<string, unknown> {
  return JSON.parse(response.body) as Record<string, unknown>
}

/** Polls `check` until it returns true, every `everyMs`, for at most `timeoutMs`. */
/** A clock that moves only when told: for Age headers and the refreshNow rate limit. */
export function fakeClock (start = 1_000_000): { now: () => number, advance: (ms: number) => void } {
  let t = start
  return { now: () => t, advance: (ms: number) => { t += ms } }
}

export async function until (check: () => boolean | Promise<boolean>, timeoutMs = 3000, everyMs = 20): Promise<void> {
  const end = Date.now() + timeoutMs
  for (;;) {
    if (await check()) return
    if (Date.now() > end) throw new Error(`condition not met within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
}

/** The Lambda extension's captured answers (a copy of shared/fixtures/lambda-extension-responses.json). */
export async function lambdaExtensionResponses (): Promise<Record<string, Record<string, unknown>>> {
  const text = await readFile(new URL('./lambda-extension-responses.json', import.meta.url), 'utf8')
  return (JSON.parse(text) as { responses: Record<string, Record<string, unknown>> }).responses
}

/** Each key's JSON type (`null` and `array` told apart): what clients that index keys rely on. */
export function shapeOf (value: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(Object.entries(value).map(([key, v]) => [key, v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v]))
}

/** `openLocalApp`, closed when the test `t` ends. */
export async function openForTest (t: TestContext, options: LocalAppOptions = {}): Promise<LocalApp> {
  const h = await openLocalApp(options)
  t.after(() => h.close())
  return h
}

/** A GET carrying the valid token. */
export async function getWithToken (h: LocalApp, url: string): Promise<Awaited<ReturnType<LocalApp['app']['inject']>>> {
  return h.app.inject({ method: 'GET', url, headers: h.auth })
}
