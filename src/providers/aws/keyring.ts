import { KmsKeyringNode, type KmsNodeClientSupplier } from '@aws-crypto/client-node'
import type { KmsOperations } from './kms.js'

/** What the keyring calls: generateDataKey, encrypt and decrypt, SDK-shaped. */
type EsdkKmsClient = Exclude<ReturnType<KmsNodeClientSupplier>, false>

/**
 * The Encryption SDK's KMS keyring for one key, over the provider's own KMS calls.
 *
 * The keyring calls `generateDataKey()`, `encrypt()` and `decrypt()` on whatever its
 * `clientProvider` returns, without an abort signal. Rather than the SDK's aggregated `KMS`
 * client, it gets an adapter over `KmsOperations`: the same clients (credentials, endpoint,
 * proxy, CA bundle, user agent, per-region routing), the KMS timeout as an abort signal, and
 * failures already in the provider vocabulary (a disabled key is an AccessDeniedError with our
 * message, not AWS's text naming the account).
 *
 * For decryption the keyring only unwraps data keys whose key ARN is `keyId`: the envelope layer
 * asks for the keyring of each key ARN a message names.
 */
export function kmsEnvelopeKeyring (kms: KmsOperations, keyId: string): KmsKeyringNode {
  const client: EsdkKmsClient = {
    async generateDataKey ({ KeyId, NumberOfBytes, EncryptionContext }) {
      const result = await kms.generateDataKey({ keyId: KeyId, ...(NumberOfBytes === undefined ? {} : { numberOfBytes: NumberOfBytes }), ...(EncryptionContext === undefined ? {} : { encryptionContext: EncryptionContext }) })
      return { KeyId: result.keyId, Plaintext: result.plaintext, CiphertextBlob: result.ciphertextBlob }
    },
    async encrypt ({ KeyId, Plaintext, EncryptionContext }) {
      const result = await kms.encrypt({ keyId: KeyId, plaintext: Plaintext, ...(EncryptionContext === undefined ? {} : { encryptionContext: EncryptionContext }) })
      return { KeyId: result.keyId, CiphertextBlob: result.ciphertextBlob }
    },
    async decrypt ({ KeyId, CiphertextBlob, EncryptionContext }) {
      const result = await kms.decrypt({ ciphertextBlob: CiphertextBlob, ...(KeyId === undefined ? {} : { keyId: KeyId }), ...(EncryptionContext === undefined ? {} : { encryptionContext: EncryptionContext }) })
      return { KeyId: result.keyId, Plaintext: result.plaintext }
    }
  }
  // KmsOperations routes each call to the region its key ARN names, so one adapter serves all.
  return new KmsKeyringNode({ generatorKeyId: keyId, clientProvider: () => client })
}
