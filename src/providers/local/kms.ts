import { createCipheriv, createDecipheriv, randomBytes, randomFillSync, randomUUID } from 'node:crypto'
import { chmod, link, mkdir, readFile, rename, rm, stat } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'

import { AccessDeniedError, InvalidRequestError, NotFoundError, invalidCiphertext } from '../errors.js'
import type {
  DecryptInput,
  DecryptResult,
  EncryptInput,
  EncryptionContext,
  EncryptResult,
  GenerateDataKeyInput,
  GenerateDataKeyResult,
  Provider
} from '../types.js'
import { withFileLock, writeFileAtomic } from './atomic.js'

/** The local default key, under which SecureString parameters are encrypted (as in AWS). */
export const SSM_DEFAULT_KEY_ALIAS = 'alias/aws/ssm'
/** The agent's own default key, for `/kms/*` callers that name no key of their own. */
export const AGENT_DEFAULT_KEY_ALIAS = 'alias/secrets-agent/default'

const ALGORITHM = 'SYMMETRIC_DEFAULT'
const FORMAT_VERSION = 1
const KEY_ID_BYTES = 16
const IV_BYTES = 12
const TAG_BYTES = 16
const KEY_ID_END = 1 + KEY_ID_BYTES
const IV_END = KEY_ID_END + IV_BYTES
const HEADER_BYTES = IV_END + TAG_BYTES
const KEY_BYTES = 32
/** KMS's own limit on Encrypt's plaintext. */
const MAX_PLAINTEXT_BYTES = 4096
const MAX_DATA_KEY_BYTES = 1024
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const ALIAS_NAME = /^alias\/[a-zA-Z0-9/_-]{1,250}$/
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

export interface LocalKmsOptions {
  /** Path of the key file. Created (mode 0600) with a default key when absent. */
  keyFile: string
  /** Region written into key ARNs; an ARN naming another region names no key here. */
  region: string
  /** Account written into key ARNs. Default `000000000000`. */
  accountId?: string
}

/** One key as `listKeys()` shows it. */
export interface LocalKeySummary {
  arn: string
  /** Alias names (`alias/...`) pointing at the key, sorted. */
  aliases: string[]
  enabled: boolean
}

/** The key file could not be read, parsed or written. It is never overwritten when it cannot be parsed. */
export class KeyFileError extends Error {
  override readonly name = 'KeyFileError'
  readonly path: string
  constructor (path: string, problem: string, options?: { cause?: unknown }) {
    super(`The local KMS key file ${path} ${problem}`, options)
    this.path = path
  }
}

interface LocalKey {
  /** Lowercase UUID. */
  id: string
  /** 32 bytes, in a buffer of its own (not Node's shared pool), zeroed when the key ring is replaced. */
  material: Buffer
  enabled: boolean
  createdDate: string
  description?: string
}

interface KeyRing {
  keys: Map<string, LocalKey>
  /** Alias name → key id. */
  aliases: Map<string, string>
}

/**
 * The local provider's KMS: symmetric keys kept in a key file beside the store file, used with
 * AES-256-GCM. The key file is JSON, mode 0600, and generated on first use with one key that both
 * `alias/aws/ssm` and `alias/secrets-agent/default` name:
 *
 * ```json
 * {
 *   "version": 1,
 *   "keys": [
 *     {
 *       "id": "<uuid>",
 *       "material": "<32 random bytes, base64>",
 *       "enabled": true,
 *       "createdDate": "<ISO 8601 date>",
 *       "description": "<optional>"
 *     }
 *   ],
 *   "aliases": { "alias/aws/ssm": "<key uuid>", "alias/secrets-agent/default": "<key uuid>" }
 * }
 * ```
 *
 * A ciphertext names its key and format, so Decrypt needs no key id:
 * `version (1 byte, 1) | key id (16 raw UUID bytes) | IV (12) | GCM tag (16) | ciphertext`.
 * The additional authenticated data is the version and key id bytes followed by the encryption
 * context, sorted by key and length-prefixed (see `encodeContext`), so a ciphertext only opens
 * under the context it was made with.
 *
 * Writes (`createKey`, `setEnabled`) and `reload` are serialised within the process, and writes
 * take the key file's lock (`withFileLock`) against other processes; each write re-reads the
 * file first so that keys another process (the CLI) added are kept.
 */
