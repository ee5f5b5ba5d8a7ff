import { KeyringNode, KmsKeyringNode, type EncryptedDataKey, type KmsNodeClientSupplier } from '@aws-crypto/client-node'
import { NotFoundError, isProviderError, type ProviderError } from '../errors.js'
import type { CallOptions, EnvelopeKms } from '../types.js'

/** What the keyring calls: generateDataKey, encrypt and decrypt, SDK-shaped. */
type EsdkKmsClient = Exclude<ReturnType<KmsNodeClientSupplier>, false>
type EncryptionMaterial = Parameters<KeyringNode['_onEncrypt']>[0]
type DecryptionMaterial = Parameters<KeyringNode['_onDecrypt']>[0]

/**
 * The Encryption SDK's KMS keyring for one key, over the provider's own KMS calls.
 *
 * The keyring calls `generateDataKey()`, `encrypt()` and `decrypt()` on whatever its
 * `clientProvider` returns, without an abort signal. Rather than the SDK's aggregated `KMS`
 * client, it gets an adapter over the provider's KMS calls (`EnvelopeKms`): the same clients
 * (credentials, endpoint, proxy, CA bundle, user agent, per-region routing), the KMS timeout as
 * an abort signal, and failures already in the provider vocabulary (a disabled key is an
 * AccessDeniedError with our message, not AWS's text naming the account).
 *
 * For decryption the keyring only unwraps data keys whose key ARN is `keyId`: the envelope layer
 * asks for the keyring of each key ARN a message names. `signal` ends its KMS calls.
 */
export function kmsEnvelopeKeyring (kms: EnvelopeKms, keyId: string, signal?: AbortSignal): KeyringNode {
  try {
    return new KmsEnvelopeKeyring(kms, keyId, signal)
  } catch {
    // The Encryption SDK checks the id's form first ("Malformed arn."): KMS answers such an id
    // NotFoundException, as the local provider does.
    throw new NotFoundError(`Invalid keyId ${keyId}: not a key id, key ARN, alias name or alias ARN.`, { code: 'NotFoundException' })
  }
}

/**
 * `KmsKeyringNode`, except that a failed decrypt throws the provider error KMS answered with.
 * The ESDK folds every KMS failure during decrypt into one generic `Error` (AWS's texts joined),
 * which would turn a disabled key (403) or a throttled call (429) into a bad message (400).
 * GenerateDataKey's failure already comes through as thrown, so encrypt just delegates.
 */
class KmsEnvelopeKeyring extends KeyringNode {
  readonly #kms: EnvelopeKms
  readonly #keyId: string
  readonly #call: CallOptions | undefined
  readonly #encryptor: KmsKeyringNode

  constructor (kms: EnvelopeKms, keyId: string, signal: AbortSignal | undefined) {
    super()
    this.#kms = kms
    this.#keyId = keyId
    this.#call = signal === undefined ? undefined : { signal }
    this.#encryptor = this.#keyring()
  }

  async _onEncrypt (material: EncryptionMaterial): Promise<EncryptionMaterial> {
    return this.#encryptor.onEncrypt(material)
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
    const kms = this.#kms
    const call = this.#call
    const watched = async <T>(call: Promise<T>): Promise<T> => {
      try {
        return await call
      } catch (error) {
        if (isProviderError(error)) onFailure?.(error)
        throw error
      }
    }
    const client: EsdkKmsClient = {
      async generateDataKey ({ KeyId, NumberOfBytes, EncryptionContext }) {
        const result = await watched(kms.generateDataKey({ keyId: KeyId, ...(NumberOfBytes === undefined ? {} : { numberOfBytes: NumberOfBytes }), ...(EncryptionContext === undefined ? {} : { encryptionContext: EncryptionContext }) }, call))
        return { KeyId: result.keyId, Plaintext: result.plaintext, CiphertextBlob: result.ciphertextBlob }
      },
      async encrypt ({ KeyId, Plaintext, EncryptionContext }) {
        const result = await watched(kms.encrypt({ keyId: KeyId, plaintext: Plaintext, ...(EncryptionContext === undefined ? {} : { encryptionContext: EncryptionContext }) }, call))
        return { KeyId: result.keyId, CiphertextBlob: result.ciphertextBlob }
      },
      async decrypt ({ KeyId, CiphertextBlob, EncryptionContext }) {
        const result = await watched(kms.decrypt({ ciphertextBlob: CiphertextBlob, ...(KeyId === undefined ? {} : { keyId: KeyId }), ...(EncryptionContext === undefined ? {} : { encryptionContext: EncryptionContext }) }, call))
        return { KeyId: result.keyId, Plaintext: result.plaintext }
      }
    }
    // The provider's KMS calls go to the region each key ARN names, so one adapter serves all.
    return new KmsKeyringNode({ generatorKeyId: this.#keyId, clientProvider: () => client })
  }
}
