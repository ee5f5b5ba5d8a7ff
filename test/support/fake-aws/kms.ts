import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto'

import type { RequestContext, Resource } from './access.js'
import { AwsError, constraintError, validationError } from './errors.js'
import type { Input } from './input.js'
import type { CreateKeyInput } from './types.js'

interface Key {
  readonly id: string
  readonly arn: string
  readonly material: Buffer
  readonly description: string
  readonly manager: 'AWS' | 'CUSTOMER'
  readonly created: Date
  readonly aliases: Set<string>
  enabled: boolean
}

export type EncryptionContext = Readonly<Record<string, string>>

/*
 * Ciphertext blob layout. Real KMS blobs are opaque but carry the key id, which is what lets
 * Decrypt work without a KeyId; ours do the same in the plainest form:
 *   version (1) | key UUID (16) | IV (12) | GCM tag (16) | ciphertext
 * The header (version and key UUID) is authenticated along with the encryption context.
 */
const BLOB_VERSION = 1
const HEADER_BYTES = 17
const IV_BYTES = 12
const TAG_BYTES = 16
const MAX_PLAINTEXT_BYTES = 4096
const ALGORITHM = 'SYMMETRIC_DEFAULT'
const KEY_SPEC_BYTES: Readonly<Record<string, number>> = { AES_256: 32, AES_128: 16 }

/** KMS: symmetric keys with real AES-256-GCM under per-key material held in memory. */
export class KeyStore {
  readonly #keys = new Map<string, Key>()
  /** `alias/NAME` → key id. */
  readonly #aliases = new Map<string, string>()

  constructor (readonly region: string, readonly accountId: string) {}

  create (input: CreateKeyInput = {}, manager: Key['manager'] = 'CUSTOMER'): string {
    const id = randomUUID()
    const key: Key = {
      id,
      arn: `arn:aws:kms:${this.region}:${this.accountId}:key/${id}`,
      material: randomBytes(32),
      description: input.description ?? '',
      manager,
      created: new Date(),
      aliases: new Set(),
      enabled: input.enabled ?? true
    }
    this.#keys.set(id, key)
    if (input.alias !== undefined) this.#addAlias(key, input.alias)
    return key.arn
  }

  setEnabled (keyIdOrAlias: string, enabled: boolean): void {
    this.resolve(keyIdOrAlias).enabled = enabled
  }

  /** The ARN of the AWS-managed key `alias/aws/<service>`, made on first use as AWS does. */
  managedKey (service: string): string {
    const alias = `alias/aws/${service}`
    const id = this.#aliases.get(alias)
    if (id !== undefined) return this.#keyArn(id)
    return this.create({ alias, description: `Default key that protects my ${service} data when no other key is defined` }, 'AWS')
  }

  /** Looks a key up by key id, key ARN, alias name or alias ARN; NotFoundException otherwise. */
  resolve (keyId: string): Key {
    const { kind, value, arn } = this.#parseKeyId(keyId)
    if (kind === 'alias') {
      const id = this.#aliases.get(value)
      const key = id === undefined ? undefined : this.#keys.get(id)
      if (key === undefined) throw new AwsError('NotFoundException', `Alias ${arn} is not found.`)
      return key
    }
    const key = this.#keys.get(value)
    if (key === undefined) throw new AwsError('NotFoundException', `Key '${arn}' does not exist`)
    return key
  }

  resource (key: Key): Resource {
    const aliases = [...key.aliases]
    return {
      arn: key.arn,
      names: [key.arn, key.id, ...aliases, ...aliases.map((alias) => this.#aliasArn(alias))]
    }
  }

  /** Whether a key could be used for `action` now: exists, enabled, not denied. */
  usable (keyId: string, action: string, ctx: RequestContext): boolean {
    try {
      const key = this.resolve(keyId)
      return key.enabled && ctx.allowed(action, this.resource(key))
    } catch (err) {
      if (err instanceof AwsError) return false
      throw err
    }
  }

  seal (keyId: string, plaintext: Uint8Array, context: EncryptionContext = {}): Buffer {
    const key = this.resolve(keyId)
    const header = Buffer.concat([Buffer.from([BLOB_VERSION]), uuidBytes(key.id)])
    const iv = randomBytes(IV_BYTES)
    const cipher = createCipheriv('aes-256-gcm', key.material, iv)
    cipher.setAAD(Buffer.concat([header, canonicalContext(context)]))
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()])
    return Buffer.concat([header, iv, cipher.getAuthTag(), body])
  }