export class LocalKms implements Pick<Provider, 'encrypt' | 'decrypt' | 'generateDataKey'> {
  /** Absolute path of the key file. */
  readonly keyFile: string
  readonly region: string
  readonly accountId: string
  readonly #arnPrefix: string
  #ring: KeyRing
  #queue: Promise<unknown> = Promise.resolve()

  private constructor (keyFile: string, region: string, accountId: string, ring: KeyRing) {
    this.keyFile = keyFile
    this.region = region
    this.accountId = accountId
    this.#arnPrefix = `arn:aws:kms:${region}:${accountId}:`
    this.#ring = ring
  }

  /**
   * Reads the key file, or creates it with a default key when there is none. A key file that
   * group or others may read is narrowed to mode 0600. Rejects with a `KeyFileError` when the
   * file cannot be read or parsed; the file is then left as it is.
   */
  static async open (options: LocalKmsOptions): Promise<LocalKms> {
    const { keyFile, region, accountId = '000000000000' } = options
    if (typeof keyFile !== 'string' || keyFile === '') throw new TypeError('LocalKms: keyFile must be a non-empty path.')
    if (!/^[a-z0-9-]+$/.test(region)) throw new TypeError('LocalKms: region must look like an AWS region (lowercase letters, digits, dashes).')
    if (!/^\d{12}$/.test(accountId)) throw new TypeError('LocalKms: accountId must be 12 digits.')
    const path = resolve(keyFile)
    return new LocalKms(path, region, accountId, await loadOrCreate(path))
  }

  /** ARN of the key that `alias/aws/ssm` names. Throws `NotFoundError` when the key file lacks that alias. */
  get defaultKeyArn (): string {
    return this.#arn(this.#resolve(this.#ring, SSM_DEFAULT_KEY_ALIAS))
  }

