/**
 * The HTTP app with the KMS and envelope routes wired as `startAgent` wires them (allow-list,
 * envelope settings, envelope body limit), over the local provider in a temp dir or over the aws
 * provider against the fake AWS server (its own envelope keyring: the one users run). Log lines
 * are kept for assertions.
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { KMS } from '@aws-sdk/client-kms'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { SecretCache } from '../../src/cache/secret-cache.js'
import { Envelope, type EnvelopeOptions } from '../../src/envelope/index.js'
import { createLogger } from '../../src/logger.js'
import { instrumentProvider, type Metrics } from '../../src/metrics.js'
import { createAwsProvider } from '../../src/providers/aws/index.js'
import { LocalProvider } from '../../src/providers/local/provider.js'
import type { Provider } from '../../src/providers/types.js'
import { AllowList, type AllowRules } from '../../src/server/allow.js'
import { buildApp } from '../../src/server/app.js'
import { Token } from '../../src/token.js'
import { fakeAwsProviderOptions, TEST_CREDENTIALS } from './aws-app.js'
import { FakeAws } from './fake-aws.js'

export const REGION = 'us-east-1'

export interface KmsAppOptions {
  /** `[allow]` patterns; everything by default. */
  allow?: AllowRules
  /** Envelope settings; the settings table's defaults otherwise. */
  envelope?: Pick<EnvelopeOptions, 'defaultKeyId' | 'dataKeyCaching' | 'signed' | 'timeoutMs'>
  envelopeMaxBodyBytes?: number
  /** Count the provider's calls here, as the agent does (instrumentProvider). */
  metrics?: Metrics
  /** The aws provider's KMS timeout (ms); 5000 otherwise. */
  kmsTimeoutMillis?: number
}

export interface KmsApp {
  app: FastifyInstance
  provider: Provider
  envelope: Envelope
  auth: Record<string, string>
  /** Log lines written so far. */
  logs (): string[]
  /** POSTs `body` as JSON (or as given when a string), with the token. */
  post (url: string, body: unknown, headers?: Record<string, string>): Promise<LightMyRequestResponse>
  close (): Promise<void>
}

export interface LocalKmsApp extends KmsApp {
  local: LocalProvider
  dir: string
  /** The key file's keys as stored: id, material (base64), enabled. */
  keyFile (): Promise<{ keys: Array<{ id: string, material: string, enabled: boolean }>, aliases: Record<string, string> }>
}

export interface AwsKmsApp extends KmsApp {
  fake: FakeAws
  /** The aggregated KMS client against the fake: what a reader without the agent would use. */
  kms: KMS
}

function harness (bare: Provider, options: KmsAppOptions, onClose: () => Promise<void>): KmsApp {
  const provider = options.metrics === undefined ? bare : instrumentProvider(bare, options.metrics)
  const lines: string[] = []
  const logger = createLogger({ level: 'debug', destination: { write: (line: string) => { lines.push(line) } } })
  const allow = new AllowList(options.allow)
  const envelope = new Envelope({ provider, ...options.envelope, allowKey: (id) => allow.kmsKey(id) })
  const token = `test-token-${randomBytes(16).toString('hex')}`
  const auth = { 'X-Aws-Parameters-Secrets-Token': token }
  const app = buildApp({
    provider,
    cache: new SecretCache({ maxEntries: 1000, maxBytes: 64 * 1024 * 1024, maxStaleMs: 86_400_000, staleIfError: true }),
    token: new Token(token),
    logger,
    tokenHeaders: ['X-Aws-Parameters-Secrets-Token', 'X-Vault-Token'],
    secretsTtlMs: 300_000,
    parametersTtlMs: 300_000,
    allow,
    envelope,
    ...(options.envelopeMaxBodyBytes === undefined ? {} : { envelopeMaxBodyBytes: options.envelopeMaxBodyBytes })
  })
  return {
    app,
    provider,
    envelope,
    auth,
    logs: () => [...lines],
    post: async (url, body, headers = {}) => app.inject({
      method: 'POST',
      url,
      headers: { ...auth, 'content-type': 'application/json', ...headers },
      payload: typeof body === 'string' ? body : JSON.stringify(body)
    }),
    close: async () => {
      await app.close()
      await onClose()
    }
  }
}

export async function openLocalKmsApp (options: KmsAppOptions = {}): Promise<LocalKmsApp> {
  const dir = await mkdtemp(join(tmpdir(), 'secrets-agent-kms-'))
  const storeFile = join(dir, 'store.yaml')
  await writeFile(storeFile, 'secrets: {}\n', { mode: 0o600 })
  const local = await LocalProvider.open({ storeFile, region: REGION, logger: createLogger({ level: 'none' }), watch: false })
  const base = harness(local, options, async () => {
    await local.close()
    await rm(dir, { recursive: true, force: true })
  })
  return {
    ...base,
    local,
    dir,
    keyFile: async () => JSON.parse(await readFile(local.kms.keyFile, 'utf8')) as Awaited<ReturnType<LocalKmsApp['keyFile']>>
  }
}

export async function openAwsKmsApp (options: KmsAppOptions = {}): Promise<AwsKmsApp> {
  const fake = await FakeAws.start({ region: REGION })
  const aws = await createAwsProvider(fakeAwsProviderOptions(fake, options.kmsTimeoutMillis === undefined ? {} : { kmsTimeoutMillis: options.kmsTimeoutMillis }))
  const kms = new KMS({ region: REGION, endpoint: fake.url, credentials: TEST_CREDENTIALS, maxAttempts: 1 })
  const base = harness(aws, options, async () => {
    kms.destroy()
    await aws.close()
    await fake.close()
  })
  return { ...base, fake, kms }
}

/** The parsed JSON body of an inject() answer. */
export function json (response: { body: string }): Record<string, unknown> {
  return JSON.parse(response.body) as Record<string, unknown>
}

export const b64 = (text: string | Uint8Array): string => Buffer.from(text).toString('base64')
