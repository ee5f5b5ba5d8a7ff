import {
  AlgorithmSuiteIdentifier, buildClient, CommitmentPolicy, getLocalCryptographicMaterialsCache,
  NodeCachingMaterialsManager, type KeyringNode, type NodeAlgorithmSuite, type NodeMaterialsManager
} from '@aws-crypto/client-node'
import { eitherSignal } from '../abort.js'
import type { AgentConfig } from '../config/index.js'
import { CancelledError, InvalidRequestError, UpstreamTimeoutError, isProviderError } from '../providers/errors.js'
import { AGENT_DEFAULT_KEY_ALIAS } from '../providers/local/kms.js'
import type { EncryptionContext, Provider } from '../providers/types.js'
import { KeyNotAllowedError, keyIdsOf, MessageKeyring } from './message-keyring.js'

/** Limits on reusing one data key; see `kms.data_key_*` in the settings table. */
export interface DataKeyCaching {
  /** Longest a data key is reused. */
  maxAgeSeconds: number
  /** Most messages encrypted under one data key. */
  maxMessages: number
  /** Most plaintext bytes encrypted under one data key. */
  maxBytes: number
}

/** The settings table's defaults. */
export const DEFAULT_DATA_KEY_CACHING: Readonly<DataKeyCaching> = { maxAgeSeconds: 300, maxMessages: 10_000, maxBytes: 1024 * 1024 * 1024 }

export interface EnvelopeOptions {
  provider: Pick<Provider, 'kind' | 'envelopeKeyring'>
  /**
   * Key for `encrypt` calls that name none (`kms.default_key_id`). When null or absent: the local
   * provider uses `alias/secrets-agent/default`; the aws provider has none, and such a call is a 400.
   */
  defaultKeyId?: string | null
  /** Data-key caching limits, or false to wrap a fresh data key for every message. Default: on, the settings' defaults. */
  dataKeyCaching?: DataKeyCaching | false
  /** Whether the allow-list lets a key be used (the key asked for, each key a message names). Every key when absent. */
  allowKey?: (keyId: string) => boolean
  /**
   * Longest one decrypt may spend on KMS, every key it tries together (`kms_timeout_millis`); 0 or
   * absent for no limit beyond each KMS call's own.
   */
  timeoutMs?: number
  /**
   * Sign messages (ECDSA P-384, the ESDK's default suite) rather than use the committing suite
   * without signature. Off by default; see the note on `Envelope`.
   */
  signed?: boolean
}

export interface EnvelopeEncryptInput {
  /** Id, ARN, alias or alias ARN; the default key when absent. */
  keyId?: string
  plaintext: Uint8Array
  encryptionContext?: EncryptionContext
}

export interface EnvelopeEncryptResult {
  /** The ESDK message. */
  ciphertext: Buffer
  /** The keys its data key is wrapped under, as the message names them (key ARNs). */
  keyIds: string[]
}

export interface EnvelopeDecryptInput {
  ciphertext: Uint8Array
  /** Pairs that must each be present, with the same value, in the message's context. */
  encryptionContext?: EncryptionContext
  /** Ends the KMS calls, for a client that has gone. */
  signal?: AbortSignal
}

export interface EnvelopeDecryptResult {
  /** The caller owns it and should zero it when done. */
  plaintext: Buffer
  /** The message's whole encryption context. */
  encryptionContext: EncryptionContext
  /** The keys the message's data key is wrapped under (key ARNs). */
  keyIds: string[]
}

type DecryptOutput = Awaited<ReturnType<ReturnType<typeof buildClient>['decrypt']>>

/** Messages may name this many wrapped data keys at most: each one can cost a KMS call. */
const MAX_ENCRYPTED_DATA_KEYS = 10
/** Data keys and decryption materials held at once (shared by every key). */
const CACHE_CAPACITY = 1000
/** Caching materials managers kept, one per key id asked for; the oldest goes first. */
const MAX_ENCRYPTORS = 1000
/** The ESDK reserves context keys with this prefix (`aws-crypto-public-key` holds the signing key). */
const RESERVED_CONTEXT_PREFIX = 'aws-crypto-'
/** The serialised encryption context must fit the message header's uint16 length. */
const MAX_CONTEXT_BYTES = 0xffff

