import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'

import {
  AlgorithmSuiteIdentifier, buildClient, CommitmentPolicy, EncryptedDataKey, KeyringNode, MultiKeyringNode
} from '@aws-crypto/client-node'

import {
  checkEncryptionContext, Envelope, KeyNotAllowedError, keyIdOf, type EnvelopeOptions
} from '../../src/envelope/index.js'
import { createLogger } from '../../src/logger.js'
import { AccessDeniedError, InvalidRequestError, NotFoundError, ProviderError } from '../../src/providers/errors.js'
import { LOCAL_KEY_NAMESPACE, rawAesKeyring } from '../../src/providers/local/envelope-keyring.js'
import { LocalProvider } from '../../src/providers/local/provider.js'
import type { Provider } from '../../src/providers/types.js'

type EncryptionMaterial = Parameters<KeyringNode['_onEncrypt']>[0]
type DecryptionMaterial = Parameters<KeyringNode['_onDecrypt']>[0]

/** Counts the data keys a keyring wraps and unwraps: one wrap per data key made. */
class CountingKeyring extends KeyringNode {
  constructor (readonly inner: KeyringNode, readonly counts: { wraps: number, unwraps: number }) { super() }
  async _onEncrypt (material: EncryptionMaterial): Promise<EncryptionMaterial> {
    this.counts.wraps += 1
    return this.inner.onEncrypt(material)
  }

  async _onDecrypt (material: DecryptionMaterial, edks: EncryptedDataKey[]): Promise<DecryptionMaterial> {
    this.counts.unwraps += 1
    return this.inner.onDecrypt(material, edks)
  }
}

const esdk = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)

/** What an error was, for assertions: its class, code and message. */
async function failure (promise: Promise<unknown>): Promise<ProviderError> {
  try {
    await promise
  } catch (error) {
    assert.ok(error instanceof ProviderError, `expected a provider error, got ${String(error)}`)
    return error
  }
  assert.fail('expected a rejection')
}

