import assert from 'node:assert/strict'
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { describe, it } from 'node:test'
import type { TestContext } from 'node:test'

import { LocalKms } from '../../src/providers/local/kms.js'
import type { EncryptionContext } from '../../src/providers/types.js'

const REGION = 'eu-west-1'
const ACCOUNT = '000000000000'
const KEY_ARN = /^arn:aws:kms:eu-west-1:000000000000:key\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const HEADER_BYTES = 1 + 16 + 12 + 16

const invalidCiphertext = { name: 'InvalidRequestError', code: 'InvalidCiphertextException' }
const disabled = { name: 'AccessDeniedError', code: 'DisabledException' }
const notFound = { name: 'NotFoundError', code: 'NotFoundException' }
const validation = { name: 'InvalidRequestError', code: 'ValidationException' }

async function tempKeyFile (t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'secrets-agent-kms-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  return join(dir, 'keys.json')
}

async function openKms (t: TestContext, keyFile?: string): Promise<LocalKms> {
  return await LocalKms.open({ keyFile: keyFile ?? await tempKeyFile(t), region: REGION })
}

function mode (stats: { mode: number }): number {
  return stats.mode & 0o777
}

const text = (value: string): Uint8Array => Buffer.from(value, 'utf8')

describe('LocalKms key file', () => {
  it('is created on first use with mode 0600 and one key behind both default aliases', async (t) => {
    const keyFile = await tempKeyFile(t)

    const kms = await openKms(t, keyFile)

    assert.equal(mode(await stat(keyFile)), 0o600)
    const file = JSON.parse(await readFile(keyFile, 'utf8'))
    assert.equal(file.version, 1)
    assert.equal(file.keys.length, 1)
    const [key] = file.keys
    assert.equal(Buffer.from(key.material, 'base64').length, 32)
    assert.equal(key.enabled, true)
    assert.ok(!Number.isNaN(Date.parse(key.createdDate)))
    assert.deepEqual(file.aliases, { 'alias/aws/ssm': key.id, 'alias/secrets-agent/default': key.id })
    assert.equal(kms.defaultKeyArn, `arn:aws:kms:${REGION}:${ACCOUNT}:key/${key.id}`)
    assert.deepEqual(kms.listKeys(), [{ arn: kms.defaultKeyArn, aliases: ['alias/aws/ssm', 'alias/secrets-agent/default'], enabled: true }])
    assert.deepEqual(await readdir(dirname(keyFile)), ['keys.json'])
  })

  it('is created once when several instances open it at the same time', async (t) => {
    const keyFile = await tempKeyFile(t)

    const instances = await Promise.all([1, 2, 3, 4].map(() => openKms(t, keyFile)))

    const arns = new Set(instances.map((kms) => kms.defaultKeyArn))
    assert.equal(arns.size, 1)
    assert.deepEqual(await readdir(dirname(keyFile)), ['keys.json'])
  })

  it('is created with mode 0600 whatever the umask', { skip: process.platform === 'win32' }, async (t) => {
    const keyFile = await tempKeyFile(t)
    const umask = process.umask(0o000)
    t.after(() => { process.umask(umask) })

    await openKms(t, keyFile)

    assert.equal(mode(await stat(keyFile)), 0o600)
  })

  it('is tightened to mode 0600 when group or others may read it, content unchanged', { skip: process.platform === 'win32' }, async (t) => {
    const keyFile = await tempKeyFile(t)
    await openKms(t, keyFile)
    const before = await readFile(keyFile, 'utf8')
    await chmod(keyFile, 0o644)

    await openKms(t, keyFile)

    assert.equal(mode(await stat(keyFile)), 0o600)
    assert.equal(await readFile(keyFile, 'utf8'), before)
  })

  it('keeps mode 0600 after a key is added', async (t) => {
    const keyFile = await tempKeyFile(t)
    const kms = await openKms(t, keyFile)

    await kms.createKey({ alias: 'alias/app', description: 'for the app' })

    assert.equal(mode(await stat(keyFile)), 0o600)
    const file = JSON.parse(await readFile(keyFile, 'utf8'))
    assert.equal(file.keys.length, 2)
    assert.equal(file.keys[1].description, 'for the app')
  })

  it('fails to open with a clear message when it is not JSON, and is left untouched', async (t) => {
    const keyFile = await tempKeyFile(t)
    await writeFile(keyFile, '{"version": 1, "keys": [', { mode: 0o644 })

    await assert.rejects(openKms(t, keyFile), (error: Error) => {
      assert.equal(error.name, 'KeyFileError')
      assert.match(error.message, /keys\.json is not valid JSON/)
      assert.match(error.message, /left untouched/)
      return true
    })

    assert.equal(await readFile(keyFile, 'utf8'), '{"version": 1, "keys": [')
    assert.equal(mode(await stat(keyFile)), 0o644)
  })

  it('fails to open when a key is malformed, naming the field and not quoting the material', async (t) => {
    const keyFile = await tempKeyFile(t)
    const content = JSON.stringify({
      version: 1,
      keys: [{ id: '6f1c0c3e-8a43-4f3a-9a53-1f1a2b3c4d5e', material: Buffer.alloc(16, 7).toString('base64'), enabled: true, createdDate: '2024-01-01T00:00:00.000Z' }],
      aliases: {}
    })
    await writeFile(keyFile, content)

    await assert.rejects(openKms(t, keyFile), (error: Error) => {
      assert.match(error.message, /keys\[0\]\.material must hold 32 bytes/)
      assert.ok(!error.message.includes(Buffer.alloc(16, 7).toString('base64')))
      return true
    })
    assert.equal(await readFile(keyFile, 'utf8'), content)
  })

  it('fails to open when an alias names no key', async (t) => {
    const keyFile = await tempKeyFile(t)
    await writeFile(keyFile, JSON.stringify({ version: 1, keys: [], aliases: { 'alias/aws/ssm': '6f1c0c3e-8a43-4f3a-9a53-1f1a2b3c4d5e' } }))

    await assert.rejects(openKms(t, keyFile), /alias\/aws\/ssm must name the id of a key/)
  })

  it('is shared: a second instance decrypts what the first encrypted', async (t) => {
    const keyFile = await tempKeyFile(t)
    const first = await openKms(t, keyFile)
    const second = await openKms(t, keyFile)
    const { ciphertextBlob } = await first.encrypt({ keyId: 'alias/aws/ssm', plaintext: text('shared'), encryptionContext: { app: 'x' } })

    const result = await second.decrypt({ ciphertextBlob, encryptionContext: { app: 'x' } })

    assert.equal(Buffer.from(result.plaintext).toString(), 'shared')
  })

  it('is re-read by reload(), so a key another instance added becomes usable', async (t) => {
    const keyFile = await tempKeyFile(t)
    const agent = await openKms(t, keyFile)
    const cli = await openKms(t, keyFile)
    const arn = await cli.createKey({ alias: 'alias/from-cli' })
    await assert.rejects(agent.encrypt({ keyId: 'alias/from-cli', plaintext: text('x') }), notFound)

    await agent.reload()

    const result = await agent.encrypt({ keyId: 'alias/from-cli', plaintext: text('x') })
    assert.equal(result.keyId, arn)
  })

  it('keeps keys another instance added when this one writes', async (t) => {
    const keyFile = await tempKeyFile(t)
    const agent = await openKms(t, keyFile)
    const cli = await openKms(t, keyFile)

    await cli.createKey({ alias: 'alias/one' })
    await agent.createKey({ alias: 'alias/two' })

    await cli.reload()
    const aliases = cli.listKeys().flatMap((key) => key.aliases)
    assert.ok(aliases.includes('alias/one') && aliases.includes('alias/two'))
  })

  it('loses no key when one instance creates several at once', async (t) => {
    const keyFile = await tempKeyFile(t)
    const kms = await openKms(t, keyFile)

    const arns = await Promise.all([1, 2, 3, 4, 5].map((n) => kms.createKey({ alias: `alias/k${n}` })))

    const reopened = await openKms(t, keyFile)
    assert.deepEqual(reopened.listKeys().map((key) => key.arn).slice(1).sort(), [...arns].sort())
  })

  it('refuses an alias that is taken or reserved', async (t) => {
    const kms = await openKms(t)
    await kms.createKey({ alias: 'alias/app' })

    await assert.rejects(kms.createKey({ alias: 'alias/app' }), { name: 'InvalidRequestError', code: 'AlreadyExistsException' })
    await assert.rejects(kms.createKey({ alias: 'alias/aws/other' }), validation)
    await assert.rejects(kms.createKey({ alias: 'app' }), validation)
  })
})

