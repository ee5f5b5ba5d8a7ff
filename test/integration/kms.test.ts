import assert from 'node:assert/strict'
import { afterEach, beforeEach, describe, it } from 'node:test'

import { DecryptCommand, EncryptCommand } from '@aws-sdk/client-kms'

import {
  b64, json, openAwsKmsApp, openLocalKmsApp, type AwsKmsApp, type KmsAppOptions, type LocalKmsApp
} from '../support/kms-app.js'

const SECRET_TEXT = 'kms plaintext Zq81xK'

/** The body holds neither the plaintext nor its base64. */
function assertNoPlaintext (body: string, plaintext = SECRET_TEXT): void {
  assert.ok(!body.includes(plaintext), 'plaintext in the body')
  assert.ok(!body.includes(b64(plaintext)), 'base64 plaintext in the body')
}

describe('POST /kms/* on the local provider', () => {
  let h: LocalKmsApp
  const open = async (options?: KmsAppOptions): Promise<LocalKmsApp> => {
    await h?.close()
    h = await openLocalKmsApp(options)
    return h
  }
  beforeEach(async () => { h = await openLocalKmsApp() })
  afterEach(async () => { await h.close() })

  it('encrypts and decrypts, with the key from the ciphertext or named in KeyId', async () => {
    const encrypted = await h.post('/kms/encrypt', { KeyId: 'alias/secrets-agent/default', Plaintext: b64(SECRET_TEXT), EncryptionContext: { app: 'test' } })
    const { CiphertextBlob, KeyId } = json(encrypted)

    const plain = await h.post('/kms/decrypt', { CiphertextBlob, EncryptionContext: { app: 'test' } })
    const named = await h.post('/kms/decrypt', { CiphertextBlob, EncryptionContext: { app: 'test' }, KeyId: 'alias/secrets-agent/default' })

    assert.equal(encrypted.statusCode, 200)
    assert.equal(encrypted.headers['content-type'], 'application/json; charset=utf-8')
    assert.match(String(KeyId), /^arn:aws:kms:us-east-1:000000000000:key\/[0-9a-f-]{36}$/)
    assert.deepEqual(Object.keys(json(encrypted)).sort(), ['CiphertextBlob', 'EncryptionAlgorithm', 'KeyId'])
    assert.equal(json(encrypted).EncryptionAlgorithm, 'SYMMETRIC_DEFAULT')
    assertNoPlaintext(encrypted.body)
    for (const response of [plain, named]) {
      assert.equal(response.statusCode, 200)
      assert.deepEqual(json(response), { Plaintext: b64(SECRET_TEXT), KeyId, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' })
    }
  })

  it('answers 400 InvalidCiphertextException, with no plaintext, for the wrong context or altered bytes', async () => {
    const { CiphertextBlob } = json(await h.post('/kms/encrypt', { KeyId: 'alias/secrets-agent/default', Plaintext: b64(SECRET_TEXT), EncryptionContext: { app: 'test' } }))
    const tampered = Buffer.from(String(CiphertextBlob), 'base64')
    tampered[tampered.length - 1]! ^= 1

    const answers = await Promise.all([
      h.post('/kms/decrypt', { CiphertextBlob, EncryptionContext: { app: 'other' } }),
      h.post('/kms/decrypt', { CiphertextBlob }),
      h.post('/kms/decrypt', { CiphertextBlob: tampered.toString('base64'), EncryptionContext: { app: 'test' } })
    ])

    for (const answer of answers) {
      assert.equal(answer.statusCode, 400)
      assert.equal(json(answer).__type, 'InvalidCiphertextException')
      assertNoPlaintext(answer.body)
    }
  })

  it('answers 404 for an unknown key and 403 for a disabled one', async () => {
    const arn = await h.local.kms.createKey({ alias: 'alias/it/disabled' })
    const { CiphertextBlob } = json(await h.post('/kms/encrypt', { KeyId: arn, Plaintext: b64(SECRET_TEXT) }))
    await h.local.kms.setEnabled(arn, false)

    const unknown = await h.post('/kms/encrypt', { KeyId: 'alias/it/none', Plaintext: b64('x') })
    const disabledEncrypt = await h.post('/kms/encrypt', { KeyId: arn, Plaintext: b64('x') })
    const disabledDecrypt = await h.post('/kms/decrypt', { CiphertextBlob })
    const disabledDataKey = await h.post('/kms/generate-data-key', { KeyId: arn })

    assert.equal(unknown.statusCode, 404)
    assert.equal(json(unknown).__type, 'NotFoundException')
    for (const answer of [disabledEncrypt, disabledDecrypt, disabledDataKey]) {
      assert.equal(answer.statusCode, 403)
      assert.equal(json(answer).__type, 'DisabledException')
    }
    assertNoPlaintext(disabledDecrypt.body)
  })

  it('generates data keys of KeySpec or NumberOfBytes (AES_256 when neither), whose ciphertext decrypts to the key', async () => {
    const spec128 = json(await h.post('/kms/generate-data-key', { KeyId: 'alias/secrets-agent/default', KeySpec: 'AES_128', EncryptionContext: { purpose: 'file' } }))
    const bytes64 = json(await h.post('/kms/generate-data-key', { KeyId: 'alias/secrets-agent/default', NumberOfBytes: 64 }))
    const neither = json(await h.post('/kms/generate-data-key', { KeyId: 'alias/secrets-agent/default' }))
    const both = await h.post('/kms/generate-data-key', { KeyId: 'alias/secrets-agent/default', KeySpec: 'AES_256', NumberOfBytes: 32 })
    const opened = json(await h.post('/kms/decrypt', { CiphertextBlob: spec128.CiphertextBlob, EncryptionContext: { purpose: 'file' } }))

    assert.deepEqual(Object.keys(spec128).sort(), ['CiphertextBlob', 'KeyId', 'Plaintext'])
    assert.equal(Buffer.from(String(spec128.Plaintext), 'base64').length, 16)
    assert.equal(Buffer.from(String(bytes64.Plaintext), 'base64').length, 64)
    assert.equal(Buffer.from(String(neither.Plaintext), 'base64').length, 32)
    assert.equal(opened.Plaintext, spec128.Plaintext)
    assert.equal(both.statusCode, 400)
  })

  it('takes 4096 bytes of plaintext and refuses 4097 or none with a 400, before any provider call', async () => {
    let calls = 0
    const encrypt = h.local.encrypt.bind(h.local)
    h.local.encrypt = async (input) => { calls += 1; return encrypt(input) }

    const max = await h.post('/kms/encrypt', { KeyId: 'alias/secrets-agent/default', Plaintext: b64(Buffer.alloc(4096, 1)) })
    const over = await h.post('/kms/encrypt', { KeyId: 'alias/secrets-agent/default', Plaintext: b64(Buffer.alloc(4097, 1)) })
    const empty = await h.post('/kms/encrypt', { KeyId: 'alias/secrets-agent/default', Plaintext: '' })

    assert.equal(max.statusCode, 200)
    assert.equal(over.statusCode, 400)
    assert.match(String(json(over).message), /4096 bytes/)
    assert.equal(empty.statusCode, 400)
    assert.equal(calls, 1)
  })

  it('refuses what is not base64 with a 400', async () => {
    const answers = await Promise.all([
      h.post('/kms/encrypt', { KeyId: 'alias/secrets-agent/default', Plaintext: 'not base64!' }),
      h.post('/kms/encrypt', { KeyId: 'alias/secrets-agent/default', Plaintext: 'abc' }),
      h.post('/kms/encrypt', { KeyId: 'alias/secrets-agent/default', Plaintext: 'ab=c' }),
      h.post('/kms/decrypt', { CiphertextBlob: '%%%%' })
    ])

    for (const answer of answers) {
      assert.equal(answer.statusCode, 400)
      assert.equal(json(answer).__type, 'ValidationException')
    }
  })

  it('refuses unknown fields, a missing KeyId and an EncryptionContext that is not an object of strings', async () => {
    const answers = await Promise.all([
      h.post('/kms/encrypt', { KeyId: 'alias/secrets-agent/default', Plaintext: b64('x'), Extra: 1 }),
      h.post('/kms/encrypt', { Plaintext: b64('x') }),
      h.post('/kms/encrypt', { KeyId: 'alias/secrets-agent/default', Plaintext: b64('x'), EncryptionContext: { a: { b: 'c' } } }),
      h.post('/kms/generate-data-key', { KeyId: 'alias/secrets-agent/default', NumberOfBytes: 2048 }),
      h.post('/kms/encrypt', '{"KeyId": ')
    ])

    for (const answer of answers) assert.equal(answer.statusCode, 400, answer.body)
    assert.match(String(json(answers[0]!).message), /Unknown field "Extra"/)
  })

  it('refuses a context with a lone surrogate, which would read as another context, and takes an emoji', async () => {
    const lone = await Promise.all([
      h.post('/kms/encrypt', { KeyId: 'alias/secrets-agent/default', Plaintext: b64('x'), EncryptionContext: { k: '\ud800' } }),
      h.post('/kms/encrypt', { KeyId: 'alias/secrets-agent/default', Plaintext: b64('x'), EncryptionContext: { '\udfff': 'v' } }),
      h.post('/envelope/encrypt', { Plaintext: b64('x'), EncryptionContext: { k: 'a\udbffb' } })
    ])
    const emoji = await h.post('/kms/encrypt', { KeyId: 'alias/secrets-agent/default', Plaintext: b64('x'), EncryptionContext: { k: '\u{1F511}' } })
    const opened = await h.post('/kms/decrypt', { CiphertextBlob: json(emoji).CiphertextBlob, EncryptionContext: { k: '\u{1F511}' } })

    for (const answer of lone) {
      assert.equal(answer.statusCode, 400, answer.body)
      assert.match(String(json(answer).message), /lone surrogate/)
    }
    assert.equal(opened.statusCode, 200, opened.body)
  })

  it('refuses fields of the wrong JSON type, as KMS does, rather than converting them', async () => {
    const answers = await Promise.all([
      h.post('/kms/encrypt', { KeyId: 'alias/secrets-agent/default', Plaintext: b64('x'), EncryptionContext: { a: 1 } }),
      h.post('/kms/encrypt', { KeyId: ['alias/secrets-agent/default'], Plaintext: b64('x') }),
      h.post('/kms/generate-data-key', { KeyId: 'alias/secrets-agent/default', NumberOfBytes: '32' }),
      h.post('/kms/generate-data-key', { KeyId: 'alias/secrets-agent/default', KeySpec: ['AES_256'] }),
      h.post('/envelope/encrypt', { Plaintext: b64('x'), EncryptionContext: { a: true } })
    ])

    for (const answer of answers) {
      assert.equal(answer.statusCode, 400, answer.body)
      assert.equal(json(answer).__type, 'ValidationException')
    }
  })

  it('answers 413 for a body over 64 KiB, 415 for a body that is not JSON, 401 without the token', async () => {
    const big = await h.post('/kms/encrypt', { KeyId: 'alias/secrets-agent/default', Plaintext: 'A'.repeat(70_000) })
    const text = await h.post('/kms/encrypt', 'KeyId=alias/secrets-agent/default', { 'content-type': 'text/plain' })
    const form = await h.post('/kms/decrypt', 'CiphertextBlob=x', { 'content-type': 'application/x-www-form-urlencoded' })
    const anonymous = await h.app.inject({ method: 'POST', url: '/kms/encrypt', headers: { 'content-type': 'application/json' }, payload: '{}' })

    assert.equal(big.statusCode, 413)
    assert.equal(json(big).__type, 'PayloadTooLargeException')
    for (const answer of [text, form]) {
      assert.equal(answer.statusCode, 415)
      assert.equal(json(answer).__type, 'UnsupportedMediaTypeException')
    }
    assert.equal(anonymous.statusCode, 401)
  })

  it('refuses keys outside [allow] kms_keys with 403 and a warning naming the key, never the plaintext', async () => {
    await open({ allow: { kmsKeys: ['alias/app/*'] } })
    const appArn = await h.local.kms.createKey({ alias: 'alias/app/orders' })
    await h.local.kms.createKey({ alias: 'alias/other' })

    const refused = await h.post('/kms/encrypt', { KeyId: 'alias/other', Plaintext: b64(SECRET_TEXT) })
    const refusedDataKey = await h.post('/kms/generate-data-key', { KeyId: 'arn:aws:kms:us-east-1:000000000000:alias/other' })
    const allowed = await h.post('/kms/encrypt', { KeyId: 'alias/app/orders', Plaintext: b64(SECRET_TEXT) })
    const { CiphertextBlob } = json(allowed)
    // Without KeyId the key comes out of the ciphertext as its ARN, which alias/app/* does not match.
    const byArn = await h.post('/kms/decrypt', { CiphertextBlob })
    const byAlias = await h.post('/kms/decrypt', { CiphertextBlob, KeyId: 'alias/app/orders' })
    const garbage = await h.post('/kms/decrypt', { CiphertextBlob: b64('not a ciphertext at all') })
    const otherBlob = b64((await h.local.kms.encrypt({ keyId: 'alias/other', plaintext: Buffer.from(SECRET_TEXT) })).ciphertextBlob)
    await h.local.kms.setEnabled('alias/other', false)
    const refusedAndDisabled = await h.post('/kms/decrypt', { CiphertextBlob: otherBlob })
    const disabledByKeyId = await h.post('/kms/decrypt', { CiphertextBlob: otherBlob, KeyId: 'alias/app/orders' })

    for (const answer of [refused, refusedDataKey]) {
      assert.equal(answer.statusCode, 403)
      assert.equal(json(answer).__type, 'AccessDeniedException')
      assertNoPlaintext(answer.body)
    }
    // KMS opened it before the key was known: the refusal must not tell a valid ciphertext apart.
    for (const answer of [byArn, refusedAndDisabled]) {
      assert.equal(answer.statusCode, 400)
      assert.equal(answer.body, garbage.body)
      assertNoPlaintext(answer.body)
    }
    assert.equal(json(garbage).__type, 'InvalidCiphertextException')
    // Naming an allowed key gets KMS's precise answer: this ciphertext is not that key's.
    assert.equal(json(disabledByKeyId).__type, 'IncorrectKeyException')
    assert.equal(allowed.statusCode, 200)
    assert.equal(byAlias.statusCode, 200)
    const warnings = h.logs().map((line) => JSON.parse(line) as Record<string, unknown>).filter((entry) => entry.level === 40)
    assert.deepEqual(warnings.map((w) => w.keyIds), [['alias/other'], ['arn:aws:kms:us-east-1:000000000000:alias/other'], [appArn], undefined])
    assert.equal(warnings[3]?.msg, 'upstream refused access')
    assert.ok(warnings.slice(0, 3).every((w) => w.msg === 'KMS key refused by the allow-list'))
    for (const line of h.logs()) assertNoPlaintext(line)
  })
})

describe('POST /kms/* on the aws provider (fake AWS)', () => {
  let h: AwsKmsApp
  beforeEach(async () => { h = await openAwsKmsApp() })
  afterEach(async () => { await h.close() })

  it('makes ciphertexts KMS Decrypt opens directly, and opens what KMS Encrypt made', async () => {
    const keyArn = h.fake.createKey({ alias: 'app' })

    const viaAgent = json(await h.post('/kms/encrypt', { KeyId: 'alias/app', Plaintext: b64(SECRET_TEXT), EncryptionContext: { app: 'test' } }))
    const direct = await h.kms.send(new DecryptCommand({ CiphertextBlob: Buffer.from(String(viaAgent.CiphertextBlob), 'base64'), EncryptionContext: { app: 'test' } }))
    const made = await h.kms.send(new EncryptCommand({ KeyId: keyArn, Plaintext: Buffer.from(SECRET_TEXT), EncryptionContext: { app: 'sdk' } }))
    const opened = await h.post('/kms/decrypt', { CiphertextBlob: b64(made.CiphertextBlob!), EncryptionContext: { app: 'sdk' } })

    assert.equal(viaAgent.KeyId, keyArn)
    assert.equal(Buffer.from(direct.Plaintext!).toString(), SECRET_TEXT)
    assert.equal(opened.statusCode, 200)
    assert.deepEqual(json(opened), { Plaintext: b64(SECRET_TEXT), KeyId: keyArn, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' })
  })

  it('generates data keys whose ciphertext KMS decrypts to the plaintext given', async () => {
    const keyArn = h.fake.createKey()

    const generated = json(await h.post('/kms/generate-data-key', { KeyId: keyArn, KeySpec: 'AES_256', EncryptionContext: { k: 'v' } }))
    const direct = await h.kms.send(new DecryptCommand({ CiphertextBlob: Buffer.from(String(generated.CiphertextBlob), 'base64'), EncryptionContext: { k: 'v' } }))

    assert.equal(generated.KeyId, keyArn)
    assert.equal(b64(direct.Plaintext!), generated.Plaintext)
  })

  it('answers 404 for an unknown key, 403 for a disabled one, 400 for the wrong context, never with plaintext', async () => {
    const keyArn = h.fake.createKey({ alias: 'soon-disabled' })
    const { CiphertextBlob } = json(await h.post('/kms/encrypt', { KeyId: keyArn, Plaintext: b64(SECRET_TEXT), EncryptionContext: { app: 'test' } }))

    const wrongContext = await h.post('/kms/decrypt', { CiphertextBlob, EncryptionContext: { app: 'other' } })
    const unknown = await h.post('/kms/encrypt', { KeyId: 'alias/none', Plaintext: b64('x') })
    h.fake.setKeyEnabled(keyArn, false)
    const disabled = await h.post('/kms/decrypt', { CiphertextBlob, EncryptionContext: { app: 'test' } })

    assert.equal(wrongContext.statusCode, 400)
    assert.equal(json(wrongContext).__type, 'InvalidCiphertextException')
    assert.equal(unknown.statusCode, 404)
    assert.equal(disabled.statusCode, 403)
    for (const answer of [wrongContext, unknown, disabled]) {
      assertNoPlaintext(answer.body)
      assert.ok(!answer.body.includes('123456789012'), 'no account id the caller did not send')
    }
  })
})