  /** Encrypts up to 4096 bytes under a key named by id, key ARN, alias or alias ARN. */
  async encrypt (input: EncryptInput): Promise<EncryptResult> {
    const { plaintext } = input
    if (!(plaintext instanceof Uint8Array) || plaintext.byteLength === 0) {
      throw new InvalidRequestError('Plaintext must be between 1 and 4096 bytes long.')
    }
    if (plaintext.byteLength > MAX_PLAINTEXT_BYTES) {
      throw new InvalidRequestError('Plaintext must be between 1 and 4096 bytes long.')
    }
    const context = encodeContext(input.encryptionContext)
    const key = this.#usable(input.keyId)
    return { ciphertextBlob: seal(key, plaintext, context), keyId: this.#arn(key), encryptionAlgorithm: ALGORITHM }
  }

  /**
   * Decrypts a ciphertext made by `encrypt` or `generateDataKey` with the same key file. The key
   * comes from the ciphertext; `keyId`, when given, must name that same key.
   */
  async decrypt (input: DecryptInput): Promise<DecryptResult> {
    const { ciphertextBlob } = input
    if (!(ciphertextBlob instanceof Uint8Array)) throw invalidCiphertext()
    const blob = Buffer.from(ciphertextBlob.buffer, ciphertextBlob.byteOffset, ciphertextBlob.byteLength)
    if (blob.length <= HEADER_BYTES || blob.length > HEADER_BYTES + MAX_PLAINTEXT_BYTES || blob[0] !== FORMAT_VERSION) {
      throw invalidCiphertext()
    }
    const context = encodeContext(input.encryptionContext)
    const ring = this.#ring
    const keyId = uuidFromBytes(blob.subarray(1, KEY_ID_END))
    if (input.keyId !== undefined && this.#resolve(ring, input.keyId).id !== keyId) {
      throw new InvalidRequestError('The ciphertext was not encrypted under the requested key.', { code: 'IncorrectKeyException' })
    }
    const key = ring.keys.get(keyId)
    if (key === undefined) throw invalidCiphertext()
    this.#checkEnabled(key)
    return { plaintext: unseal(key, blob, context), keyId: this.#arn(key), encryptionAlgorithm: ALGORITHM }
  }

  /** Makes a random data key (`keySpec` or `numberOfBytes`, not both) and its encryption under a key. */
  async generateDataKey (input: GenerateDataKeyInput): Promise<GenerateDataKeyResult> {
    const size = dataKeySize(input)
    const context = encodeContext(input.encryptionContext)
    const key = this.#usable(input.keyId)
    const plaintext = randomBytes(size)
    return { plaintext, ciphertextBlob: seal(key, plaintext, context), keyId: this.#arn(key) }
  }

  /**
   * A copy of a key's material, for building an ESDK raw AES keyring. The caller owns the buffer
   * and should zero it when done. Throws like `encrypt` for an unknown or disabled key.
   */
  rawKeyMaterial (keyIdOrAlias: string): { arn: string, material: Buffer } {
    const key = this.#usable(keyIdOrAlias)
    const material = Buffer.alloc(KEY_BYTES)
    key.material.copy(material)
    return { arn: this.#arn(key), material }
  }

  /** The keys, in key file order, with their aliases. */
  listKeys (): LocalKeySummary[] {
    const aliases = new Map<string, string[]>()
    for (const [alias, id] of [...this.#ring.aliases].sort(([a], [b]) => compare(a, b))) {
      aliases.set(id, [...(aliases.get(id) ?? []), alias])
    }
    return [...this.#ring.keys.values()].map((key) => ({ arn: this.#arn(key), aliases: aliases.get(key.id) ?? [], enabled: key.enabled }))
  }

  /**
   * Adds a key, optionally with an alias (not under the reserved `alias/aws/`), and returns its ARN.
   * An alias already in use is refused with `AlreadyExistsException`.
   */
  async createKey (options: { alias?: string, description?: string } = {}): Promise<string> {
    const { alias, description } = options
    if (alias !== undefined && (!ALIAS_NAME.test(alias) || alias.startsWith('alias/aws/'))) {
      throw new InvalidRequestError('An alias must look like alias/name (letters, digits, /, _ and -) and must not begin with alias/aws/.')
    }
    if (description !== undefined && (typeof description !== 'string' || description.length > 8192)) {
      throw new InvalidRequestError('A key description must be a string of at most 8192 characters.')
    }
    return await this.#update((ring) => {
      if (alias !== undefined && ring.aliases.has(alias)) {
        throw new InvalidRequestError(`The alias ${alias} already exists.`, { code: 'AlreadyExistsException' })
      }
      const key = newKey(description)
      ring.keys.set(key.id, key)
      if (alias !== undefined) ring.aliases.set(alias, key.id)
      return this.#arn(key)
    })
  }

  /** Enables or disables a key. A disabled key refuses every operation with `DisabledException`. */
  async setEnabled (keyIdOrAlias: string, enabled: boolean): Promise<void> {
    await this.#update((ring) => {
      this.#resolve(ring, keyIdOrAlias).enabled = enabled
    })
  }

  /**
   * Re-reads the key file, to see keys another process added or disabled. On failure the keys
   * in service stay as they were.
   */
  async reload (): Promise<void> {
    await this.#serialised(async () => {
      const ring = await readKeyRing(this.keyFile)
      if (ring === undefined) throw new KeyFileError(this.keyFile, 'no longer exists; the keys read before stay in service.')
      this.#replace(ring)
    })
  }

