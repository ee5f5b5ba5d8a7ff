import type { KeyringNode } from '@aws-crypto/client-node'
import type { ProviderError } from './errors.js'

/**
 * What a provider answers. Providers keep no cache and know nothing of HTTP: they return these
 * values or throw an error from ./errors.ts.
 */

/** A GetSecretValue answer. Exactly one of `secretString` and `secretBinary` is set. */
export interface SecretValue {
  arn: string
  name: string
  versionId: string
  secretString?: string
  secretBinary?: Uint8Array
  versionStages: string[]
  createdDate: Date
}

export interface GetSecretInput {
  /** Name or ARN, as the caller asked. */
  secretId: string
  versionId?: string
  versionStage?: string
}

export type ParameterType = 'String' | 'StringList' | 'SecureString'

/** A GetParameter answer, in the shape the Lambda extension sends (nulls included). */
export interface Parameter {
  arn: string
  name: string
  type: ParameterType
  /** Null only for a binary secret read through `/aws/reference/secretsmanager/`. */
  value: string | null
  version: number
  lastModifiedDate: Date
  dataType: string | null
  /** `:version` or `:label` when the caller asked with a selector. */
  selector: string | null
  /** For `/aws/reference/secretsmanager/` names: the secret as JSON. */
  sourceResult: string | null
}

export interface GetParameterInput {
  /** Name or ARN, optionally followed by `:version` or `:label`, as in GetParameter. */
  name: string
  withDecryption: boolean
}

export interface GetParametersByPathInput {
  path: string
  recursive: boolean
  withDecryption: boolean
  /** Answer with InvalidRequestError rather than return more than this many parameters. */
  limit: number
}

export interface BatchSecretError {
  secretId: string
  errorCode: string
  message: string
  /** Whether the failure may pass (throttling, a fault upstream), as ProviderError.transient. */
  transient: boolean
  /** True when the call for the secret's region failed as a whole: not an answer about this secret. */
  whole?: boolean
}

export interface BatchGetSecretsResult {
  values: SecretValue[]
  errors: BatchSecretError[]
  /**
   * The upstream calls that failed as a whole (one per region), their secrets in `errors` with
   * `whole`: what the upstream metrics count the call by.
   */
  failedCalls?: ProviderError[]
}

export type EncryptionContext = Record<string, string>

/** The KMS calls an envelope keyring makes. */
export type EnvelopeKms = Pick<Provider, 'encrypt' | 'decrypt' | 'generateDataKey'>

export interface EnvelopeKeyringOptions {
  /** What the keyring's KMS calls go through; the provider itself when absent. */
  kms?: EnvelopeKms
  /** Ends the keyring's KMS calls: a request's deadline, or its client gone. */
  signal?: AbortSignal
}

export interface EncryptInput {
  keyId: string
  plaintext: Uint8Array
  encryptionContext?: EncryptionContext
}

export interface EncryptResult {
  ciphertextBlob: Uint8Array
  /** The key's ARN. */
  keyId: string
  encryptionAlgorithm: string
}

export interface DecryptInput {
  ciphertextBlob: Uint8Array
  encryptionContext?: EncryptionContext
  keyId?: string
}

export interface DecryptResult {
  plaintext: Uint8Array
  keyId: string
  encryptionAlgorithm: string
}

export interface GenerateDataKeyInput {
  keyId: string
  keySpec?: 'AES_256' | 'AES_128'
  numberOfBytes?: number
  encryptionContext?: EncryptionContext
}

export interface GenerateDataKeyResult {
  ciphertextBlob: Uint8Array
  plaintext: Uint8Array
  keyId: string
}

/** Per-call options: the abort signal lets the cache and the timeouts cancel a call. */
export interface CallOptions {
  signal?: AbortSignal
}

export interface Provider {
  /** `local` or `aws`: for logs, metrics and `/ready`. */
  readonly kind: string
  getSecret (input: GetSecretInput, options?: CallOptions): Promise<SecretValue>
  batchGetSecrets (secretIds: string[], options?: CallOptions): Promise<BatchGetSecretsResult>
  getParameter (input: GetParameterInput, options?: CallOptions): Promise<Parameter>
  getParametersByPath (input: GetParametersByPathInput, options?: CallOptions): Promise<Parameter[]>
  encrypt (input: EncryptInput, options?: CallOptions): Promise<EncryptResult>
  decrypt (input: DecryptInput, options?: CallOptions): Promise<DecryptResult>
  generateDataKey (input: GenerateDataKeyInput, options?: CallOptions): Promise<GenerateDataKeyResult>
  /**
   * The AWS Encryption SDK keyring for a key (id, ARN, alias or alias ARN), for src/envelope/. It
   * wraps data keys under that key and unwraps the encrypted data keys that name it (the key
   * ARN): envelope decryption asks for the keyring of each key a message names. Rejects like
   * `encrypt` for a key the provider knows to be unknown (`NotFoundError`) or disabled
   * (`AccessDeniedError`); a provider that cannot tell without a call leaves that to the keyring.
   * A keyring that calls KMS makes its calls through `options.kms` when given (the provider as the
   * agent wraps it, so that they are counted in the upstream metrics), else through the provider
   * itself, and ends them when `options.signal` aborts.
   */
  envelopeKeyring (keyId: string, options?: EnvelopeKeyringOptions): Promise<KeyringNode>
  /**
   * Resolves once the provider can answer (credentials resolved, store loaded); rejects with a
   * reason otherwise. Called for `/ready`.
   */
  checkReady (options?: CallOptions): Promise<void>
  /**
   * Registers a listener called when the provider's data changed outside any request (the local
   * store was edited): cached answers from it are no longer true. Returns an unsubscribe.
   */
  onChange (listener: () => void): () => void
  close (): Promise<void>
}
