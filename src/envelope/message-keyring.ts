import { KeyringNode, type EncryptedDataKey } from '@aws-crypto/client-node'
import { isProviderError, type ProviderError } from '../providers/errors.js'
import { KeyNotAllowedError } from './errors.js'

type EncryptionMaterial = Parameters<KeyringNode['_onEncrypt']>[0]
type DecryptionMaterial = Parameters<KeyringNode['_onDecrypt']>[0]

/** The `providerId` of data keys wrapped by AWS KMS keyrings; their `providerInfo` is the key ARN. */
export const KMS_PROVIDER_ID = 'aws-kms'

/** Raw AES key provider info ends in: tag length in bits (uint32), IV length (uint32), the IV. */
const RAW_AES_INFO_TAIL = 4 + 4 + 12

/**
 * The key an encrypted data key names, or undefined when it names none we can tell:
 * - an AWS KMS data key (`aws-kms`): its `providerInfo`, the key ARN;
 * - a raw AES data key (any other namespace; the local provider's): the key name that begins its
 *   provider info, before the tag length (128), the IV length (12) and the IV.
 */
export function keyIdOf (edk: EncryptedDataKey): string | undefined {
  if (edk.providerId === KMS_PROVIDER_ID) return edk.providerInfo
  const raw = edk.rawInfo
  if (!(raw instanceof Uint8Array) || raw.byteLength <= RAW_AES_INFO_TAIL) return undefined
  const tail = Buffer.from(raw.buffer, raw.byteOffset + raw.byteLength - RAW_AES_INFO_TAIL, RAW_AES_INFO_TAIL)
  if (tail.readUInt32BE(0) !== 128 || tail.readUInt32BE(4) !== 12) return undefined
  return Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength - RAW_AES_INFO_TAIL).toString('utf8')
}

/** The keys a message's encrypted data keys name, in message order, each once. */
export function keyIdsOf (edks: readonly EncryptedDataKey[]): string[] {
  const ids: string[] = []
  for (const edk of edks) {
    const id = keyIdOf(edk)
    if (id !== undefined && !ids.includes(id)) ids.push(id)
  }
  return ids
}

export { KeyNotAllowedError }

export interface MessageKeyringOptions {
  /** The provider's keyring for a key the message names. */
  keyringFor: (keyId: string) => Promise<KeyringNode>
  /** Whether the allow-list lets this key be used; every key when absent. */
  allowKey?: (keyId: string) => boolean
  /** Once aborted, no further key is tried: the reason is thrown. */
  signal?: AbortSignal
}

/**
 * A decrypt-only keyring that finds, in the message itself, the keys its data key is wrapped
 * under, and asks the provider for each one's keyring in turn until one unwraps it. So decrypting
 * needs no KeyId, works for any key the provider can use (not just the default one), and each
 * key passes the allow-list before it is used.
 *
 * When no key unwraps the data key: every named key refused by the allow-list → `KeyNotAllowedError`;
 * otherwise the first provider error (unknown key 404, disabled 403, KMS throttling…); otherwise,
 * if the allow-list refused some key, `KeyNotAllowedError`; otherwise the material is returned
 * without a key and the ESDK fails the message (tampered, or no key we know: a 400).
 */
export class MessageKeyring extends KeyringNode {
  readonly #options: MessageKeyringOptions

  constructor (options: MessageKeyringOptions) {
    super()
    this.#options = options
  }

  async _onEncrypt (_material: EncryptionMaterial): Promise<EncryptionMaterial> {
    throw new Error('MessageKeyring only decrypts.')
  }

  async _onDecrypt (material: DecryptionMaterial, encryptedDataKeys: EncryptedDataKey[]): Promise<DecryptionMaterial> {
    const denied: string[] = []
    let tried = 0
    let failure: ProviderError | undefined
    for (const edk of encryptedDataKeys) {
      this.#options.signal?.throwIfAborted()
      const keyId = keyIdOf(edk)
      if (keyId === undefined) continue
      if (this.#options.allowKey !== undefined && !this.#options.allowKey(keyId)) {
        denied.push(keyId)
        continue
      }
      tried += 1
      try {
        const keyring = await this.#options.keyringFor(keyId)
        await keyring.onDecrypt(material, [edk])
      } catch (error) {
        // A tampered data key fails inside the keyring with a plain Error: the ESDK reports it.
        if (isProviderError(error)) failure ??= error
      }
      if (material.hasValidKey()) return material
    }
    if (denied.length > 0 && tried === 0) throw new KeyNotAllowedError(denied)
    if (failure !== undefined) throw failure
    if (denied.length > 0) throw new KeyNotAllowedError(denied)
    return material
  }
}