  #arn (key: LocalKey): string {
    return `${this.#arnPrefix}key/${key.id}`
  }

  /**
   * Finds a key by id, key ARN, alias name or alias ARN. An ARN of this account names the key in
   * any region: the key file is not regional, and a message written while the agent ran as
   * us-east-1 names its key by a us-east-1 ARN, which must still open under eu-west-1.
   */
  #resolve (ring: KeyRing, keyId: string): LocalKey {
    if (typeof keyId !== 'string' || keyId === '') throw new InvalidRequestError('KeyId must be a non-empty string.')
    let id: string | undefined
    const resource = this.#resourceOf(keyId)
    if (resource?.startsWith('key/') === true) id = resource.slice(4)
    else if (resource?.startsWith('alias/') === true) id = ring.aliases.get(resource)
    else if (keyId.startsWith('alias/')) id = ring.aliases.get(keyId)
    else if (!keyId.startsWith('arn:')) id = keyId
    const key = id === undefined ? undefined : ring.keys.get(id)
    if (key === undefined) throw new NotFoundError(`Key ${keyId} does not exist.`, { code: 'NotFoundException' })
    return key
  }

  /** `key/<id>` or `alias/<name>` of a KMS ARN of this account, in any region; else undefined. */
  #resourceOf (arn: string): string | undefined {
    const parts = arn.split(':')
    if (parts.length !== 6 || parts[0] !== 'arn' || parts[1]?.startsWith('aws') !== true || parts[2] !== 'kms' || parts[4] !== this.accountId) return undefined
    return parts[5]
  }

  #checkEnabled (key: LocalKey): void {
    if (!key.enabled) throw new AccessDeniedError(`Key ${this.#arn(key)} is disabled.`, { code: 'DisabledException' })
  }

  #usable (keyId: string): LocalKey {
    const key = this.#resolve(this.#ring, keyId)
    this.#checkEnabled(key)
    return key
  }

  #replace (ring: KeyRing): void {
    const old = this.#ring
    this.#ring = ring
    // Encrypt and decrypt use a key without awaiting, so none is using the old material now.
    zeroRing(old)
  }

  #serialised<T> (task: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(task, task)
    this.#queue = run.catch(() => undefined)
    return run
  }

  /**
   * Read, change, write, in turn, under the key file's lock: the file is the truth, so keys
   * another process (the CLI, another agent) adds at the same moment survive.
   */
  #update<T> (change: (ring: KeyRing) => T): Promise<T> {
    return this.#serialised(async () => withFileLock(this.keyFile, async () => {
      const ring = await readKeyRing(this.keyFile)
      if (ring === undefined) throw new KeyFileError(this.keyFile, 'no longer exists; nothing was changed.')
      try {
        const result = change(ring)
        await writeKeyRing(this.keyFile, ring)
        this.#replace(ring)
        return result
      } catch (error) {
        zeroRing(ring)
        throw error
      }
    }))
  }
}

function compare (a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/**
 * The encryption context as bytes: a 4-byte count, then for each pair sorted by key a 4-byte
 * length and the UTF-8 key, a 4-byte length and the UTF-8 value. The lengths keep
 * `{ a: 'b=c' }` and `{ 'a=b': 'c' }` apart. No context and an empty one are the same, as in KMS.
 */
function encodeContext (context: EncryptionContext | undefined): Buffer {
  if (context === undefined || context === null) return Buffer.alloc(4)
  if (typeof context !== 'object' || Array.isArray(context)) throw new InvalidRequestError('The encryption context must be an object of strings.')
  const names = Object.keys(context).sort(compare)
  const parts: Buffer[] = [uint32(names.length)]
  for (const name of names) {
    const value: unknown = context[name]
    if (typeof value !== 'string') throw new InvalidRequestError('The encryption context must be an object of strings.')
    for (const text of [name, value]) {
      const bytes = Buffer.from(text, 'utf8')
      parts.push(uint32(bytes.length), bytes)
    }
  }
  return Buffer.concat(parts)
}

function uint32 (value: number): Buffer {
  const bytes = Buffer.alloc(4)
  bytes.writeUInt32BE(value)
  return bytes
}

function seal (key: LocalKey, plaintext: Uint8Array, context: Buffer): Buffer {
  const blob = Buffer.alloc(HEADER_BYTES + plaintext.byteLength)
  blob[0] = FORMAT_VERSION
  Buffer.from(key.id.replaceAll('-', ''), 'hex').copy(blob, 1)
  const iv = randomFillSync(blob.subarray(KEY_ID_END, IV_END))
  const cipher = createCipheriv('aes-256-gcm', key.material, iv, { authTagLength: TAG_BYTES })
  cipher.setAAD(Buffer.concat([blob.subarray(0, KEY_ID_END), context]))
  const body = cipher.update(plaintext)
  body.copy(blob, HEADER_BYTES)
  cipher.final().copy(blob, HEADER_BYTES + body.length) // GCM adds nothing at the end
  cipher.getAuthTag().copy(blob, IV_END)
  return blob
}

/** Opens a ciphertext whose length and version were checked; nothing is returned unless the tag holds. */
function unseal (key: LocalKey, blob: Buffer, context: Buffer): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', key.material, blob.subarray(KEY_ID_END, IV_END), { authTagLength: TAG_BYTES })
  decipher.setAuthTag(blob.subarray(IV_END, HEADER_BYTES))
  decipher.setAAD(Buffer.concat([blob.subarray(0, KEY_ID_END), context]))
  const plaintext = decipher.update(blob.subarray(HEADER_BYTES))
  try {
    decipher.final()
  } catch {
    plaintext.fill(0)
    throw invalidCiphertext()
  }
  return plaintext
}

