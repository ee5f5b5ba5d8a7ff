import { KeyringNode, RawAesKeyringNode, RawAesWrappingSuiteIdentifier, type EncryptedDataKey } from '@aws-crypto/client-node'
import type { LocalKms } from './kms.js'

type EncryptionMaterial = Parameters<KeyringNode['_onEncrypt']>[0]
type DecryptionMaterial = Parameters<KeyringNode['_onDecrypt']>[0]

/**
 * The key namespace (the ESDK's `providerId`) of the data keys local keys wrap. Anyone holding
 * the key file can decrypt a message without the agent: a `RawAesKeyringNode` with this
 * namespace, the key ARN as `keyName`, the key's material and AES256_GCM_IV12_TAG16_NO_PADDING.
 */
export const LOCAL_KEY_NAMESPACE = 'secrets-agent-local'

/**
 * A raw AES keyring over a key's material, as the ESDK would build it anywhere. The material is
 * copied into a `KeyObject` by the SDK, so the caller may zero its buffer once this returns.
 *
 * The encryption context, the wrapped key's associated data, is sorted by its UTF-8 bytes, as the
 * message format says and as the other languages' SDKs sort it. The JavaScript SDK sorts with
 * `localeCompare` unless told `utf8Sorting`: its default differs from the other SDKs (and from
 * itself in another locale) for a context like `{ Tenant, app }`. `utf8Sorting: false` gives that
 * default, for messages written before the agent sorted by bytes.
 */
export function rawAesKeyring (keyArn: string, material: Uint8Array, utf8Sorting = true): RawAesKeyringNode {
  // The SDK wants the key alone in its ArrayBuffer; Buffer.from(base64) may sit in a shared pool.
  const isolated = material.byteOffset === 0 && material.byteLength === material.buffer.byteLength
  const key = isolated ? material : new Uint8Array(material)
  try {
    return new RawAesKeyringNode({
      keyName: keyArn,
      keyNamespace: LOCAL_KEY_NAMESPACE,
      unencryptedMasterKey: key,
      wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
      utf8Sorting
    })
  } finally {
    if (!isolated) key.fill(0)
  }
}

/**
 * The envelope keyring of one local key. It holds no key material: each wrap or unwrap reads the
 * key again (so a key disabled meanwhile refuses with `DisabledException`), builds a raw AES
 * keyring over a copy and zeroes the copy at once. Messages it makes are plain ESDK messages
 * under a raw AES keyring (see `LOCAL_KEY_NAMESPACE`).
 */
export class LocalKeyring extends KeyringNode {
  /** The key ARN, in the agent's region. */
  readonly keyArn: string
  /**
   * The `keyName` of the raw AES keyring, found in the messages it makes: the key ARN, or the ARN
   * the caller named the key by (a message's own, which may name another region).
   */
  readonly keyName: string
  readonly #kms: LocalKms

  constructor (kms: LocalKms, keyArn: string, keyName = keyArn) {
    super()
    this.#kms = kms
    this.keyArn = keyArn
    this.keyName = keyName
  }

  async _onEncrypt (material: EncryptionMaterial): Promise<EncryptionMaterial> {
    return this.#current().onEncrypt(material)
  }

  async _onDecrypt (material: DecryptionMaterial, encryptedDataKeys: EncryptedDataKey[]): Promise<DecryptionMaterial> {
    const opened = await this.#current().onDecrypt(material, encryptedDataKeys)
    if (opened.hasValidKey()) return opened
    // A message the agent wrote before it sorted the context by bytes: the SDK's default order.
    return await this.#current(false).onDecrypt(material, encryptedDataKeys)
  }

  #current (utf8Sorting = true): RawAesKeyringNode {
    const { material } = this.#kms.rawKeyMaterial(this.keyArn)
    try {
      return rawAesKeyring(this.keyName, material, utf8Sorting)
    } finally {
      material.fill(0)
    }
  }
}

/**
 * The local provider's `envelopeKeyring`: resolves the id (id, ARN, alias or alias ARN) now, so an
 * unknown key is `NotFoundError` and a disabled one `AccessDeniedError` before any message is made.
 */
export function localEnvelopeKeyring (kms: LocalKms, keyId: string): LocalKeyring {
  const { arn, material } = kms.rawKeyMaterial(keyId)
  material.fill(0)
  // A key ARN names the key as the message does (`MessageKeyring` passes the message's own).
  return new LocalKeyring(kms, arn, /^arn:[^:]+:kms:[^:]*:[^:]*:key\//.test(keyId) ? keyId : arn)
}
