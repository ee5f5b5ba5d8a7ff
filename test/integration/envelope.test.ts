import assert from 'node:assert/strict'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { setTimeout } from 'node:timers/promises'

import {
  buildClient, CommitmentPolicy, KmsKeyringNode, RawAesKeyringNode, RawAesWrappingSuiteIdentifier
} from '@aws-crypto/client-node'

import { Envelope } from '../../src/envelope/index.js'
import { Metrics } from '../../src/metrics.js'
import { b64, json, openAwsKmsApp, openLocalKmsApp, type AwsKmsApp, type KmsAppOptions, type LocalKmsApp } from '../support/kms-app.js'
import { until } from '../support/local-app.js'

const SECRET_TEXT = 'envelope plaintext Vw42pR'
const esdk = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)

function assertNoPlaintext (body: string): void {
  assert.ok(!body.includes(SECRET_TEXT), 'plaintext in the body')
  assert.ok(!body.includes(b64(SECRET_TEXT)), 'base64 plaintext in the body')
}

describe('POST /envelope/* on the local provider', () => {
  let h: LocalKmsApp
  const reopen = async (options: KmsAppOptions): Promise<void> => {
    await h.close()
    h = await openLocalKmsApp(options)
  }
  beforeEach(async () => { h = await openLocalKmsApp() })
  afterEach(async () => { await h.close() })

  /**
   * The raw AES keyring a reader without the agent builds from the key file. `utf8Sorting` is how
   * every SDK but JavaScript's (whose default is `localeCompare`) orders the encryption context.
   */
  async function keyringFromKeyFile (arn: string, utf8Sorting = true): Promise<RawAesKeyringNode> {
    const file = await h.keyFile()
    const key = file.keys.find((k) => arn.endsWith(`key/${k.id}`))
    assert.ok(key)
    return new RawAesKeyringNode({
      keyName: arn,
      keyNamespace: 'secrets-agent-local',
      unencryptedMasterKey: new Uint8Array(Buffer.from(key.material, 'base64')),
      wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
      utf8Sorting
    })
  }

  it('round-trips under the default key, answering the whole context and the key ARNs', async () => {
    const encrypted = await h.post('/envelope/encrypt', { Plaintext: b64(SECRET_TEXT), EncryptionContext: { app: 'test', tenant: 't1' } })
    const decrypted = await h.post('/envelope/decrypt', { Ciphertext: json(encrypted).Ciphertext, EncryptionContext: { tenant: 't1' } })
    const defaultArn = h.local.kms.listKeys()[0]!.arn

    assert.equal(encrypted.statusCode, 200)
    assert.deepEqual(Object.keys(json(encrypted)), ['Ciphertext'])
    assertNoPlaintext(encrypted.body)
    assert.equal(decrypted.statusCode, 200)
    assert.deepEqual(json(decrypted), { Plaintext: b64(SECRET_TEXT), EncryptionContext: { app: 'test', tenant: 't1' }, KeyIds: [defaultArn] })
  })

  it('encrypts under the key named in KeyId and decrypts without being told which', async () => {
    const arn = await h.local.kms.createKey({ alias: 'alias/it/orders' })

    const { Ciphertext } = json(await h.post('/envelope/encrypt', { KeyId: 'alias/it/orders', Plaintext: b64(SECRET_TEXT) }))
    const decrypted = json(await h.post('/envelope/decrypt', { Ciphertext }))

    assert.equal(decrypted.Plaintext, b64(SECRET_TEXT))
    assert.deepEqual(decrypted.KeyIds, [arn])
  })

  it('answers 400 InvalidCiphertextException, with no plaintext, for a context that does not match or altered bytes', async () => {
    const { Ciphertext } = json(await h.post('/envelope/encrypt', { Plaintext: b64(SECRET_TEXT), EncryptionContext: { app: 'test' } }))
    const bytes = Buffer.from(String(Ciphertext), 'base64')
    bytes[bytes.length - 30]! ^= 1

    const answers = await Promise.all([
      h.post('/envelope/decrypt', { Ciphertext, EncryptionContext: { app: 'other' } }),
      h.post('/envelope/decrypt', { Ciphertext, EncryptionContext: { user: 'x' } }),
      h.post('/envelope/decrypt', { Ciphertext: bytes.toString('base64') }),
      h.post('/envelope/decrypt', { Ciphertext: b64('no ESDK message at all') })
    ])

    for (const answer of answers) {
      assert.equal(answer.statusCode, 400)
      assert.equal(json(answer).__type, 'InvalidCiphertextException')
      assertNoPlaintext(answer.body)
    }
  })

  it('answers 404 for an unknown key and 403 for a disabled one, on encrypt and on decrypt', async () => {
    // Without caching: a data key cached before the key was disabled would still serve, as it should.
    await reopen({ envelope: { dataKeyCaching: false } })
    const arn = await h.local.kms.createKey({ alias: 'alias/it/disabled' })
    const { Ciphertext } = json(await h.post('/envelope/encrypt', { KeyId: arn, Plaintext: b64(SECRET_TEXT) }))
    await h.local.kms.setEnabled(arn, false)

    const unknown = await h.post('/envelope/encrypt', { KeyId: 'alias/it/none', Plaintext: b64('x') })
    const disabledEncrypt = await h.post('/envelope/encrypt', { KeyId: arn, Plaintext: b64('x') })
    const disabledDecrypt = await h.post('/envelope/decrypt', { Ciphertext })

    assert.equal(unknown.statusCode, 404)
    assert.equal(disabledEncrypt.statusCode, 403)
    assert.equal(disabledDecrypt.statusCode, 403)
    assert.equal(json(disabledDecrypt).__type, 'DisabledException')
    assertNoPlaintext(disabledDecrypt.body)
  })

  it('makes messages the ESDK opens with a raw AES keyring over the key file, and opens the ESDK\'s', async () => {
    const defaultArn = h.local.kms.listKeys()[0]!.arn
    const keyring = await keyringFromKeyFile(defaultArn)

    const { Ciphertext } = json(await h.post('/envelope/encrypt', { Plaintext: b64(SECRET_TEXT), EncryptionContext: { app: 'test' } }))
    const direct = await esdk.decrypt(keyring, Buffer.from(String(Ciphertext), 'base64'))
    const { result } = await esdk.encrypt(keyring, Buffer.from(SECRET_TEXT), { encryptionContext: { origin: 'esdk' } })
    const viaAgent = json(await h.post('/envelope/decrypt', { Ciphertext: result.toString('base64'), EncryptionContext: { origin: 'esdk' } }))

    assert.equal(direct.plaintext.toString(), SECRET_TEXT)
    assert.equal(direct.messageHeader.encryptionContext.app, 'test')
    assert.equal(viaAgent.Plaintext, b64(SECRET_TEXT))
  })

  it('orders the context by its UTF-8 bytes, as other SDKs do, and still opens messages ordered the old way', async () => {
    // Bytes put "Tenant" before "app"; localeCompare puts "app" first.
    const context = { Tenant: 't1', app: 'orders' }
    const defaultArn = h.local.kms.listKeys()[0]!.arn
    const bytewise = await keyringFromKeyFile(defaultArn)

    const { Ciphertext } = json(await h.post('/envelope/encrypt', { Plaintext: b64(SECRET_TEXT), EncryptionContext: context }))
    const direct = await esdk.decrypt(bytewise, Buffer.from(String(Ciphertext), 'base64'))
    const fromOtherSdk = await esdk.encrypt(bytewise, Buffer.from(SECRET_TEXT), { encryptionContext: context })
    const fromOldAgent = await esdk.encrypt(await keyringFromKeyFile(defaultArn, false), Buffer.from(SECRET_TEXT), { encryptionContext: context })
    const answers = await Promise.all([fromOtherSdk, fromOldAgent].map(async ({ result }) =>
      await h.post('/envelope/decrypt', { Ciphertext: result.toString('base64') })))

    assert.equal(direct.plaintext.toString(), SECRET_TEXT)
    for (const answer of answers) {
      assert.equal(answer.statusCode, 200, answer.body)
      assert.equal(json(answer).Plaintext, b64(SECRET_TEXT))
    }
  })

  it('opens its messages, and its /kms ciphertexts, with the agent running in another region', async () => {
    const { join } = await import('node:path')
    const { pino } = await import('pino')
    const { LocalProvider } = await import('../../src/providers/local/provider.js')
    const arn = await h.local.kms.createKey({ alias: 'alias/it/regional' })
    const message = json(await h.post('/envelope/encrypt', { KeyId: 'alias/it/regional', Plaintext: b64(SECRET_TEXT) }))
    const direct = json(await h.post('/kms/encrypt', { KeyId: arn, Plaintext: b64(SECRET_TEXT) }))

    // The same store and key file, the agent now run with AWS_REGION=eu-west-1.
    const elsewhere = await LocalProvider.open({ storeFile: join(h.dir, 'store.yaml'), region: 'eu-west-1', logger: pino({ level: 'silent' }), watch: false })
    try {
      const opened = await new Envelope({ provider: elsewhere }).decrypt({ ciphertext: Buffer.from(String(message.Ciphertext), 'base64') })
      // And a us-east-1 ARN kept in an app's settings still names the key.
      const again = await elsewhere.encrypt({ keyId: arn, plaintext: Buffer.from(SECRET_TEXT) })
      const back = await elsewhere.decrypt({ ciphertextBlob: Buffer.from(String(direct.CiphertextBlob), 'base64') })

      assert.equal(opened.plaintext.toString(), SECRET_TEXT)
      assert.deepEqual(opened.keyIds, [arn])
      assert.equal(again.keyId, arn.replace('us-east-1', 'eu-west-1'))
      assert.equal(Buffer.from(back.plaintext).toString(), SECRET_TEXT)
    } finally {
      await elsewhere.close()
    }
  })

  it('takes bodies up to envelope_max_body_bytes (over /kms/*\'s 64 KiB) and answers 413 past it', async () => {
    const large = await h.post('/envelope/encrypt', { Plaintext: b64(Buffer.alloc(100 * 1024, 7)) })
    await reopen({ envelopeMaxBodyBytes: 2048 })
    const small = await h.post('/envelope/encrypt', { Plaintext: b64(Buffer.alloc(1000, 7)) })
    const over = await h.post('/envelope/encrypt', { Plaintext: b64(Buffer.alloc(2000, 7)) })
    const overDecrypt = await h.post('/envelope/decrypt', { Ciphertext: b64(Buffer.alloc(2000, 7)) })

    assert.equal(large.statusCode, 200)
    assert.equal(small.statusCode, 200)
    assert.equal(over.statusCode, 413)
    assert.equal(overDecrypt.statusCode, 413)
  })

  it('answers 415 for a body that is not JSON and 400 for bad base64 or reserved context keys', async () => {
    const text = await h.post('/envelope/encrypt', SECRET_TEXT, { 'content-type': 'text/plain' })
    const badBase64 = await h.post('/envelope/decrypt', { Ciphertext: 'abc' })
    const reserved = await h.post('/envelope/encrypt', { Plaintext: b64('x'), EncryptionContext: { 'aws-crypto-public-key': 'x' } })

    assert.equal(text.statusCode, 415)
    assert.equal(badBase64.statusCode, 400)
    assert.equal(reserved.statusCode, 400)
    assert.match(String(json(reserved).message), /reserved/)
  })

  it('refuses keys outside [allow] kms_keys with 403 and a warning naming them, never the plaintext', async () => {
    const { Ciphertext } = json(await h.post('/envelope/encrypt', { Plaintext: b64(SECRET_TEXT) }))
    const defaultArn = h.local.kms.listKeys()[0]!.arn
    await reopen({ allow: { kmsKeys: ['alias/app/*'] } })

    const encrypt = await h.post('/envelope/encrypt', { Plaintext: b64(SECRET_TEXT) })
    const decrypt = await h.post('/envelope/decrypt', { Ciphertext })

    for (const answer of [encrypt, decrypt]) {
      assert.equal(answer.statusCode, 403)
      assert.equal(json(answer).__type, 'AccessDeniedException')
      assertNoPlaintext(answer.body)
    }
    const warnings = h.logs().map((line) => JSON.parse(line) as Record<string, unknown>).filter((entry) => entry.level === 40)
    assert.deepEqual(warnings.map((w) => w.keyIds), [['alias/secrets-agent/default'], [defaultArn]])
    for (const line of h.logs()) assertNoPlaintext(line)
  })
})

