/**
 * The provider contract: the same cases, run against every provider (DESIGN §5). Each provider's
 * test file seeds CONTRACT_DATA through a small adapter of its own and hands the provider here.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { buildClient, CommitmentPolicy } from '@aws-crypto/client-node'
import { AccessDeniedError, InvalidRequestError, NotFoundError, type ProviderError } from '../../src/providers/errors.js'
import type { Parameter, Provider } from '../../src/providers/types.js'

const created = new Date('2024-03-01T10:00:00.000Z')

/** What every provider under contract holds. Version ids are UUIDs, as Secrets Manager's are. */
export const CONTRACT_DATA = {
  secrets: [
    {
      name: 'contract/db',
      // In the order written: previous, current, then a custom stage.
      versions: [
        { id: '0c0c0c0c-0000-4000-a000-000000000001', stages: ['AWSPREVIOUS'], string: '{"password":"old-pw"}', created },
        { id: '0c0c0c0c-0000-4000-a000-000000000002', stages: ['AWSCURRENT'], string: '{"password":"new-pw"}', created },
        { id: '0c0c0c0c-0000-4000-a000-000000000003', stages: ['BLUE'], string: '{"password":"blue-pw"}', created }
      ]
    },
    { name: 'contract/cert', versions: [{ id: '0c0c0c0c-0000-4000-a000-000000000004', stages: ['AWSCURRENT'], binary: Uint8Array.from([0, 1, 2, 250, 255]), created }] },
    { name: 'contract/plain', versions: [{ id: '0c0c0c0c-0000-4000-a000-000000000005', stages: ['AWSCURRENT'], string: 'plain-text-value', created }] }
  ],
  parameters: [
    { name: '/contract/level', type: 'String', versions: [{ value: 'debug', labels: ['Old'] }, { value: 'info' }, { value: 'warn', labels: ['Prod'] }] },
    { name: '/contract/hosts', type: 'StringList', versions: [{ value: 'a.example,b.example' }] },
    { name: '/contract/secure', type: 'SecureString', versions: [{ value: 'first-secure-Qx1' }, { value: 'second-secure-Zr8', labels: ['Dev'] }] },
    { name: '/contract/tree/a', type: 'String', versions: [{ value: 'ay' }] },
    { name: '/contract/tree/z', type: 'SecureString', versions: [{ value: 'tree-secret-Wm2' }] },
    { name: '/contract/tree/b/c', type: 'String', versions: [{ value: 'cee' }] },
    { name: '/contract/tree/b/d/e', type: 'String', versions: [{ value: 'ee' }] },
    // Twelve under one path: more than one GetParametersByPath page (10) upstream.
    ...Array.from({ length: 12 }, (_, i) => ({ name: `/contract/many/p${String(i + 1).padStart(2, '0')}`, type: 'String' as const, versions: [{ value: `v${i + 1}` }] }))
  ],
  /** KMS aliases: two usable keys and a disabled one. */
  keys: { main: 'alias/contract', other: 'alias/contract-other', disabled: 'alias/contract-off' }
} as const satisfies ContractData

export interface ContractData {
  secrets: ReadonlyArray<{
    name: string
    versions: ReadonlyArray<{ id: string, stages: readonly string[], string?: string, binary?: Uint8Array, created: Date }>
  }>
  parameters: ReadonlyArray<{
    name: string
    type: 'String' | 'StringList' | 'SecureString'
    versions: ReadonlyArray<{ value: string, labels?: readonly string[] }>
  }>
  keys: { main: string, other: string, disabled: string }
}

/** A provider holding CONTRACT_DATA, and how to let it go. */
export interface ContractSubject {
  provider: Provider
  close (): Promise<void>
}

const REFERENCE = '/aws/reference/secretsmanager/'
const [db, cert] = CONTRACT_DATA.secrets
const VERSION = {
  previous: db.versions[0],
  current: db.versions[1],
  blue: db.versions[2]
}

