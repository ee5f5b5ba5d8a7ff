import { defaultProvider } from '@aws-sdk/credential-provider-node'
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager'
import type { STSClient } from '@aws-sdk/client-sts'
import type { KeyringNode } from '@aws-crypto/client-node'
import type {
  BatchGetSecretsResult, CallOptions, DecryptInput, DecryptResult, EncryptInput, EncryptResult, EnvelopeKeyringOptions,
  GenerateDataKeyInput, GenerateDataKeyResult, GetParameterInput, GetParametersByPathInput,
  GetSecretInput, Parameter, Provider, SecretValue
} from '../types.js'
import { secretsManagerClients, stsClients, type ClientSettings, type Credentials, type RegionalClients } from './clients.js'
import { eitherSignal } from '../../abort.js'
import { CancelledError } from '../errors.js'
import { checkCredentials } from './credentials-check.js'
import { credentialsUnavailable, toProviderError } from './errors.js'
import { readCaBundle } from './http-handler.js'
import { sdkLogger } from './sdk-logger.js'
import type { KmsOperations } from './kms.js'
import type { AwsProviderOptions } from './options.js'
import { SecretsManagerReader } from './secrets-manager.js'
import type { ParameterStoreReader } from './ssm.js'

/** What a part loaded on first use holds: the part, and the clients to destroy on close. */
interface Loaded<T> {
  part: T
  clients: { destroy (): void }
}

/**
 * A part of the provider whose module is imported when it is first used, once (again after a
 * failed import). Parameter Store and KMS are: their SDK packages are most of the SDK code the
 * agent would otherwise load and keep at start (SSM alone is ~450 KB of bundled source and
 * ~2 MB of heap), and many agents only ever read secrets.
 */
export class OnFirstUse<T> {
  readonly #load: () => Promise<Loaded<T>>
  readonly #closed: () => Error
  #loading: Promise<Loaded<T>> | undefined
  #destroyed = false

  /** `closed` is what a call gets once the part is destroyed, also one that was waiting for it. */
  constructor (load: () => Promise<Loaded<T>>, closed: () => Error) {
    this.#load = load
    this.#closed = closed
  }

  async get (): Promise<T> {
    if (this.#destroyed) throw this.#closed()
    this.#loading ??= this.#load().catch((error: unknown) => {
      this.#loading = undefined
      throw error
    })
    const { part } = await this.#loading
    // Destroyed while loading: its clients are gone, and clients made now would outlive close().
    if (this.#destroyed) throw this.#closed()
    return part
  }

  /** Destroys the part's clients, when it was loaded; calls from now on get the `closed` error. */
  async destroy (): Promise<void> {
    this.#destroyed = true
    const loaded = await this.#loading?.catch(() => undefined)
    loaded?.clients.destroy()
  }
}

/**
 * A credentials provider whose failures are never taken for an answer about the value asked for
 * (the SDK throws them from the call that needed credentials): an STS refusal while assuming a
 * role or a web identity (IDPCommunicationError, InvalidIdentityToken, AccessDenied), which would
 * read as final, is `CredentialsUnavailableException`. What is transient already (throttling, a
 * timeout, a network failure, expired credentials) keeps its own code and status.
 */
function failingAsUnavailable (credentials: Credentials): Credentials {
  if (typeof credentials !== 'function') return credentials
  return async (...args: Parameters<typeof credentials>) => {
    try {
      return await credentials(...args)
    } catch (error) {
      const failure = toProviderError(error, 'sts')
      throw failure.transient ? failure : credentialsUnavailable(error)
    }
  }
}

/**
 * Answers from AWS through the SDK v3. It keeps no cache and no state beyond its clients (one per
 * service and region, each with its own socket pool) and the readiness check.
 */
export class AwsProvider implements Provider {
  readonly kind = 'aws'
  readonly #options: AwsProviderOptions
  readonly #secretsManager: RegionalClients<SecretsManagerClient>
  readonly #sts: RegionalClients<STSClient>
  readonly #secrets: SecretsManagerReader
  readonly #parameters: OnFirstUse<ParameterStoreReader>
  readonly #kmsOperations: OnFirstUse<KmsOperations>
  readonly #closing = new AbortController()