describe('POST /envelope/* on the aws provider (fake AWS), through its own envelope keyring', () => {
  let h: AwsKmsApp
  const open = async (options: KmsAppOptions = {}): Promise<AwsKmsApp> => {
    h = await openAwsKmsApp(options)
    return h
  }
  afterEach(async () => { await h.close() })

  it('makes messages the ESDK opens with its KMS keyring against the same endpoint, and opens the ESDK\'s', async () => {
    await open({ envelope: { defaultKeyId: 'alias/envelope' } })
    const keyArn = h.fake.createKey({ alias: 'envelope' })
    const keyring = new KmsKeyringNode({ generatorKeyId: keyArn, clientProvider: () => h.kms })

    const encrypted = json(await h.post('/envelope/encrypt', { Plaintext: b64(SECRET_TEXT), EncryptionContext: { app: 'test' } }))
    const direct = await esdk.decrypt(keyring, Buffer.from(String(encrypted.Ciphertext), 'base64'))
    const { result } = await esdk.encrypt(keyring, Buffer.from(SECRET_TEXT), { encryptionContext: { origin: 'esdk' } })
    const viaAgent = json(await h.post('/envelope/decrypt', { Ciphertext: result.toString('base64'), EncryptionContext: { origin: 'esdk' } }))

    assert.equal(direct.plaintext.toString(), SECRET_TEXT)
    assert.equal(direct.messageHeader.encryptedDataKeys[0]?.providerInfo, keyArn)
    assert.equal(viaAgent.Plaintext, b64(SECRET_TEXT))
    assert.deepEqual(viaAgent.KeyIds, [keyArn])
    // The ESDK signs by default: its context also holds the verification key.
    assert.equal((viaAgent.EncryptionContext as Record<string, string>).origin, 'esdk')
  })

  it('round-trips with a KeyId on encrypt and none on decrypt', async () => {
    await open()
    const keyArn = h.fake.createKey({ alias: 'own' })

    const { Ciphertext } = json(await h.post('/envelope/encrypt', { KeyId: 'alias/own', Plaintext: b64(SECRET_TEXT) }))
    const decrypted = json(await h.post('/envelope/decrypt', { Ciphertext }))

    assert.deepEqual(decrypted, { Plaintext: b64(SECRET_TEXT), EncryptionContext: {}, KeyIds: [keyArn] })
  })

  it('asks for a KeyId when no default key is configured', async () => {
    await open()

    const answer = await h.post('/envelope/encrypt', { Plaintext: b64('x') })

    assert.equal(answer.statusCode, 400)
    assert.match(String(json(answer).message), /KeyId is required/)
  })

  it('answers 404 for an unknown key and 403 for a disabled one, on encrypt and on decrypt, without AWS\'s text', async () => {
    await open({ envelope: { dataKeyCaching: false } })
    const keyArn = h.fake.createKey({ alias: 'soon-disabled' })
    const { Ciphertext } = json(await h.post('/envelope/encrypt', { KeyId: keyArn, Plaintext: b64(SECRET_TEXT) }))
    h.fake.setKeyEnabled(keyArn, false)

    const unknown = await h.post('/envelope/encrypt', { KeyId: 'alias/none', Plaintext: b64('x') })
    const disabledEncrypt = await h.post('/envelope/encrypt', { KeyId: keyArn, Plaintext: b64('x') })
    const disabledDecrypt = await h.post('/envelope/decrypt', { Ciphertext })

    assert.equal(unknown.statusCode, 404)
    assert.equal(disabledEncrypt.statusCode, 403)
    assert.equal(disabledDecrypt.statusCode, 403)
    for (const answer of [unknown, disabledEncrypt, disabledDecrypt]) {
      assertNoPlaintext(answer.body)
      assert.ok(!answer.body.includes('123456789012'), 'no account id the caller did not send')
    }
  })

  it('answers 403 with the provider\'s code, and no plaintext, for a message whose key was disabled after encryption', async () => {
    await open({ envelope: { dataKeyCaching: false } })
    const keyArn = h.fake.createKey({ alias: 'disabled-later' })
    const encrypted = await h.post('/envelope/encrypt', { KeyId: 'alias/disabled-later', Plaintext: b64(SECRET_TEXT), EncryptionContext: { app: 'test' } })
    h.fake.setKeyEnabled(keyArn, false)

    const answer = await h.post('/envelope/decrypt', { Ciphertext: json(encrypted).Ciphertext, EncryptionContext: { app: 'test' } })

    assert.equal(encrypted.statusCode, 200)
    assert.equal(answer.statusCode, 403)
    assert.equal(json(answer).__type, 'DisabledException')
    assertNoPlaintext(answer.body)
    assert.equal(h.fake.count('Decrypt'), 1)
  })

  it('counts its keyring\'s KMS calls in the upstream metrics, as the agent wires it', async () => {
    const metrics = new Metrics('0.0.0-test', { processMetrics: false })
    await open({ metrics, envelope: { dataKeyCaching: false } })
    h.fake.createKey({ alias: 'counted' })

    const { Ciphertext } = json(await h.post('/envelope/encrypt', { KeyId: 'alias/counted', Plaintext: b64(SECRET_TEXT) }))
    assert.equal((await h.post('/envelope/decrypt', { Ciphertext })).statusCode, 200)

    const text = await metrics.registry.metrics()
    const count = (operation: string): string | undefined => text.split('\n').find((line) =>
      line.startsWith('secrets_agent_upstream_requests_total{') && line.includes('service="kms"') && line.includes(`operation="${operation}"`) && line.includes('outcome="success"'))?.split(' ').at(-1)
    assert.deepEqual([count('GenerateDataKey'), count('Decrypt')], ['1', '1'])
    assert.deepEqual([h.fake.count('GenerateDataKey'), h.fake.count('Decrypt')], [1, 1])
  })

  it('answers 404 with the provider\'s code for an unknown key on encrypt', async () => {
    await open()

    const answer = await h.post('/envelope/encrypt', { KeyId: 'alias/never-made', Plaintext: b64(SECRET_TEXT) })

    assert.equal(answer.statusCode, 404)
    assert.equal(json(answer).__type, 'NotFoundException')
    assertNoPlaintext(answer.body)
  })

  it('answers 404 NotFoundException, as KMS and the local provider do, for a key id of no valid form', async () => {
    await open()
    for (const keyId of ['key/1234abcd', 'foo:bar', 'arn:aws:kms:us-east-1:1:foo/x']) {
      const answer = await h.post('/envelope/encrypt', { KeyId: keyId, Plaintext: b64(SECRET_TEXT) })
      assert.equal(answer.statusCode, 404, keyId)
      assert.equal(json(answer).__type, 'NotFoundException')
      assertNoPlaintext(answer.body)
    }
    assert.equal(h.fake.count('GenerateDataKey'), 0)
  })

  /** A message whose data key is wrapped under `count` keys, made by the ESDK against the fake. */
  async function messageUnderKeys (count: number): Promise<string> {
    const [generatorKeyId, ...keyIds] = Array.from({ length: count }, (_, i) => h.fake.createKey({ alias: `many-${i}` }))
    const keyring = new KmsKeyringNode({ generatorKeyId, keyIds, clientProvider: () => h.kms })
    const { result } = await esdk.encrypt(keyring, Buffer.from(SECRET_TEXT))
    return result.toString('base64')
  }

  it('gives a decrypt one KMS timeout for every key its message names together, counted as a timeout', async () => {
    const TIMEOUT_MS = 300
    const metrics = new Metrics('0.0.0-test', { processMetrics: false })
    await open({ kmsTimeoutMillis: TIMEOUT_MS, envelope: { timeoutMs: TIMEOUT_MS }, metrics })
    const Ciphertext = await messageUnderKeys(10)
    h.fake.inject({ kind: 'hang' }, { operation: 'Decrypt' })

    const started = performance.now()
    const answer = await h.post('/envelope/decrypt', { Ciphertext })
    const elapsed = performance.now() - started

    assert.equal(answer.statusCode, 504, answer.body)
    assert.equal(json(answer).__type, 'UpstreamTimeoutException')
    // Ten keys, each given the whole timeout in turn, would take ten times as long.
    assert.ok(elapsed < 4 * TIMEOUT_MS, `answered after ${Math.round(elapsed)} ms`)
    assert.ok(h.fake.count('Decrypt') <= 2, `${h.fake.count('Decrypt')} Decrypt calls`)
    const text = await metrics.registry.metrics()
    assert.match(text, /secrets_agent_upstream_requests_total\{[^}]*operation="Decrypt"[^}]*outcome="timeout"\} [12]\n/)
    assert.doesNotMatch(text, /outcome="cancelled"/)
  })

  it('stops trying a message\'s keys once its client has gone, counting the call as cancelled', async () => {
    const TIMEOUT_MS = 300
    const metrics = new Metrics('0.0.0-test', { processMetrics: false })
    await open({ kmsTimeoutMillis: TIMEOUT_MS, metrics })
    const Ciphertext = await messageUnderKeys(10)
    h.fake.inject({ kind: 'hang' }, { operation: 'Decrypt' })
    const address = await h.app.listen({ host: '127.0.0.1', port: 0 })

    const client = new AbortController()
    const request = fetch(`${address}/envelope/decrypt`, {
      method: 'POST',
      headers: { ...h.auth, 'content-type': 'application/json' },
      body: JSON.stringify({ Ciphertext }),
      signal: client.signal
    })
    await until(() => h.fake.count('Decrypt') === 1)
    client.abort()
    await assert.rejects(request, { name: 'AbortError' })
    // Long enough for two more keys' timeouts, had the decrypt gone on without its client.
    await setTimeout(2.5 * TIMEOUT_MS)

    assert.equal(h.fake.count('Decrypt'), 1)
    assert.match(await metrics.registry.metrics(), /secrets_agent_upstream_requests_total\{[^}]*operation="Decrypt"[^}]*outcome="cancelled"\} 1\n/)
  })

  it('reuses one data key across requests when caching is on, and wraps one per request when off', async () => {
    await open({ envelope: { defaultKeyId: 'alias/cached' } })
    h.fake.createKey({ alias: 'cached' })
    for (let i = 0; i < 30; i++) assert.equal((await h.post('/envelope/encrypt', { Plaintext: b64(`m${i}`), EncryptionContext: { app: 'test' } })).statusCode, 200)
    const cached = h.fake.count('GenerateDataKey')
    await h.close()
    await open({ envelope: { defaultKeyId: 'alias/uncached', dataKeyCaching: false } })
    h.fake.createKey({ alias: 'uncached' })
    for (let i = 0; i < 20; i++) await h.post('/envelope/encrypt', { Plaintext: b64(`m${i}`), EncryptionContext: { app: 'test' } })

    assert.equal(cached, 1)
    assert.equal(h.fake.count('GenerateDataKey'), 20)
  })
})