/** The error a promise rejected with, checked to be a ProviderError of `type`. */
async function rejection<T extends ProviderError> (promise: Promise<unknown>, type: new (...args: never[]) => T): Promise<T> {
  try {
    await promise
  } catch (error) {
    assert.ok(error instanceof type, `expected ${type.name}, got ${String(error)}`)
    return error
  }
  assert.fail(`expected ${type.name}, but the call succeeded`)
}

const names = (list: Parameter[]): string[] => list.map((p) => p.name).sort()

export function providerContract (label: string, open: () => Promise<ContractSubject>): void {
  describe(`provider contract: ${label}`, () => {
    let subject: ContractSubject
    let provider: Provider
    before(async () => {
      subject = await open()
      provider = subject.provider
    })
    after(async () => { await subject?.close() })

    describe('secrets', () => {
      it('returns the AWSCURRENT version of a secret asked for by name', async () => {
        const secret = await provider.getSecret({ secretId: db.name })

        assert.equal(secret.name, db.name)
        assert.match(secret.arn, /^arn:aws:secretsmanager:us-east-1:\d{12}:secret:contract\/db-[A-Za-z0-9]{6}$/)
        assert.equal(secret.versionId, VERSION.current.id)
        assert.equal(secret.secretString, VERSION.current.string)
        assert.equal(secret.secretBinary, undefined)
        assert.deepEqual(secret.versionStages, ['AWSCURRENT'])
        assert.ok(secret.createdDate instanceof Date)
      })

      it('returns the same secret by its full ARN', async () => {
        const { arn } = await provider.getSecret({ secretId: db.name })

        const byArn = await provider.getSecret({ secretId: arn })

        assert.equal(byArn.versionId, VERSION.current.id)
        assert.equal(byArn.name, db.name)
      })

      it('selects a version by staging label and by version id', async () => {
        const previous = await provider.getSecret({ secretId: db.name, versionStage: 'AWSPREVIOUS' })
        const blue = await provider.getSecret({ secretId: db.name, versionStage: 'BLUE' })
        const byId = await provider.getSecret({ secretId: db.name, versionId: VERSION.previous.id })
        const both = await provider.getSecret({ secretId: db.name, versionId: VERSION.blue.id, versionStage: 'BLUE' })

        assert.equal(previous.secretString, VERSION.previous.string)
        assert.equal(blue.secretString, VERSION.blue.string)
        assert.equal(byId.secretString, VERSION.previous.string)
        assert.deepEqual(byId.versionStages, ['AWSPREVIOUS'])
        assert.equal(both.versionId, VERSION.blue.id)
      })

      it('returns a binary secret as bytes, with no string', async () => {
        const secret = await provider.getSecret({ secretId: cert.name })

        assert.deepEqual(Uint8Array.from(secret.secretBinary ?? []), cert.versions[0].binary)
        assert.equal(secret.secretString, undefined)
      })

      it('answers NotFoundError (ResourceNotFoundException) for a missing secret, stage or version', async () => {
        const missing = await rejection(provider.getSecret({ secretId: 'contract/missing' }), NotFoundError)
        const stage = await rejection(provider.getSecret({ secretId: db.name, versionStage: 'NOPE' }), NotFoundError)
        const version = await rejection(provider.getSecret({ secretId: db.name, versionId: '0c0c0c0c-0000-4000-a000-00000000ffff' }), NotFoundError)
        const mismatch = await rejection(provider.getSecret({ secretId: db.name, versionId: VERSION.blue.id, versionStage: 'AWSCURRENT' }), NotFoundError)

        for (const error of [missing, stage, version, mismatch]) assert.equal(error.code, 'ResourceNotFoundException')
      })

      it('batch-gets found secrets and reports the missing one in errors', async () => {
        const result = await provider.batchGetSecrets([db.name, 'contract/missing', cert.name])

        assert.deepEqual(result.values.map((v) => v.name).sort(), [cert.name, db.name])
        assert.equal(result.values.find((v) => v.name === db.name)?.versionId, VERSION.current.id)
        assert.equal(result.errors.length, 1)
        assert.equal(result.errors[0]?.secretId, 'contract/missing')
        assert.equal(result.errors[0]?.errorCode, 'ResourceNotFoundException')
        assert.ok((result.errors[0]?.message ?? '').length > 0)
      })
    })

    describe('parameters', () => {
      it('returns the latest version of a String parameter in the Lambda extension shape', async () => {
        const p = await provider.getParameter({ name: '/contract/level', withDecryption: false })

        assert.equal(p.name, '/contract/level')
        assert.match(p.arn, /^arn:aws:ssm:us-east-1:\d{12}:parameter\/contract\/level$/)
        assert.deepEqual([p.type, p.value, p.version, p.selector, p.sourceResult, p.dataType], ['String', 'warn', 3, null, null, 'text'])
        assert.ok(p.lastModifiedDate instanceof Date)
      })

      it('selects versions and labels with a :selector, and echoes the selector', async () => {
        const one = await provider.getParameter({ name: '/contract/level:1', withDecryption: false })
        const old = await provider.getParameter({ name: '/contract/level:Old', withDecryption: false })
        const prod = await provider.getParameter({ name: '/contract/level:Prod', withDecryption: false })

        assert.deepEqual([one.value, one.version, one.selector, one.name], ['debug', 1, ':1', '/contract/level'])
        assert.deepEqual([old.value, old.version, old.selector], ['debug', 1, ':Old'])
        assert.deepEqual([prod.value, prod.version, prod.selector], ['warn', 3, ':Prod'])
      })

      it('accepts the parameter ARN as its name, with or without a selector', async () => {
        const { arn } = await provider.getParameter({ name: '/contract/level', withDecryption: false })

        const byArn = await provider.getParameter({ name: arn, withDecryption: false })
        const byArnVersion = await provider.getParameter({ name: `${arn}:2`, withDecryption: false })

        assert.equal(byArn.value, 'warn')
        assert.equal(byArnVersion.value, 'info')
        assert.equal(byArnVersion.selector, ':2')
      })

      it('returns a StringList as its comma-separated value', async () => {
        const p = await provider.getParameter({ name: '/contract/hosts', withDecryption: false })

        assert.deepEqual([p.type, p.value], ['StringList', 'a.example,b.example'])
      })

      it('decrypts a SecureString only when asked, and never shows its plaintext otherwise', async () => {
        const decrypted = await provider.getParameter({ name: '/contract/secure', withDecryption: true })
        const sealed = await provider.getParameter({ name: '/contract/secure', withDecryption: false })
        const first = await provider.getParameter({ name: '/contract/secure:1', withDecryption: true })
        const dev = await provider.getParameter({ name: '/contract/secure:Dev', withDecryption: true })

        assert.deepEqual([decrypted.type, decrypted.value, decrypted.version], ['SecureString', 'second-secure-Zr8', 2])
        assert.equal(sealed.type, 'SecureString')
        assert.ok(sealed.value !== null && sealed.value.length > 0)
        assert.ok(!(sealed.value ?? '').includes('second-secure-Zr8'))
        assert.ok(!Buffer.from(sealed.value ?? '', 'base64').toString('latin1').includes('second-secure-Zr8'))
        assert.equal(first.value, 'first-secure-Qx1')
        assert.equal(dev.value, 'second-secure-Zr8')
      })

      it('answers ParameterNotFound and ParameterVersionNotFound as NotFoundError', async () => {
        const missing = await rejection(provider.getParameter({ name: '/contract/missing', withDecryption: false }), NotFoundError)
        const version = await rejection(provider.getParameter({ name: '/contract/level:9', withDecryption: false }), NotFoundError)
        const label = await rejection(provider.getParameter({ name: '/contract/level:Nope', withDecryption: false }), NotFoundError)

        assert.equal(missing.code, 'ParameterNotFound')
        assert.equal(version.code, 'ParameterVersionNotFound')
        assert.equal(label.code, 'ParameterVersionNotFound')
      })

      it('reads a secret through /aws/reference/secretsmanager/, with SourceResult', async () => {
        const secret = await provider.getSecret({ secretId: db.name })

        const p = await provider.getParameter({ name: `${REFERENCE}${db.name}`, withDecryption: true })
        const previous = await provider.getParameter({ name: `${REFERENCE}${db.name}:AWSPREVIOUS`, withDecryption: true })

        assert.deepEqual([p.name, p.type, p.value, p.selector, p.dataType], [`${REFERENCE}${db.name}`, 'SecureString', VERSION.current.string, null, null])
        assert.equal(p.arn, secret.arn)
        const source = JSON.parse(p.sourceResult ?? 'null') as Record<string, unknown>
        assert.equal(source.ARN, secret.arn)
        assert.equal(source.versionId, VERSION.current.id)
        assert.equal(previous.value, VERSION.previous.string)
        assert.equal(previous.selector, ':AWSPREVIOUS')
      })

      it('reads a binary secret through the reference path with a null value', async () => {
        const p = await provider.getParameter({ name: `${REFERENCE}${cert.name}`, withDecryption: true })

        assert.equal(p.value, null)
        assert.notEqual(p.sourceResult, null)
      })

      it('refuses the reference path without decryption, and a missing referenced secret is not found', async () => {
        await rejection(provider.getParameter({ name: `${REFERENCE}${db.name}`, withDecryption: false }), InvalidRequestError)
        await rejection(provider.getParameter({ name: `${REFERENCE}contract/missing`, withDecryption: true }), NotFoundError)
      })

      it('gets parameters by path, direct children or recursively, decrypted when asked', async () => {
        const direct = await provider.getParametersByPath({ path: '/contract/tree', recursive: false, withDecryption: false, limit: 100 })
        const all = await provider.getParametersByPath({ path: '/contract/tree', recursive: true, withDecryption: true, limit: 100 })

        assert.deepEqual(names(direct), ['/contract/tree/a', '/contract/tree/z'])
        assert.ok(!(direct.find((p) => p.name === '/contract/tree/z')?.value ?? '').includes('tree-secret-Wm2'))
        assert.deepEqual(names(all), ['/contract/tree/a', '/contract/tree/b/c', '/contract/tree/b/d/e', '/contract/tree/z'])
        assert.equal(all.find((p) => p.name === '/contract/tree/z')?.value, 'tree-secret-Wm2')
        for (const p of all) assert.equal(p.selector, null)
      })

      it('follows every page of a path, and refuses with InvalidRequestError past the limit', async () => {
        const many = await provider.getParametersByPath({ path: '/contract/many', recursive: false, withDecryption: false, limit: 12 })
        const tooMany = await rejection(provider.getParametersByPath({ path: '/contract/many', recursive: false, withDecryption: false, limit: 11 }), InvalidRequestError)

        assert.equal(many.length, 12)
        assert.equal(new Set(names(many)).size, 12)
        assert.equal(tooMany.code, 'TooManyParameters')
        assert.match(tooMany.message, /\b11\b/)
      })

      it('answers an empty list for a path that holds nothing', async () => {
        const none = await provider.getParametersByPath({ path: '/contract/nothing-here', recursive: true, withDecryption: false, limit: 10 })

        assert.deepEqual(none, [])
      })
    })

    describe('kms', () => {
      const context = { purpose: 'contract', tenant: 't-1' }

      it('encrypts and decrypts with an encryption context, naming the key by ARN', async () => {
        const plaintext = Buffer.from('contract plaintext')

        const encrypted = await provider.encrypt({ keyId: CONTRACT_DATA.keys.main, plaintext, encryptionContext: context })
        const decrypted = await provider.decrypt({ ciphertextBlob: encrypted.ciphertextBlob, encryptionContext: { tenant: 't-1', purpose: 'contract' } })
        const withKeyId = await provider.decrypt({ ciphertextBlob: encrypted.ciphertextBlob, encryptionContext: context, keyId: encrypted.keyId })

        assert.match(encrypted.keyId, /^arn:aws:kms:us-east-1:\d{12}:key\/[0-9a-f-]{36}$/)
        assert.equal(encrypted.encryptionAlgorithm, 'SYMMETRIC_DEFAULT')
        assert.ok(!Buffer.from(encrypted.ciphertextBlob).includes(plaintext))
        assert.equal(Buffer.from(decrypted.plaintext).toString(), 'contract plaintext')
        assert.equal(decrypted.keyId, encrypted.keyId)
        assert.equal(Buffer.from(withKeyId.plaintext).toString(), 'contract plaintext')
      })

      it('refuses to decrypt under a different or missing context, or with another key id, as InvalidRequestError', async () => {
        const { ciphertextBlob } = await provider.encrypt({ keyId: CONTRACT_DATA.keys.main, plaintext: Buffer.from('x'), encryptionContext: context })
        const { keyId: otherArn } = await provider.encrypt({ keyId: CONTRACT_DATA.keys.other, plaintext: Buffer.from('y') })

        const wrong = await rejection(provider.decrypt({ ciphertextBlob, encryptionContext: { ...context, tenant: 't-2' } }), InvalidRequestError)
        const none = await rejection(provider.decrypt({ ciphertextBlob }), InvalidRequestError)
        const otherKey = await rejection(provider.decrypt({ ciphertextBlob, encryptionContext: context, keyId: otherArn }), InvalidRequestError)
        const garbage = await rejection(provider.decrypt({ ciphertextBlob: Buffer.from('not a ciphertext at all, really') }), InvalidRequestError)

        assert.equal(wrong.code, 'InvalidCiphertextException')
        assert.equal(none.code, 'InvalidCiphertextException')
        assert.equal(otherKey.code, 'IncorrectKeyException')
        assert.equal(garbage.code, 'InvalidCiphertextException')
      })

      it('generates data keys of the asked size whose ciphertext decrypts to the plaintext', async () => {
        const aes256 = await provider.generateDataKey({ keyId: CONTRACT_DATA.keys.main, keySpec: 'AES_256', encryptionContext: context })
        const aes128 = await provider.generateDataKey({ keyId: CONTRACT_DATA.keys.main, keySpec: 'AES_128' })
        const bytes64 = await provider.generateDataKey({ keyId: CONTRACT_DATA.keys.main, numberOfBytes: 64 })
        const opened = await provider.decrypt({ ciphertextBlob: aes256.ciphertextBlob, encryptionContext: context })

        assert.deepEqual([aes256.plaintext.length, aes128.plaintext.length, bytes64.plaintext.length], [32, 16, 64])
        assert.deepEqual(Uint8Array.from(opened.plaintext), Uint8Array.from(aes256.plaintext))
        assert.match(aes256.keyId, /^arn:aws:kms:/)
      })

      it('answers AccessDeniedError for a disabled key and NotFoundError for an unknown one', async () => {
        const disabled = await rejection(provider.encrypt({ keyId: CONTRACT_DATA.keys.disabled, plaintext: Buffer.from('x') }), AccessDeniedError)
        const unknown = await rejection(provider.generateDataKey({ keyId: 'alias/contract-missing', keySpec: 'AES_256' }), NotFoundError)

        assert.equal(disabled.code, 'DisabledException')
        assert.equal(unknown.code, 'NotFoundException')
      })

      it('hands out an Encryption SDK keyring that round-trips a message', async () => {
        const { encrypt, decrypt } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
        const { keyId: keyArn } = await provider.encrypt({ keyId: CONTRACT_DATA.keys.main, plaintext: Buffer.from('k') })
        const sealing = await provider.envelopeKeyring(CONTRACT_DATA.keys.main)
        // Decryption asks for the keyring of the key ARN the message names.
        const opening = await provider.envelopeKeyring(keyArn)

        const { result } = await encrypt(sealing, Buffer.from('envelope payload'), { encryptionContext: { app: 'contract' } })
        const { plaintext, messageHeader } = await decrypt(opening, result)

        assert.equal(plaintext.toString(), 'envelope payload')
        assert.equal(messageHeader.encryptionContext.app, 'contract')
      })
    })

    it('is ready', async () => {
      await provider.checkReady()
    })
  })
}