  constructor (options: AwsProviderOptions) {
    this.#options = options
    const env = options.env ?? process.env
    const settings: ClientSettings = {
      region: options.region ?? undefined,
      profile: options.profile ?? undefined,
      // The SDK's own chain: environment, SSO and profiles, web identity (EKS IRSA), container
      // credentials (ECS, EKS Pod Identity), IMDS. Made once so every client shares its cache.
      credentials: failingAsUnavailable(options.credentials ?? defaultProvider({
        ...(options.profile === null ? {} : { profile: options.profile }),
        ...(options.credentialsFilePath === null ? {} : { filepath: options.credentialsFilePath }),
        logger: sdkLogger(options.logger)
      })),
      endpoint: options.endpoint,
      maxAttempts: options.maxAttempts,
      retryMode: options.retryMode,
      userAgent: options.userAgentSuffix,
      transport: {
        maxSockets: options.maxConnections,
        ca: readCaBundle(env),
        logger: options.logger,
        ...(options.proxyTunnelTimeoutMs === undefined ? {} : { tunnelTimeoutMs: options.proxyTunnelTimeoutMs })
      }
    }
    this.#secretsManager = secretsManagerClients(settings)
    this.#sts = stsClients(settings)
    this.#secrets = new SecretsManagerReader(this.#secretsManager, options.secretsManagerTimeoutMillis, options.logger)
    // A call racing close() ends as an aborted call does (call.ts).
    const closed = (service: string) => () => new CancelledError(`${service} call was cancelled before it answered: the agent is stopping.`)
    this.#parameters = new OnFirstUse(async () => {
      const { ParameterStoreReader, ssmClients } = await import('./ssm.js')
      const clients = ssmClients(settings)
      return { part: new ParameterStoreReader(clients, options.ssmParameterStoreTimeoutMillis), clients }
    }, closed('SSM Parameter Store'))
    this.#kmsOperations = new OnFirstUse(async () => {
      const { KmsOperations, kmsClients } = await import('./kms.js')
      const clients = kmsClients(settings)
      return { part: new KmsOperations(clients, options.kmsTimeoutMillis), clients }
    }, closed('KMS'))
  }

  async getSecret (input: GetSecretInput, options?: CallOptions): Promise<SecretValue> {
    return this.#secrets.getSecret(input, options)
  }

  async batchGetSecrets (secretIds: string[], options?: CallOptions): Promise<BatchGetSecretsResult> {
    return this.#secrets.batchGetSecrets(secretIds, options)
  }

  async getParameter (input: GetParameterInput, options?: CallOptions): Promise<Parameter> {
    return (await this.#parameters.get()).getParameter(input, options)
  }

  async getParametersByPath (input: GetParametersByPathInput, options?: CallOptions): Promise<Parameter[]> {
    return (await this.#parameters.get()).getParametersByPath(input, options)
  }

  async encrypt (input: EncryptInput, options?: CallOptions): Promise<EncryptResult> {
    return (await this.#kmsOperations.get()).encrypt(input, options)
  }

  async decrypt (input: DecryptInput, options?: CallOptions): Promise<DecryptResult> {
    return (await this.#kmsOperations.get()).decrypt(input, options)
  }

  async generateDataKey (input: GenerateDataKeyInput, options?: CallOptions): Promise<GenerateDataKeyResult> {
    return (await this.#kmsOperations.get()).generateDataKey(input, options)
  }

  /**
   * The Encryption SDK's KMS keyring for `keyId`, over this provider's KMS calls. Whether the key
   * exists or is enabled is only learnt when the keyring first calls KMS.
   */
  async envelopeKeyring (keyId: string, options?: EnvelopeKeyringOptions): Promise<KeyringNode> {
    // The Encryption SDK is loaded when first needed, not at start.
    const { kmsEnvelopeKeyring } = await import('./keyring.js')
    return kmsEnvelopeKeyring(options?.kms ?? await this.#kmsOperations.get(), keyId, options?.signal)
  }

  /**
   * Resolves once a region is known and (unless validate_credentials is off) STS accepts the
   * credentials; transient failures are retried until then, or until close().
   */
  async checkReady (options?: CallOptions): Promise<void> {
    const signal = eitherSignal(options?.signal, this.#closing.signal)
    await checkCredentials({
      clients: this.#sts,
      validateCredentials: this.#options.validateCredentials,
      timeoutMs: this.#options.secretsManagerTimeoutMillis,
      logger: this.#options.logger,
      ...(this.#options.readinessBackoffMs === undefined ? {} : { backoffMs: this.#options.readinessBackoffMs })
    }, signal)
  }

  /** AWS tells no one when a value changes: the cache's TTL is what notices. */
  onChange (_listener: () => void): () => void {
    return () => {}
  }

  async close (): Promise<void> {
    this.#closing.abort()
    for (const clients of [this.#secretsManager, this.#sts]) clients.destroy()
    await Promise.all([this.#parameters.destroy(), this.#kmsOperations.destroy()])
  }
}