/**
 * `kms.*` settings as `EnvelopeOptions`.
 */
export function envelopeSettings (kms: AgentConfig['kms']): Pick<EnvelopeOptions, 'defaultKeyId' | 'dataKeyCaching'> {
  return {
    defaultKeyId: kms.defaultKeyId,
    dataKeyCaching: kms.dataKeyCaching
      ? { maxAgeSeconds: kms.dataKeyMaxAgeSeconds, maxMessages: kms.dataKeyMaxMessages, maxBytes: kms.dataKeyMaxBytes }
      : false
  }
}

/**
 * AWS Encryption SDK messages over the provider's keyrings (DESIGN §5): what `/envelope/*` serves.
 *
 * - Commitment policy REQUIRE_ENCRYPT_REQUIRE_DECRYPT: messages are made with a key-committing
 *   suite, and only such messages are opened.
 * - Messages are made with ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY (committing, not
 *   signed) unless `signed`. A signature only adds something when those who can decrypt must not be
 *   able to forge messages; here anyone holding the token may call `/envelope/encrypt` anyway, and
 *   ECDSA signing costs about 7 times the rest of a small message. Messages of either suite, made by
 *   any ESDK, decrypt.
 * - Data-key caching: one `NodeCachingMaterialsManager` per key id asked for, all over one local
 *   cache, so a data key is reused only under the same key id, encryption context and suite, within
 *   the age, message and byte limits. Decryption materials are cached the same way (one manager),
 *   so decrypting many messages under one data key asks KMS once. With caching, a key disabled
 *   after its data key was cached keeps working for that data key until the age limit, as with the
 *   ESDK anywhere.
 */
export class Envelope {
  readonly defaultKeyId: string | null
  readonly #provider: EnvelopeOptions['provider']
  readonly #allowKey: (keyId: string) => boolean
  readonly #caching: DataKeyCaching | false
  readonly #suiteId: AlgorithmSuiteIdentifier
  readonly #client = buildClient({ commitmentPolicy: CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT, maxEncryptedDataKeys: MAX_ENCRYPTED_DATA_KEYS })
  readonly #cache = getLocalCryptographicMaterialsCache<NodeAlgorithmSuite>(CACHE_CAPACITY)
  readonly #encryptors = new Map<string, NodeMaterialsManager>()
  /** Data keys being made, by partition, suite and context (`CoalescingMaterials`). */
  readonly #underWay = new Map<string, Promise<unknown>>()
  readonly #timeoutMs: number