function dataKeySize ({ keySpec, numberOfBytes }: GenerateDataKeyInput): number {
  if ((keySpec === undefined) === (numberOfBytes === undefined)) {
    throw new InvalidRequestError('Give either KeySpec or NumberOfBytes, not both and not neither.')
  }
  if (keySpec === 'AES_256') return 32
  if (keySpec === 'AES_128') return 16
  if (keySpec !== undefined) throw new InvalidRequestError('KeySpec must be AES_256 or AES_128.')
  if (numberOfBytes === undefined || !Number.isInteger(numberOfBytes) || numberOfBytes < 1 || numberOfBytes > MAX_DATA_KEY_BYTES) {
    throw new InvalidRequestError('NumberOfBytes must be an integer from 1 to 1024.')
  }
  return numberOfBytes
}

function uuidFromBytes (bytes: Buffer): string {
  const hex = bytes.toString('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

function newKey (description?: string): LocalKey {
  const key: LocalKey = { id: randomUUID(), material: randomBytes(KEY_BYTES), enabled: true, createdDate: new Date().toISOString() }
  if (description !== undefined) key.description = description
  return key
}

function zeroRing (ring: KeyRing): void {
  for (const key of ring.keys.values()) key.material.fill(0)
}

function isRecord (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function errorCode (error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}

async function loadOrCreate (path: string): Promise<KeyRing> {
  const existing = await readKeyRing(path)
  if (existing !== undefined) {
    await restrictMode(path)
    return existing
  }
  const key = newKey()
  const fresh: KeyRing = {
    keys: new Map([[key.id, key]]),
    aliases: new Map([[SSM_DEFAULT_KEY_ALIAS, key.id], [AGENT_DEFAULT_KEY_ALIAS, key.id]])
  }
  if (await writeKeyRing(path, fresh, { exclusive: true })) return fresh
  // Another process (the CLI, a second agent) created it first: use its keys, not ours.
  zeroRing(fresh)
  const theirs = await readKeyRing(path)
  if (theirs === undefined) throw new KeyFileError(path, 'vanished while it was being created.')
  await restrictMode(path)
  return theirs
}

async function restrictMode (path: string): Promise<void> {
  if (process.platform === 'win32') return
  try {
    if (((await stat(path)).mode & 0o077) !== 0) await chmod(path, 0o600)
  } catch (error) {
    throw new KeyFileError(path, `may be read by group or others and could not be restricted to mode 0600 (${errorCode(error) ?? 'error'}); run chmod 600 on it.`, { cause: error })
  }
}

/** The key ring in the file, or undefined when there is no file. */
async function readKeyRing (path: string): Promise<KeyRing | undefined> {
  let bytes: Buffer
  try {
    bytes = await readFile(path)
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return undefined
    throw new KeyFileError(path, `could not be read (${errorCode(error) ?? 'error'}).`, { cause: error })
  }
  try {
    return parseKeyRing(path, bytes)
  } finally {
    bytes.fill(0)
  }
}

function parseKeyRing (path: string, bytes: Buffer): KeyRing {
  let data: unknown
  try {
    data = JSON.parse(bytes.toString('utf8'))
  } catch {
    // No cause and no parser message: V8 quotes the text around the error, and the text is key material.
    throw new KeyFileError(path, 'is not valid JSON. It was left untouched: repair it, or move it away to have a new one generated (ciphertexts made under its keys will not decrypt again).')
  }
  const invalid = (problem: string): KeyFileError => new KeyFileError(path, `is not valid: ${problem}. It was left untouched.`)
  if (!isRecord(data)) throw invalid('the top level must be an object')
  if (data.version !== 1) throw invalid('"version" must be 1')
  if (!Array.isArray(data.keys)) throw invalid('"keys" must be an array')
  if (!isRecord(data.aliases)) throw invalid('"aliases" must be an object')
  const ring: KeyRing = { keys: new Map(), aliases: new Map() }
  try {
    for (const [index, entry] of (data.keys as unknown[]).entries()) {
      const at = `keys[${index}]`
      if (!isRecord(entry)) throw invalid(`${at} must be an object`)
      const { id, material, enabled, createdDate, description } = entry
      if (typeof id !== 'string' || !UUID.test(id.toLowerCase())) throw invalid(`${at}.id must be a UUID`)
      if (ring.keys.has(id.toLowerCase())) throw invalid(`${at}.id repeats an earlier key's id`)
      if (typeof enabled !== 'boolean') throw invalid(`${at}.enabled must be true or false`)
      if (typeof createdDate !== 'string' || Number.isNaN(Date.parse(createdDate))) throw invalid(`${at}.createdDate must be an ISO 8601 date`)
      if (description !== undefined && typeof description !== 'string') throw invalid(`${at}.description must be a string`)
      if (typeof material !== 'string' || !BASE64.test(material)) throw invalid(`${at}.material must be base64`)
      const decoded = Buffer.from(material, 'base64')
      const length = decoded.length
      // Short decodes come from Node's shared pool: copy into a buffer of our own, then wipe.
      const own = Buffer.alloc(KEY_BYTES)
      if (length === KEY_BYTES) decoded.copy(own)
      decoded.fill(0)
      if (length !== KEY_BYTES) throw invalid(`${at}.material must hold ${KEY_BYTES} bytes, not ${length}`)
      const key: LocalKey = { id: id.toLowerCase(), material: own, enabled, createdDate }
      if (description !== undefined) key.description = description
      ring.keys.set(key.id, key)
    }
    for (const [alias, target] of Object.entries(data.aliases)) {
      if (!ALIAS_NAME.test(alias)) throw invalid(`aliases: ${JSON.stringify(alias.slice(0, 64))} must look like alias/name`)
      if (typeof target !== 'string' || !ring.keys.has(target.toLowerCase())) throw invalid(`aliases: ${alias} must name the id of a key in "keys"`)
      ring.aliases.set(alias, target.toLowerCase())
    }
  } catch (error) {
    zeroRing(ring)
    throw error
  }
  return ring
}

/**
 * Writes the key ring atomically, mode 0600. With `exclusive`, only when no key file exists yet
 * (false otherwise): the file is built under a temp name, then hard-linked into place, which
 * fails rather than replace a file that appeared meanwhile.
 */
async function writeKeyRing (path: string, ring: KeyRing, { exclusive = false } = {}): Promise<boolean> {
  const file = {
    version: 1,
    keys: [...ring.keys.values()].map(({ id, material, enabled, createdDate, description }) => ({
      id, material: material.toString('base64'), enabled, createdDate, ...(description === undefined ? {} : { description })
    })),
    aliases: Object.fromEntries([...ring.aliases].sort(([a], [b]) => compare(a, b)))
  }
  const bytes = Buffer.from(`${JSON.stringify(file, null, 2)}\n`, 'utf8')
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.new`)
  try {
    if (!exclusive) {
      await writeFileAtomic(path, bytes, 0o600)
      return true
    }
    await mkdir(dirname(path), { recursive: true, mode: 0o700 })
    await writeFileAtomic(temp, bytes, 0o600)
    try {
      await link(temp, path)
    } catch (error) {
      if (errorCode(error) === 'EEXIST') return false
      // A filesystem without hard links: rename instead, giving up only the guard against a race.
      if (!['EPERM', 'ENOTSUP', 'ENOSYS', 'EOPNOTSUPP'].includes(errorCode(error) ?? '')) throw error
      await rename(temp, path)
    }
    return true
  } catch (error) {
    throw new KeyFileError(path, `could not be written (${errorCode(error) ?? 'error'}).`, { cause: error })
  } finally {
    bytes.fill(0)
    if (exclusive) await rm(temp, { force: true }).catch(() => undefined)
  }
}