describe('Envelope (local keys)', () => {
  let dir: string
  let local: LocalProvider
  let defaultArn: string
  let counts: { wraps: number, unwraps: number }
  /** The local provider, with every keyring it hands out counted. */
  let counted: Pick<Provider, 'kind' | 'envelopeKeyring'>
  const envelope = (options: Partial<EnvelopeOptions> = {}): Envelope => new Envelope({ provider: counted, ...options })

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'secrets-agent-envelope-'))
    await writeFile(join(dir, 'store.yaml'), 'secrets: {}\n')
    local = await LocalProvider.open({ storeFile: join(dir, 'store.yaml'), region: 'us-east-1', logger: createLogger({ level: 'none' }), watch: false })
    defaultArn = local.kms.listKeys()[0]!.arn
    counted = {
      kind: 'local',
      envelopeKeyring: async (keyId) => new CountingKeyring(await local.envelopeKeyring(keyId), counts)
    }
  })
  after(async () => {
    await local.close()
    await rm(dir, { recursive: true, force: true })
  })
  const reset = (): void => { counts = { wraps: 0, unwraps: 0 } }
  reset()

  it('round-trips under the default key, returning the whole context and the key ARN', async () => {
    const env = envelope()
    const plaintext = Buffer.from('envelope payload')

    const encrypted = await env.encrypt({ plaintext, encryptionContext: { app: 'test', tenant: 't1' } })
    const decrypted = await env.decrypt({ ciphertext: encrypted.ciphertext, encryptionContext: { tenant: 't1' } })

    assert.equal(env.defaultKeyId, 'alias/secrets-agent/default')
    assert.deepEqual(encrypted.keyIds, [defaultArn])
    assert.equal(decrypted.plaintext.toString(), 'envelope payload')
    assert.deepEqual(decrypted.encryptionContext, { app: 'test', tenant: 't1' })
    assert.deepEqual(decrypted.keyIds, [defaultArn])
    assert.equal(plaintext.toString(), 'envelope payload', 'the caller\'s plaintext is left as it was')
  })

  it('makes key-committing, unsigned messages unless asked to sign, and opens both', async () => {
    const unsigned = await envelope().encrypt({ plaintext: Buffer.from('a') })
    const signed = await envelope({ signed: true }).encrypt({ plaintext: Buffer.from('b') })

    const plain = await esdk.decrypt(rawAesKeyring(defaultArn, await materialOf(defaultArn)), unsigned.ciphertext)
    const withSignature = await envelope().decrypt({ ciphertext: signed.ciphertext })

    assert.equal(plain.messageHeader.suiteId, AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY)
    assert.equal(withSignature.plaintext.toString(), 'b')
    assert.ok('aws-crypto-public-key' in withSignature.encryptionContext)
  })

  it('refuses a message whose context lacks a pair the caller gives, or holds another value', async () => {
    const env = envelope()
    const { ciphertext } = await env.encrypt({ plaintext: Buffer.from('x'), encryptionContext: { app: 'test' } })

    const wrongValue = await failure(env.decrypt({ ciphertext, encryptionContext: { app: 'other' } }))
    const missing = await failure(env.decrypt({ ciphertext, encryptionContext: { app: 'test', extra: '1' } }))

    for (const error of [wrongValue, missing]) {
      assert.ok(error instanceof InvalidRequestError)
      assert.equal(error.code, 'InvalidCiphertextException')
    }
  })

  it('answers one generic InvalidCiphertextException for altered bytes and for what is no message at all', async () => {
    const env = envelope()
    const { ciphertext } = await env.encrypt({ plaintext: Buffer.from('secret words'), encryptionContext: { app: 'test' } })
    const body = Buffer.from(ciphertext)
    body[body.length - 40]! ^= 1
    const header = Buffer.from(ciphertext)
    header[30]! ^= 1

    const errors = await Promise.all([
      failure(env.decrypt({ ciphertext: body })),
      failure(env.decrypt({ ciphertext: header })),
      failure(env.decrypt({ ciphertext: ciphertext.subarray(0, ciphertext.length - 1) })),
      failure(env.decrypt({ ciphertext: Buffer.from('not an ESDK message') })),
      failure(env.decrypt({ ciphertext: Buffer.alloc(0) }))
    ])

    for (const error of errors) {
      assert.equal(error.code, 'InvalidCiphertextException')
      assert.equal(error.message, errors[0]!.message)
    }
  })

  it('answers NotFoundError for an unknown key and AccessDeniedError (DisabledException) for a disabled one, both ways', async () => {
    const arn = await local.kms.createKey({ alias: 'alias/unit/disable-me' })
    const env = envelope({ dataKeyCaching: false })
    const { ciphertext } = await env.encrypt({ keyId: 'alias/unit/disable-me', plaintext: Buffer.from('x') })
    await local.kms.setEnabled(arn, false)

    const unknown = await failure(env.encrypt({ keyId: 'alias/unit/none', plaintext: Buffer.from('x') }))
    const disabledEncrypt = await failure(env.encrypt({ keyId: arn, plaintext: Buffer.from('x') }))
    const disabledDecrypt = await failure(env.decrypt({ ciphertext }))

    assert.ok(unknown instanceof NotFoundError)
    assert.ok(disabledEncrypt instanceof AccessDeniedError)
    assert.ok(disabledDecrypt instanceof AccessDeniedError)
    assert.equal(disabledDecrypt.code, 'DisabledException')
  })

  it('uses the configured default key, and without one (aws) asks for a KeyId with a 400', async () => {
    const arn = await local.kms.createKey({ alias: 'alias/unit/configured' })
    const configured = envelope({ defaultKeyId: 'alias/unit/configured' })
    const aws = new Envelope({ provider: { kind: 'aws', envelopeKeyring: counted.envelopeKeyring } })

    const made = await configured.encrypt({ plaintext: Buffer.from('x') })
    const refused = await failure(aws.encrypt({ plaintext: Buffer.from('x') }))

    assert.deepEqual(made.keyIds, [arn])
    assert.equal(aws.defaultKeyId, null)
    assert.ok(refused instanceof InvalidRequestError)
    assert.match(refused.message, /KeyId is required/)
  })

  it('refuses keys the allow-list refuses: the key asked for, and every key a message names', async () => {
    const allowed = envelope()
    const refusing = envelope({ allowKey: (id) => id.startsWith('alias/app/') })
    const { ciphertext } = await allowed.encrypt({ plaintext: Buffer.from('x') })
    reset()

    const onEncrypt = await failure(refusing.encrypt({ plaintext: Buffer.from('x') }))
    const onDecrypt = await failure(refusing.decrypt({ ciphertext }))

    assert.ok(onEncrypt instanceof KeyNotAllowedError)
    assert.deepEqual(onEncrypt.keyIds, ['alias/secrets-agent/default'])
    assert.ok(onDecrypt instanceof KeyNotAllowedError)
    assert.deepEqual(onDecrypt.keyIds, [defaultArn])
    assert.deepEqual(counts, { wraps: 0, unwraps: 0 }, 'no key was used')
  })

  it('refuses reserved and oversized encryption contexts before any key is used', () => {
    assert.throws(() => checkEncryptionContext({ 'aws-crypto-public-key': 'x' }), InvalidRequestError)
    assert.throws(() => checkEncryptionContext({ big: 'x'.repeat(70_000) }), /too large/)
    assert.doesNotThrow(() => checkEncryptionContext({ a: 'b', '': '' }))
  })

  describe('data-key caching', () => {
    it('wraps one data key for 200 messages under one key and context', async () => {
      const env = envelope()
      reset()

      for (let i = 0; i < 200; i++) await env.encrypt({ plaintext: Buffer.from(`message ${i}`), encryptionContext: { app: 'test' } })

      assert.equal(counts.wraps, 1)
    })

    it('never shares a data key across contexts or key ids', async () => {
      await local.kms.createKey({ alias: 'alias/unit/second' })
      const env = envelope()
      reset()

      await env.encrypt({ plaintext: Buffer.from('1'), encryptionContext: { app: 'a' } })
      await env.encrypt({ plaintext: Buffer.from('2'), encryptionContext: { app: 'b' } })
      await env.encrypt({ plaintext: Buffer.from('3'), encryptionContext: { app: 'a' } })
      await env.encrypt({ keyId: 'alias/unit/second', plaintext: Buffer.from('4'), encryptionContext: { app: 'a' } })

      assert.equal(counts.wraps, 3)
    })

    it('makes a new data key after maxMessages messages or maxBytes bytes', async () => {
      const byMessages = envelope({ dataKeyCaching: { maxAgeSeconds: 300, maxMessages: 5, maxBytes: 1 << 30 } })
      const byBytes = envelope({ dataKeyCaching: { maxAgeSeconds: 300, maxMessages: 1000, maxBytes: 100 } })
      reset()
      for (let i = 0; i < 12; i++) await byMessages.encrypt({ plaintext: Buffer.from('x') })
      const afterMessages = counts.wraps
      reset()
      for (let i = 0; i < 6; i++) await byBytes.encrypt({ plaintext: Buffer.alloc(40) })

      assert.equal(afterMessages, 3)
      assert.equal(counts.wraps, 3)
    })

    it('makes a new data key once the cached one is older than maxAge', async () => {
      const env = envelope({ dataKeyCaching: { maxAgeSeconds: 60, maxMessages: 1000, maxBytes: 1 << 30 } })
      reset()
      const realNow = Date.now
      await env.encrypt({ plaintext: Buffer.from('x') })
      await env.encrypt({ plaintext: Buffer.from('x') })
      try {
        Date.now = () => realNow() + 61_000
        await env.encrypt({ plaintext: Buffer.from('x') })
      } finally {
        Date.now = realNow
      }

      assert.equal(counts.wraps, 2)
    })

    it('wraps a data key per message when turned off', async () => {
      const env = envelope({ dataKeyCaching: false })
      reset()

      for (let i = 0; i < 20; i++) await env.encrypt({ plaintext: Buffer.from('x'), encryptionContext: { app: 'test' } })

      assert.equal(counts.wraps, 20)
    })

    it('unwraps a data key once for many messages made with it', async () => {
      const env = envelope()
      const messages = []
      for (let i = 0; i < 20; i++) messages.push((await env.encrypt({ plaintext: Buffer.from(`m${i}`) })).ciphertext)
      reset()

      for (const [i, ciphertext] of messages.entries()) assert.equal((await env.decrypt({ ciphertext })).plaintext.toString(), `m${i}`)

      assert.equal(counts.unwraps, 1)
    })
  })

  describe('interoperability', () => {
    it('makes messages the ESDK opens with a raw AES keyring over the key file, no agent involved', async () => {
      const { ciphertext } = await envelope().encrypt({ plaintext: Buffer.from('portable'), encryptionContext: { app: 'test' } })
      const keyring = rawAesKeyring(defaultArn, await materialOf(defaultArn))

      const { plaintext, messageHeader } = await esdk.decrypt(keyring, ciphertext)

      assert.equal(plaintext.toString(), 'portable')
      assert.equal(messageHeader.encryptionContext.app, 'test')
      assert.equal(messageHeader.encryptedDataKeys[0]?.providerId, LOCAL_KEY_NAMESPACE)
    })

    it('opens messages the ESDK made with such a keyring (its default, signed suite)', async () => {
      const keyring = rawAesKeyring(defaultArn, await materialOf(defaultArn))
      const { result } = await esdk.encrypt(keyring, Buffer.from('from elsewhere'), { encryptionContext: { origin: 'esdk' } })

      const decrypted = await envelope().decrypt({ ciphertext: result, encryptionContext: { origin: 'esdk' } })

      assert.equal(decrypted.plaintext.toString(), 'from elsewhere')
      assert.deepEqual(decrypted.keyIds, [defaultArn])
    })

    it('refuses messages naming more than 10 data keys (each could cost a KMS call)', async () => {
      const material = await materialOf(defaultArn)
      const children = Array.from({ length: 10 }, (_, i) => rawAesKeyring(`${defaultArn}-${i}`, material))
      const keyring = new MultiKeyringNode({ generator: rawAesKeyring(defaultArn, material), children })
      const { result } = await esdk.encrypt(keyring, Buffer.from('x'))

      const error = await failure(envelope().decrypt({ ciphertext: result }))

      assert.equal(error.code, 'InvalidCiphertextException')
    })
  })

  /** A key's material as the key file holds it: what someone without the agent would use. */
  async function materialOf (arn: string): Promise<Buffer> {
    const file = JSON.parse(await readFile(local.kms.keyFile, 'utf8')) as { keys: Array<{ id: string, material: string }> }
    const key = file.keys.find((k) => arn.endsWith(`key/${k.id}`))
    assert.ok(key, 'key in the key file')
    return Buffer.from(key.material, 'base64')
  }
})

describe('keyIdOf', () => {
  it('reads the key ARN of a KMS data key and the key name of a raw AES one', async () => {
    const kms = new EncryptedDataKey({ providerId: 'aws-kms', providerInfo: 'arn:aws:kms:us-east-1:111122223333:key/k', encryptedDataKey: new Uint8Array(1) })
    const keyring = rawAesKeyring('arn:aws:kms:us-east-1:000000000000:key/local', Buffer.alloc(32, 7))
    const { messageHeader } = await esdk.encrypt(keyring, Buffer.from('x'))

    assert.equal(keyIdOf(kms), 'arn:aws:kms:us-east-1:111122223333:key/k')
    assert.equal(keyIdOf(messageHeader.encryptedDataKeys[0]!), 'arn:aws:kms:us-east-1:000000000000:key/local')
  })

  it('names no key for data keys of another shape', () => {
    const other = new EncryptedDataKey({ providerId: 'raw-rsa', providerInfo: 'k', rawInfo: Buffer.from('k'), encryptedDataKey: new Uint8Array(1) })
    assert.equal(keyIdOf(other), undefined)
  })
})