describe('LocalKms encrypt and decrypt', () => {
  it('round-trips under a key named by uuid, key ARN, alias and alias ARN', async (t) => {
    const kms = await openKms(t)
    const arn = kms.defaultKeyArn
    const uuid = arn.slice(arn.lastIndexOf('/') + 1)
    const names = [uuid, arn, 'alias/aws/ssm', `arn:aws:kms:${REGION}:${ACCOUNT}:alias/aws/ssm`]

    for (const keyId of names) {
      const encrypted = await kms.encrypt({ keyId, plaintext: text(`under ${keyId}`) })
      const decrypted = await kms.decrypt({ ciphertextBlob: encrypted.ciphertextBlob })
      const named = await kms.decrypt({ ciphertextBlob: encrypted.ciphertextBlob, keyId })

      assert.match(encrypted.keyId, KEY_ARN)
      assert.equal(encrypted.keyId, arn)
      assert.equal(encrypted.encryptionAlgorithm, 'SYMMETRIC_DEFAULT')
      assert.equal(decrypted.keyId, arn)
      assert.equal(decrypted.encryptionAlgorithm, 'SYMMETRIC_DEFAULT')
      assert.equal(Buffer.from(decrypted.plaintext).toString(), `under ${keyId}`)
      assert.equal(Buffer.from(named.plaintext).toString(), `under ${keyId}`)
    }
  })

  it('writes the configured account into ARNs', async (t) => {
    const kms = await LocalKms.open({ keyFile: await tempKeyFile(t), region: 'us-east-2', accountId: '123456789012' })

    assert.match(kms.defaultKeyArn, /^arn:aws:kms:us-east-2:123456789012:key\//)
    await kms.encrypt({ keyId: 'arn:aws:kms:us-east-2:123456789012:alias/aws/ssm', plaintext: text('x') })
  })

  it('answers NotFoundException for a key, alias or ARN it does not have', async (t) => {
    const kms = await openKms(t)
    const uuid = kms.defaultKeyArn.slice(kms.defaultKeyArn.lastIndexOf('/') + 1)
    const unknown = [
      '00000000-0000-4000-8000-000000000000',
      'alias/nope',
      `arn:aws:kms:${REGION}:111111111111:key/${uuid}`,
      `arn:aws:kms:${REGION}:111111111111:alias/aws/ssm`,
      `arn:aws:s3:${REGION}:${ACCOUNT}:key/${uuid}`,
      `key/${uuid}`
    ]

    for (const keyId of unknown) {
      await assert.rejects(kms.encrypt({ keyId, plaintext: text('x') }), notFound, keyId)
    }
  })

  it('finds a key by its key or alias ARN in any region: the key file is not regional', async (t) => {
    const kms = await openKms(t)
    const uuid = kms.defaultKeyArn.slice(kms.defaultKeyArn.lastIndexOf('/') + 1)

    for (const keyId of [`arn:aws:kms:us-east-1:${ACCOUNT}:key/${uuid}`, `arn:aws:kms:ap-south-2:${ACCOUNT}:alias/aws/ssm`]) {
      const { keyId: used } = await kms.encrypt({ keyId, plaintext: text('x') })
      assert.equal(used, kms.defaultKeyArn, keyId)
    }
  })

  it('makes a different ciphertext each time for the same plaintext', async (t) => {
    const kms = await openKms(t)

    const a = await kms.encrypt({ keyId: 'alias/aws/ssm', plaintext: text('same') })
    const b = await kms.encrypt({ keyId: 'alias/aws/ssm', plaintext: text('same') })

    assert.notDeepEqual(a.ciphertextBlob, b.ciphertextBlob)
  })

  it('binds the encryption context: wrong, missing or extra pairs do not decrypt', async (t) => {
    const kms = await openKms(t)
    const context = { purpose: 'test', tenant: 'a' }
    const { ciphertextBlob } = await kms.encrypt({ keyId: 'alias/aws/ssm', plaintext: text('bound'), encryptionContext: context })

    const reordered = await kms.decrypt({ ciphertextBlob, encryptionContext: { tenant: 'a', purpose: 'test' } })
    assert.equal(Buffer.from(reordered.plaintext).toString(), 'bound')
    const wrong: Array<EncryptionContext | undefined> = [
      { purpose: 'test', tenant: 'b' },
      { purpose: 'test' },
      undefined,
      {},
      { ...context, extra: 'pair' }
    ]
    for (const encryptionContext of wrong) {
      await assert.rejects(kms.decrypt({ ciphertextBlob, encryptionContext }), invalidCiphertext, JSON.stringify(encryptionContext))
    }
  })

  it('treats no context and an empty context alike', async (t) => {
    const kms = await openKms(t)
    const { ciphertextBlob } = await kms.encrypt({ keyId: 'alias/aws/ssm', plaintext: text('x') })

    const result = await kms.decrypt({ ciphertextBlob, encryptionContext: {} })

    assert.equal(Buffer.from(result.plaintext).toString(), 'x')
  })

  it('tells { a: "b=c" } apart from { "a=b": "c" }', async (t) => {
    const kms = await openKms(t)
    const { ciphertextBlob } = await kms.encrypt({ keyId: 'alias/aws/ssm', plaintext: text('x'), encryptionContext: { a: 'b=c' } })

    await assert.rejects(kms.decrypt({ ciphertextBlob, encryptionContext: { 'a=b': 'c' } }), invalidCiphertext)
    await assert.rejects(kms.decrypt({ ciphertextBlob, encryptionContext: { ab: 'c' } }), invalidCiphertext)
  })

  it('refuses a ciphertext with any byte flipped, in every region', async (t) => {
    const kms = await openKms(t)
    const { ciphertextBlob } = await kms.encrypt({ keyId: 'alias/aws/ssm', plaintext: text('tamper with me'), encryptionContext: { k: 'v' } })
    const regions: Array<[string, number, number]> = [
      ['version', 0, 1], ['key id', 1, 17], ['iv', 17, 29], ['tag', 29, 45], ['body', 45, ciphertextBlob.length]
    ]

    for (const [region, start, end] of regions) {
      for (let i = start; i < end; i++) {
        const tampered = Buffer.from(ciphertextBlob)
        tampered[i] = (tampered[i] ?? 0) ^ 0x01
        await assert.rejects(kms.decrypt({ ciphertextBlob: tampered, encryptionContext: { k: 'v' } }), invalidCiphertext, `${region} byte ${i}`)
      }
    }
  })

  it('refuses a ciphertext truncated to any length up to the header, or missing its last byte', async (t) => {
    const kms = await openKms(t)
    const { ciphertextBlob } = await kms.encrypt({ keyId: 'alias/aws/ssm', plaintext: text('truncate me') })

    for (let length = 0; length <= HEADER_BYTES; length++) {
      await assert.rejects(kms.decrypt({ ciphertextBlob: ciphertextBlob.subarray(0, length) }), invalidCiphertext, `length ${length}`)
    }
    await assert.rejects(kms.decrypt({ ciphertextBlob: ciphertextBlob.subarray(0, ciphertextBlob.length - 1) }), invalidCiphertext)
  })

  it('answers InvalidCiphertextException for a ciphertext made under a key it does not have', async (t) => {
    const other = await openKms(t)
    const kms = await openKms(t)
    const { ciphertextBlob } = await other.encrypt({ keyId: 'alias/aws/ssm', plaintext: text('elsewhere') })

    await assert.rejects(kms.decrypt({ ciphertextBlob }), invalidCiphertext)
  })

  it('answers IncorrectKeyException when the named key is not the ciphertext\'s', async (t) => {
    const kms = await openKms(t)
    const otherArn = await kms.createKey({ alias: 'alias/other' })
    const { ciphertextBlob } = await kms.encrypt({ keyId: 'alias/aws/ssm', plaintext: text('x') })

    for (const keyId of [otherArn, 'alias/other']) {
      await assert.rejects(kms.decrypt({ ciphertextBlob, keyId }), { name: 'InvalidRequestError', code: 'IncorrectKeyException' })
    }
    await assert.rejects(kms.decrypt({ ciphertextBlob, keyId: 'alias/missing' }), notFound)
  })

  it('refuses a disabled key on encrypt, decrypt and generateDataKey, and serves it again once enabled', async (t) => {
    const kms = await openKms(t)
    const { ciphertextBlob } = await kms.encrypt({ keyId: 'alias/aws/ssm', plaintext: text('x') })

    await kms.setEnabled('alias/aws/ssm', false)

    await assert.rejects(kms.encrypt({ keyId: 'alias/aws/ssm', plaintext: text('x') }), disabled)
    await assert.rejects(kms.decrypt({ ciphertextBlob }), disabled)
    await assert.rejects(kms.generateDataKey({ keyId: 'alias/aws/ssm', keySpec: 'AES_256' }), disabled)
    assert.throws(() => kms.rawKeyMaterial('alias/aws/ssm'), disabled)
    assert.deepEqual(kms.listKeys().map((key) => key.enabled), [false])

    await kms.setEnabled(kms.defaultKeyArn, true)
    const result = await kms.decrypt({ ciphertextBlob })
    assert.equal(Buffer.from(result.plaintext).toString(), 'x')
  })

  it('accepts up to 4096 bytes of plaintext and refuses more, or none', async (t) => {
    const kms = await openKms(t)

    const largest = await kms.encrypt({ keyId: 'alias/aws/ssm', plaintext: Buffer.alloc(4096, 1) })
    const back = await kms.decrypt({ ciphertextBlob: largest.ciphertextBlob })

    assert.deepEqual(Buffer.from(back.plaintext), Buffer.alloc(4096, 1))
    await assert.rejects(kms.encrypt({ keyId: 'alias/aws/ssm', plaintext: Buffer.alloc(4097) }), validation)
    await assert.rejects(kms.encrypt({ keyId: 'alias/aws/ssm', plaintext: new Uint8Array(0) }), validation)
  })

  it('reads a plaintext given as a view into a larger buffer without taking its neighbours', async (t) => {
    const kms = await openKms(t)
    const backing = Buffer.from('xxxxsecretyyyy')

    const { ciphertextBlob } = await kms.encrypt({ keyId: 'alias/aws/ssm', plaintext: backing.subarray(4, 10) })
    const result = await kms.decrypt({ ciphertextBlob: new Uint8Array(ciphertextBlob) })

    assert.equal(Buffer.from(result.plaintext).toString(), 'secret')
  })
})

describe('LocalKms generateDataKey', () => {
  it('makes 32 bytes for AES_256, 16 for AES_128, and any count from 1 to 1024', async (t) => {
    const kms = await openKms(t)
    const cases: Array<[{ keySpec?: 'AES_256' | 'AES_128', numberOfBytes?: number }, number]> = [
      [{ keySpec: 'AES_256' }, 32], [{ keySpec: 'AES_128' }, 16], [{ numberOfBytes: 1 }, 1], [{ numberOfBytes: 1024 }, 1024]
    ]

    for (const [spec, size] of cases) {
      const key = await kms.generateDataKey({ keyId: 'alias/secrets-agent/default', encryptionContext: { use: 'dk' }, ...spec })
      const opened = await kms.decrypt({ ciphertextBlob: key.ciphertextBlob, encryptionContext: { use: 'dk' } })

      assert.equal(key.plaintext.length, size)
      assert.equal(key.keyId, kms.defaultKeyArn)
      assert.deepEqual(Buffer.from(opened.plaintext), Buffer.from(key.plaintext))
    }
  })

  it('refuses both or neither of keySpec and numberOfBytes, and counts outside 1 to 1024', async (t) => {
    const kms = await openKms(t)
    const keyId = 'alias/aws/ssm'

    await assert.rejects(kms.generateDataKey({ keyId }), validation)
    await assert.rejects(kms.generateDataKey({ keyId, keySpec: 'AES_256', numberOfBytes: 32 }), validation)
    for (const numberOfBytes of [0, 1025, 1.5, -1, Number.NaN]) {
      await assert.rejects(kms.generateDataKey({ keyId, numberOfBytes }), validation, String(numberOfBytes))
    }
    await assert.rejects(kms.generateDataKey({ keyId, keySpec: 'AES_512' as 'AES_256' }), validation)
  })
})

describe('LocalKms rawKeyMaterial', () => {
  it('hands out a copy of the key, which the caller may wipe', async (t) => {
    const kms = await openKms(t)
    const { ciphertextBlob } = await kms.encrypt({ keyId: 'alias/aws/ssm', plaintext: text('x') })

    const raw = kms.rawKeyMaterial('alias/aws/ssm')
    raw.material.fill(0)

    assert.equal(raw.arn, kms.defaultKeyArn)
    assert.equal(raw.material.length, 32)
    assert.equal(Buffer.from((await kms.decrypt({ ciphertextBlob })).plaintext).toString(), 'x')
    assert.throws(() => kms.rawKeyMaterial('alias/none'), notFound)
  })
})