  constructor (options: EnvelopeOptions) {
    this.#provider = options.provider
    this.defaultKeyId = options.defaultKeyId ?? (options.provider.kind === 'local' ? AGENT_DEFAULT_KEY_ALIAS : null)
    this.#allowKey = options.allowKey ?? (() => true)
    this.#caching = options.dataKeyCaching ?? DEFAULT_DATA_KEY_CACHING
    this.#suiteId = options.signed === true
      ? AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY_ECDSA_P384
      : AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY
    if (this.#caching !== false) checkCaching(this.#caching)
    this.#timeoutMs = options.timeoutMs ?? 0
    if (!Number.isInteger(this.#timeoutMs) || this.#timeoutMs < 0) throw new TypeError('Envelope: timeoutMs must be a whole number of milliseconds, 0 or more.')
  }

  /** Whether data keys are reused (`kms.data_key_caching`). */
  get dataKeyCaching (): boolean {
    return this.#caching !== false
  }

  /**
   * Encrypts into an ESDK message under the key asked for (or the default key). The plaintext is
   * not zeroed here: the caller owns it.
   */
  async encrypt (input: EnvelopeEncryptInput): Promise<EnvelopeEncryptResult> {
    const keyId = input.keyId ?? this.defaultKeyId
    if (keyId === null || keyId === '') {
      throw new InvalidRequestError('KeyId is required: no default key is configured (kms.default_key_id).', { code: 'ValidationException' })
    }
    if (!this.#allowKey(keyId)) throw new KeyNotAllowedError([keyId])
    const encryptionContext = input.encryptionContext ?? {}
    checkEncryptionContext(encryptionContext)
    const { materials, fresh } = await this.#encryptor(keyId)
    const { result, messageHeader } = await this.#client.encrypt(materials, input.plaintext, { encryptionContext, suiteId: this.#suiteId })
    if (fresh) this.#keep(keyId, materials as NodeMaterialsManager)
    return { ciphertext: result, keyIds: keyIdsOf(messageHeader.encryptedDataKeys) }
  }

  /**
   * Opens an ESDK message with whichever key it names that the provider can use and the allow-list
   * allows. Anything wrong with the message itself is one `InvalidCiphertextException` (400) whose
   * message says nothing about what failed; key problems keep their provider error (404, 403, 429…).
   * A message may name up to ten keys, each tried in turn: `timeoutMs` bounds them all together,
   * and `input.signal` ends them at once.
   */
  async decrypt (input: EnvelopeDecryptInput): Promise<EnvelopeDecryptResult> {
    const deadline = this.#timeoutMs > 0 ? AbortSignal.timeout(this.#timeoutMs) : undefined
    const signal = eitherSignal(input.signal, deadline)
    let output: DecryptOutput
    try {
      output = await this.#client.decrypt(this.#decryptor(signal), input.ciphertext)
    } catch (error) {
      if (deadline?.aborted === true) throw new UpstreamTimeoutError(`KMS did not open the message's data key within ${this.#timeoutMs} ms.`, { cause: error })
      if (input.signal?.aborted === true) throw new CancelledError('The decrypt was cancelled: its client has gone.', { cause: error })
      if (isProviderError(error)) throw error
      throw invalidMessage()
    }
    const { plaintext, messageHeader } = output
    const stored = messageHeader.encryptionContext
    for (const [name, value] of Object.entries(input.encryptionContext ?? {})) {
      if (!Object.prototype.hasOwnProperty.call(stored, name) || stored[name] !== value) {
        plaintext.fill(0)
        throw new InvalidRequestError('The message\'s encryption context does not hold every pair given in EncryptionContext.', { code: 'InvalidCiphertextException' })
      }
    }
    return { plaintext, encryptionContext: { ...stored }, keyIds: keyIdsOf(messageHeader.encryptedDataKeys) }
  }

  /**
   * A keyring for one decrypt, its KMS calls ended by `signal`. Its caching manager shares the one
   * cache and partition with every other decrypt's, so decryption materials are still reused.
   */
  #decryptor (signal: AbortSignal | undefined): NodeMaterialsManager | KeyringNode {
    const keyring = new MessageKeyring({
      keyringFor: async (keyId) => this.#provider.envelopeKeyring(keyId, signal === undefined ? undefined : { signal }),
      allowKey: this.#allowKey,
      ...(signal === undefined ? {} : { signal })
    })
    return this.#caching === false ? keyring : this.#cachingManager(keyring, 'decrypt')
  }

  async #encryptor (keyId: string): Promise<{ materials: NodeMaterialsManager | KeyringNode, fresh: boolean }> {
    const kept = this.#encryptors.get(keyId)
    if (kept !== undefined) return { materials: kept, fresh: false }
    const keyring = await this.#provider.envelopeKeyring(keyId)
    if (this.#caching === false) return { materials: keyring, fresh: false }
    const partition = `encrypt:${keyId}`
    return { materials: new CoalescingMaterials(this.#cachingManager(keyring, partition), this.#underWay, partition), fresh: true }
  }

  /** Keeps a manager once it has worked, so ids that name no key never take a place. */
  #keep (keyId: string, materials: NodeMaterialsManager): void {
    if (this.#encryptors.has(keyId)) return
    if (this.#encryptors.size >= MAX_ENCRYPTORS) {
      const oldest = this.#encryptors.keys().next()
      if (oldest.done !== true) this.#encryptors.delete(oldest.value)
    }
    this.#encryptors.set(keyId, materials)
  }

  #cachingManager (keyring: KeyringNode, partition: string): NodeCachingMaterialsManager {
    const caching = this.#caching as DataKeyCaching
    // A fixed partition per key id: a manager dropped from #encryptors and made again finds its
    // cached data keys, and two key ids never share one.
    return new NodeCachingMaterialsManager({
      backingMaterials: keyring,
      cache: this.#cache,
      partition,
      maxAge: caching.maxAgeSeconds * 1000,
      maxMessagesEncrypted: caching.maxMessages,
      maxBytesEncrypted: caching.maxBytes
    })
  }
}

/**
 * A caching materials manager whose concurrent misses make one data key, not one each. The ESDK's
 * manager asks the keyring (GenerateDataKey) for every request that finds nothing cached, so a
 * busy agent sent a burst of KMS calls at start and again each time the data key aged out. Here a
 * request that finds another under way for the same suite and context waits for it, then asks the
 * cache in turn (and finds the new key there, within the reuse limits). When that call fails, the
 * requests that waited for it fail with it, as readers of one cached secret share its fetch: KMS
 * throttling or timing out is not then asked again by each of them at once. Materials are never
 * shared: the ESDK zeroes them after each message.
 */
class CoalescingMaterials implements NodeMaterialsManager {
  readonly #inner: NodeMaterialsManager
  /** Shared by the managers of one envelope: two made for one key id at once coalesce too. */
  readonly #underWay: Map<string, Promise<unknown>>
  readonly #partition: string

  constructor (inner: NodeMaterialsManager, underWay: Map<string, Promise<unknown>>, partition: string) {
    this.#inner = inner
    this.#underWay = underWay
    this.#partition = partition
  }

  async getEncryptionMaterials (request: Parameters<NodeMaterialsManager['getEncryptionMaterials']>[0]): ReturnType<NodeMaterialsManager['getEncryptionMaterials']> {
    const key = `${this.#partition} ${request.suite?.id ?? ''} ${JSON.stringify(Object.entries(request.encryptionContext).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0))}`
    const ahead = this.#underWay.get(key)
    if (ahead !== undefined) {
      await ahead
      return await this.#inner.getEncryptionMaterials(request)
    }
    const call = this.#inner.getEncryptionMaterials(request)
    this.#underWay.set(key, call)
    try {
      return await call
    } finally {
      if (this.#underWay.get(key) === call) this.#underWay.delete(key)
    }
  }

  async decryptMaterials (request: Parameters<NodeMaterialsManager['decryptMaterials']>[0]): ReturnType<NodeMaterialsManager['decryptMaterials']> {
    return await this.#inner.decryptMaterials(request)
  }
}

function invalidMessage (): InvalidRequestError {
  return new InvalidRequestError('The ciphertext is not a valid AWS Encryption SDK message, was altered, or no key this agent can use opens it.', { code: 'InvalidCiphertextException' })
}

function checkCaching (caching: DataKeyCaching): void {
  const { maxAgeSeconds, maxMessages, maxBytes } = caching
  if (!(Number.isInteger(maxAgeSeconds) && maxAgeSeconds >= 1)) throw new TypeError('Envelope: dataKeyCaching.maxAgeSeconds must be a whole number of seconds, at least 1.')
  if (!(Number.isInteger(maxMessages) && maxMessages >= 1 && maxMessages <= 2 ** 32)) throw new TypeError('Envelope: dataKeyCaching.maxMessages must be a whole number from 1 to 2^32.')
  if (!(Number.isSafeInteger(maxBytes) && maxBytes >= 1)) throw new TypeError('Envelope: dataKeyCaching.maxBytes must be a whole number from 1 to 2^53 - 1.')
}

/**
 * What the ESDK would refuse in an encryption context, refused first as a 400 with a message that
 * says why: reserved keys, and a context too large for the message header.
 */
export function checkEncryptionContext (context: EncryptionContext): void {
  let bytes = 2
  for (const [name, value] of Object.entries(context)) {
    if (typeof value !== 'string') throw new InvalidRequestError('EncryptionContext must be an object of strings.')
    if (name.startsWith(RESERVED_CONTEXT_PREFIX)) {
      throw new InvalidRequestError(`EncryptionContext keys beginning with ${RESERVED_CONTEXT_PREFIX} are reserved by the AWS Encryption SDK.`)
    }
    bytes += 4 + Buffer.byteLength(name, 'utf8') + Buffer.byteLength(value, 'utf8')
  }
  if (bytes > MAX_CONTEXT_BYTES) throw new InvalidRequestError(`EncryptionContext is too large: at most ${MAX_CONTEXT_BYTES} bytes once serialised.`)
}