  handle (operation: string, input: Input, ctx: RequestContext): unknown {
    switch (operation) {
      case 'Encrypt': return this.#encrypt(input, ctx)
      case 'Decrypt': return this.#decrypt(input, ctx)
      case 'GenerateDataKey': return this.#generateDataKey(input, ctx, true)
      case 'GenerateDataKeyWithoutPlaintext': return this.#generateDataKey(input, ctx, false)
      case 'DescribeKey': return this.#describeKey(input, ctx)
      default: return undefined
    }
  }

  #encrypt (input: Input, ctx: RequestContext): unknown {
    const key = this.#usableKey(input.requiredString('KeyId'), 'kms:Encrypt', ctx)
    const plaintext = input.requiredBlob('Plaintext')
    if (plaintext.length === 0 || plaintext.length > MAX_PLAINTEXT_BYTES) {
      throw constraintError('Plaintext', '[SENSITIVE]', `Member must have length between 1 and ${MAX_PLAINTEXT_BYTES}`)
    }
    checkAlgorithm(input)
    const blob = this.seal(key.id, plaintext, input.stringMap('EncryptionContext'))
    return { CiphertextBlob: blob.toString('base64'), KeyId: key.arn, EncryptionAlgorithm: ALGORITHM }
  }

  #decrypt (input: Input, ctx: RequestContext): unknown {
    const blob = input.requiredBlob('CiphertextBlob')
    checkAlgorithm(input)
    const key = this.#blobKey(blob)
    const asked = input.string('KeyId')
    if (asked !== undefined && this.resolve(asked).id !== key.id) {
      throw new AwsError('IncorrectKeyException', 'The key ID in the request does not identify a CMK that can perform this operation.')
    }
    this.#checkUsable(key, 'kms:Decrypt', ctx)
    const plaintext = open(key, blob, input.stringMap('EncryptionContext') ?? {})
    return { Plaintext: plaintext.toString('base64'), KeyId: key.arn, EncryptionAlgorithm: ALGORITHM }
  }

  #generateDataKey (input: Input, ctx: RequestContext, withPlaintext: boolean): unknown {
    const action = withPlaintext ? 'kms:GenerateDataKey' : 'kms:GenerateDataKeyWithoutPlaintext'
    const key = this.#usableKey(input.requiredString('KeyId'), action, ctx)
    const dataKey = randomBytes(dataKeyLength(input))
    const blob = this.seal(key.id, dataKey, input.stringMap('EncryptionContext'))
    const output = { CiphertextBlob: blob.toString('base64'), KeyId: key.arn }
    return withPlaintext ? { ...output, Plaintext: dataKey.toString('base64') } : output
  }

  #describeKey (input: Input, ctx: RequestContext): unknown {
    const key = this.resolve(input.requiredString('KeyId'))
    ctx.authorize('kms:DescribeKey', this.resource(key))
    return {
      KeyMetadata: {
        AWSAccountId: this.accountId,
        KeyId: key.id,
        Arn: key.arn,
        CreationDate: key.created.getTime() / 1000,
        Enabled: key.enabled,
        Description: key.description,
        KeyUsage: 'ENCRYPT_DECRYPT',
        KeyState: key.enabled ? 'Enabled' : 'Disabled',
        Origin: 'AWS_KMS',
        KeyManager: key.manager,
        CustomerMasterKeySpec: ALGORITHM,
        KeySpec: ALGORITHM,
        EncryptionAlgorithms: [ALGORITHM],
        MultiRegion: false
      }
    }
  }

  #usableKey (keyId: string, action: string, ctx: RequestContext): Key {
    const key = this.resolve(keyId)
    this.#checkUsable(key, action, ctx)
    return key
  }

  #checkUsable (key: Key, action: string, ctx: RequestContext): void {
    ctx.authorize(action, this.resource(key))
    if (!key.enabled) throw new AwsError('DisabledException', `${key.arn} is disabled.`)
  }

  /** The key a blob names; a blob naming no key of ours is simply not a ciphertext to us. */
  #blobKey (blob: Buffer): Key {
    if (blob.length < HEADER_BYTES + IV_BYTES + TAG_BYTES || blob[0] !== BLOB_VERSION) throw invalidCiphertext()
    const key = this.#keys.get(uuidString(blob.subarray(1, HEADER_BYTES)))
    if (key === undefined) throw invalidCiphertext()
    return key
  }

  #addAlias (key: Key, alias: string): void {
    const name = alias.startsWith('alias/') ? alias : `alias/${alias}`
    if (this.#aliases.has(name)) throw new Error(`fake KMS: alias ${name} already exists`)
    this.#aliases.set(name, key.id)
    key.aliases.add(name)
  }

  #parseKeyId (keyId: string): { kind: 'key' | 'alias', value: string, arn: string } {
    if (keyId.startsWith('arn:')) return this.#parseArn(keyId)
    if (keyId.startsWith('alias/')) return { kind: 'alias', value: keyId, arn: this.#aliasArn(keyId) }
    if (!/^[0-9a-f-]{36}$/.test(keyId)) throw new AwsError('NotFoundException', `Invalid keyId '${keyId}'`)
    return { kind: 'key', value: keyId, arn: this.#keyArn(keyId) }
  }

  #parseArn (arn: string): { kind: 'key' | 'alias', value: string, arn: string } {
    const [, , service, region, account, ...rest] = arn.split(':')
    const resource = rest.join(':')
    const ours = service === 'kms' && region === this.region && account === this.accountId
    if (ours && resource.startsWith('alias/')) return { kind: 'alias', value: resource, arn }
    if (ours && resource.startsWith('key/')) return { kind: 'key', value: resource.slice('key/'.length), arn }
    throw new AwsError('NotFoundException', `Invalid arn ${arn}`)
  }

  #keyArn (id: string): string {
    return `arn:aws:kms:${this.region}:${this.accountId}:key/${id}`
  }

  #aliasArn (alias: string): string {
    return `arn:aws:kms:${this.region}:${this.accountId}:${alias}`
  }
}

