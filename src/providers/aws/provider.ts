import { defaultProvider } from '@aws-sdk/credential-provider-node'
import type { KMSClient } from '@aws-sdk/client-kms'
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager'
import type { SSMClient } from '@aws-sdk/client-ssm'
import type { STSClient } from '@aws-sdk/client-sts'
import type { KeyringNode } from '@aws-crypto/client-node'
import type {
  BatchGetSecretsResult, CallOptions, DecryptInput, DecryptResult, EncryptInput, EncryptResult,
  GenerateDataKeyInput, GenerateDataKeyResult, GetParameterInput, GetParametersByPathInput,
  GetSecretInput, Parameter, Provider, SecretValue
} from '../types.js'
import {
  makeKms, makeSecretsManager, makeSsm, makeSts, RegionalClients, type ClientSettings
} from './clients.js'
import { checkCredentials } from './credentials-check.js'
import { readCaBundle } from './http-handler.js'
import { sdkLogger } from './sdk-logger.js'
import { KmsOperations } from './kms.js'
import type { AwsProviderOptions } from './options.js'
import { SecretsManagerReader } from './secrets-manager.js'
import { ParameterStoreReader } from './ssm.js'

/**
 * Answers from AWS through the SDK v3. It keeps no cache and no state beyond its clients (one per
 * service and region, each with its own socket pool) and the readiness check.
 */
export class AwsProvider implements Provider {
  readonly kind = 'aws'
  readonly #options: AwsProviderOptions
  readonly #secretsManager: RegionalClients<SecretsManagerClient>
  readonly #ssm: RegionalClients<SSMClient>
  readonly #kms: RegionalClients<KMSClient>
  readonly #sts: RegionalClients<STSClient>
  readonly #secrets: SecretsManagerReader
  readonly #parameters: ParameterStoreReader
  readonly #kmsOperations: KmsOperations
  readonly #closing = new AbortController()

  constructor (options: AwsProviderOptions) {
    this.#options = options
    const env = options.env ?? process.env
    const region = options.region ?? undefined
    const settings: ClientSettings = {
      region,
      profile: options.profile ?? undefined,
      // The SDK's own chain: environment, SSO and profiles, web identity (EKS IRSA), container
      // credentials (ECS, EKS Pod Identity), IMDS. Made once so every client shares its cache.
      credentials: options.credentials ?? defaultProvider({
        ...(options.profile === null ? {} : { profile: options.profile }),
        ...(options.credentialsFilePath === null ? {} : { filepath: options.credentialsFilePath }),
        logger: sdkLogger(options.logger)
      }),
      endpoint: options.endpoint,
      maxAttempts: options.maxAttempts,
      retryMode: options.retryMode,
      userAgent: options.userAgentSuffix,
      transport: { maxSockets: options.maxConnections, ca: readCaBundle(env), logger: options.logger }
    }
    this.#secretsManager = new RegionalClients(makeSecretsManager(settings), region)
    this.#ssm = new RegionalClients(makeSsm(settings), region)
    this.#kms = new RegionalClients(makeKms(settings), region)
    this.#sts = new RegionalClients(makeSts(settings), region)
    this.#secrets = new SecretsManagerReader(this.#secretsManager, options.secretsManagerTimeoutMillis)
    this.#parameters = new ParameterStoreReader(this.#ssm, options.ssmParameterStoreTimeoutMillis)
    this.#kmsOperations = new KmsOperations(this.#kms, options.kmsTimeoutMillis)
  }

  async getSecret (input: GetSecretInput, options?: CallOptions): Promise<SecretValue> {
    return this.#secrets.getSecret(input, options)
  }

  async batchGetSecrets (secretIds: string[], options?: CallOptions): Promise<BatchGetSecretsResult> {
    return this.#secrets.batchGetSecrets(secretIds, options)
  }

  async getParameter (input: GetParameterInput, options?: CallOptions): Promise<Parameter> {
    return this.#parameters.getParameter(input, options)
  }

  async getParametersByPath (input: GetParametersByPathInput, options?: CallOptions): Promise<Parameter[]> {
    return this.#parameters.getParametersByPath(input, options)
  }

  async encrypt (input: EncryptInput, options?: CallOptions): Promise<EncryptResult> {
    return this.#kmsOperations.encrypt(input, options)
  }

  async decrypt (input: DecryptInput, options?: CallOptions): Promise<DecryptResult> {
    return this.#kmsOperations.decrypt(input, options)
  }

  async generateDataKey (input: GenerateDataKeyInput, options?: CallOptions): Promise<GenerateDataKeyResult> {
    return this.#kmsOperations.generateDataKey(input, options)
  }

  /**
   * The Encryption SDK's KMS keyring for `keyId`, over this provider's KMS calls. Whether the key
   * exists or is enabled is only learnt when the keyring first calls KMS.
   */
  async envelopeKeyring (keyId: string): Promise<KeyringNode> {
    // The Encryption SDK is loaded when first needed, not at start.
    const { kmsEnvelopeKeyring } = await import('./keyring.js')
    return kmsEnvelopeKeyring(this.#kmsOperations, keyId)
  }

  /**
   * Resolves once a region is known and (unless validate_credentials is off) STS accepts the
   * credentials; transient failures are retried until then, or until close().
   */
  async checkReady (options?: CallOptions): Promise<void> {
    const signal = options?.signal === undefined ? this.#closing.signal : AbortSignal.any([options.signal, this.#closing.signal])
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
    for (const clients of [this.#secretsManager, this.#ssm, this.#kms, this.#sts]) clients.destroy()
  }
}
