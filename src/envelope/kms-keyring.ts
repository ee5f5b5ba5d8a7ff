/**
 * The envelope keyring for AWS KMS keys: an ESDK `KmsKeyringNode` over the aggregated `KMS`
 * client (the keyring calls `client.generateDataKey(...)`, `client.decrypt(...)`; the bare
 * `KMSClient` has only `send`). Imports only `@aws-crypto/*`: the aws provider hands its client in.
 *
 * Two things the bare `KmsKeyringNode` does not do, and why this wraps it:
 * - KMS errors become provider errors (`../providers/errors.ts`) as the client answers, so an
 *   unknown key is a 404 and a disabled one a 403 rather than a generic failure.
 * - On decrypt the ESDK folds every KMS failure into one `Error` whose text is AWS's messages; the
 *   wrapper rethrows the first provider error instead, keeping its class.
 */
import { KeyringNode, KmsKeyringNode, type EncryptedDataKey, type KmsNodeClientSupplier } from '@aws-crypto/client-node'
import {
  AccessDeniedError, InvalidRequestError, NotFoundError, ThrottledError, UpstreamError,
  UpstreamTimeoutError, isProviderError, type ProviderError
} from '../providers/errors.js'

type EncryptionMaterial = Parameters<KeyringNode['_onEncrypt']>[0]
type DecryptionMaterial = Parameters<KeyringNode['_onDecrypt']>[0]

/** Options of a KMS call, as the aggregated client's methods take them (`HttpHandlerOptions`). */
export interface KmsCallOptions {
  abortSignal?: AbortSignal
}

/**
 * What the ESDK's KMS keyring calls: `generateDataKey`, `encrypt` and `decrypt`, SDK-shaped. An
 * instance of the aggregated `KMS` (`@aws-sdk/client-kms`) fits, and so does an adapter over
 * calls of one's own; the bare `KMSClient` (only `send`) does not.
 */
export type KmsKeyringClient = Exclude<ReturnType<KmsNodeClientSupplier>, false>

type Method = (input: unknown, options?: KmsCallOptions) => Promise<unknown> | { promise: () => Promise<unknown> }

export interface KmsEnvelopeKeyringOptions {
  /**
   * The client for a region (the region of a key ARN; '' for a bare key id or alias), or one
   * client for every region.
   */
  client: KmsKeyringClient | ((region: string) => KmsKeyringClient)
  /** Each KMS call is aborted after this long; 0 or absent: no limit of ours. */
  timeoutMillis?: number
  /**
   * Turns what a KMS call threw into a provider error. Default: `kmsErrorToProviderError`. The
   * aws provider passes its own mapping (`toProviderError(e, 'kms')`).
   */
  toProviderError?: (error: unknown) => ProviderError
}

/**
 * The keyring that wraps data keys under `keyId` (id, ARN, alias or alias ARN) and unwraps the
 * encrypted data keys that name it (KMS names the key ARN in each). Nothing is sent to KMS until
 * the keyring is used.
 */
export function kmsEnvelopeKeyring (keyId: string, options: KmsEnvelopeKeyringOptions): KeyringNode {
  return new KmsEnvelopeKeyring(keyId, options)
}

class KmsEnvelopeKeyring extends KeyringNode {
  readonly #keyId: string
  readonly #options: KmsEnvelopeKeyringOptions

  constructor (keyId: string, options: KmsEnvelopeKeyringOptions) {
    super()
    this.#keyId = keyId
    this.#options = options
  }

  async _onEncrypt (material: EncryptionMaterial): Promise<EncryptionMaterial> {
    // The ESDK lets GenerateDataKey's failure through: it is the provider error the client threw.
    return this.#keyring().onEncrypt(material)
  }

  async _onDecrypt (material: DecryptionMaterial, encryptedDataKeys: EncryptedDataKey[]): Promise<DecryptionMaterial> {
    // A keyring per call (they are cheap) so that the failure kept is this call's own.
    let failure: ProviderError | undefined
    try {
      return await this.#keyring((error) => { failure ??= error }).onDecrypt(material, encryptedDataKeys)
    } catch (error) {
      throw failure ?? error
    }
  }

  #keyring (onFailure?: (error: ProviderError) => void): KmsKeyringNode {
    const { client, timeoutMillis = 0 } = this.#options
    const toProviderError = this.#options.toProviderError ?? kmsErrorToProviderError
    const clientProvider: KmsNodeClientSupplier = (region) => {
      const sdk = typeof client === 'function' ? client(region) : client
      const call = async <O>(method: unknown, input: unknown): Promise<O> => {
        try {
          // The aggregated client takes an abort signal as a second argument; an adapter ignores it.
          const answer = (method as Method).call(sdk, input, timeoutMillis > 0 ? { abortSignal: AbortSignal.timeout(timeoutMillis) } : {})
          return await ('promise' in answer ? answer.promise() : answer) as O
        } catch (error) {
          const failure = toProviderError(error)
          onFailure?.(failure)
          throw failure
        }
      }
      return {
        generateDataKey: async (input) => call(sdk.generateDataKey, input),
        encrypt: async (input) => call(sdk.encrypt, input),
        decrypt: async (input) => call(sdk.decrypt, input)
      }
    }
    return new KmsKeyringNode({ generatorKeyId: this.#keyId, clientProvider })
  }
}

/**
 * A KMS error (read by its `name`, as the SDK sets it) in the provider vocabulary, with our own
 * message: KMS's text names ARNs, accounts and roles. The original travels as `cause`.
 */
export function kmsErrorToProviderError (error: unknown): ProviderError {
  if (isProviderError(error)) return error
  const name = typeof (error as { name?: unknown } | null)?.name === 'string' ? (error as { name: string }).name : ''
  const options = { code: name, cause: error }
  switch (name) {
    case 'NotFoundException':
      return new NotFoundError('The KMS key or alias was not found.', options)
    case 'DisabledException':
    case 'KMSInvalidStateException':
      return new AccessDeniedError('The KMS key is disabled or not in a usable state.', options)
    case 'AccessDeniedException':
      return new AccessDeniedError("The agent's AWS identity is not allowed to use this KMS key.", options)
    case 'InvalidCiphertextException':
    case 'IncorrectKeyException':
      return new InvalidRequestError('The ciphertext is invalid, was altered, or does not match the encryption context.', { code: 'InvalidCiphertextException', cause: error })
    case 'InvalidKeyUsageException':
    case 'ValidationException':
    case 'InvalidGrantTokenException':
      return new InvalidRequestError('KMS refused the request as not valid for this key.', options)
    case 'ThrottlingException':
    case 'LimitExceededException':
      return new ThrottledError('KMS throttled the request; retry shortly.', options)
    case 'AbortError':
    case 'TimeoutError':
      return new UpstreamTimeoutError('KMS did not answer in time.', { cause: error })
    default:
      return new UpstreamError('The call to KMS failed.', { cause: error })
  }
}