function open (key: Key, blob: Buffer, context: EncryptionContext): Buffer {
  const header = blob.subarray(0, HEADER_BYTES)
  const iv = blob.subarray(HEADER_BYTES, HEADER_BYTES + IV_BYTES)
  const tag = blob.subarray(HEADER_BYTES + IV_BYTES, HEADER_BYTES + IV_BYTES + TAG_BYTES)
  const decipher = createDecipheriv('aes-256-gcm', key.material, iv)
  decipher.setAAD(Buffer.concat([header, canonicalContext(context)]))
  decipher.setAuthTag(tag)
  try {
    return Buffer.concat([decipher.update(blob.subarray(HEADER_BYTES + IV_BYTES + TAG_BYTES)), decipher.final()])
  } catch {
    // A wrong encryption context and a tampered blob look the same to GCM, and to KMS.
    throw invalidCiphertext()
  }
}

/** The context as AAD: order-independent, as KMS treats it. */
function canonicalContext (context: EncryptionContext): Buffer {
  const entries = Object.entries(context).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return Buffer.from(JSON.stringify(entries))
}

function dataKeyLength (input: Input): number {
  const bytes = input.integer('NumberOfBytes')
  const spec = input.string('KeySpec')
  if ((bytes === undefined) === (spec === undefined)) {
    throw validationError('Please specify either number of bytes or key spec.')
  }
  if (spec !== undefined) {
    const length = KEY_SPEC_BYTES[spec]
    if (length === undefined) throw constraintError('KeySpec', spec, 'Member must satisfy enum value set: [AES_256, AES_128]')
    return length
  }
  if (bytes === undefined || bytes < 1 || bytes > 1024) {
    throw constraintError('NumberOfBytes', bytes, 'Member must have value between 1 and 1024')
  }
  return bytes
}

function checkAlgorithm (input: Input): void {
  const algorithm = input.string('EncryptionAlgorithm')
  if (algorithm !== undefined && algorithm !== ALGORITHM) {
    throw new AwsError('InvalidKeyUsageException', `${algorithm} is not supported for this key.`)
  }
}

function invalidCiphertext (): AwsError {
  return new AwsError('InvalidCiphertextException', '')
}

function uuidBytes (uuid: string): Buffer {
  return Buffer.from(uuid.replaceAll('-', ''), 'hex')
}

function uuidString (bytes: Buffer): string {
  const hex = bytes.toString('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}