describe('data-key caching against KMS, counted at the fake (envelope over the aws provider\'s keyring)', () => {
  let h: AwsKmsApp
  beforeEach(async () => { h = await openAwsKmsApp() })
  afterEach(async () => { await h.close() })

  const envelopeOver = (caching: boolean): Envelope => new Envelope({
    provider: h.provider,
    defaultKeyId: 'alias/bulk',
    ...(caching ? {} : { dataKeyCaching: false as const })
  })

  it('makes one GenerateDataKey call for 10,000 encryptions under one context, and one Decrypt to open them', async () => {
    h.fake.createKey({ alias: 'bulk' })
    const envelope = envelopeOver(true)
    const messages: Buffer[] = []

    for (let i = 0; i < 10_000; i++) {
      const { ciphertext } = await envelope.encrypt({ plaintext: Buffer.from(`message ${i}`), encryptionContext: { app: 'bulk' } })
      if (i % 1000 === 0) messages.push(ciphertext)
    }
    for (const ciphertext of messages) await envelope.decrypt({ ciphertext })

    assert.equal(h.fake.count('GenerateDataKey'), 1)
    assert.equal(h.fake.count('Decrypt'), 1)
  })

  it('makes one GenerateDataKey call for 50 encryptions at once, cold, and one per context', async () => {
    h.fake.createKey({ alias: 'bulk' })
    const envelope = envelopeOver(true)

    const burst = await Promise.all(Array.from({ length: 50 }, async (_, i) =>
      await envelope.encrypt({ plaintext: Buffer.from(`message ${i}`), encryptionContext: { app: i % 2 === 0 ? 'even' : 'odd' } })))
    const opened = await Promise.all([burst[0]!, burst[1]!].map(async ({ ciphertext }) => (await envelope.decrypt({ ciphertext })).plaintext.toString()))

    assert.equal(h.fake.count('GenerateDataKey'), 2)
    assert.deepEqual(opened, ['message 0', 'message 1'])
  })

  it('gives the requests that waited for a failed GenerateDataKey its failure, not a call each', async () => {
    h.fake.createKey({ alias: 'bulk' })
    const envelope = envelopeOver(true)
    h.fake.inject({ kind: 'throttle' }, { operation: 'GenerateDataKey', times: 1 })

    const burst = await Promise.allSettled(Array.from({ length: 20 }, async (_, i) =>
      await envelope.encrypt({ plaintext: Buffer.from(`message ${i}`), encryptionContext: { app: 'bulk' } })))
    const calls = h.fake.count('GenerateDataKey')
    const later = await envelope.encrypt({ plaintext: Buffer.from('later'), encryptionContext: { app: 'bulk' } })

    assert.equal(calls, 1)
    for (const result of burst) {
      assert.equal(result.status, 'rejected')
      assert.equal((result as PromiseRejectedResult).reason.name, 'ThrottledError')
    }
    assert.equal((await envelope.decrypt({ ciphertext: later.ciphertext })).plaintext.toString(), 'later')
    assert.equal(h.fake.count('GenerateDataKey'), 2)
  })

  it('makes one GenerateDataKey call per encryption with caching off (200 encryptions, to keep it quick)', async () => {
    h.fake.createKey({ alias: 'bulk' })
    const envelope = envelopeOver(false)

    for (let i = 0; i < 200; i++) await envelope.encrypt({ plaintext: Buffer.from(`message ${i}`), encryptionContext: { app: 'bulk' } })

    assert.equal(h.fake.count('GenerateDataKey'), 200)
  })
})
