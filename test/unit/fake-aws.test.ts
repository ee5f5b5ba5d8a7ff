import assert from 'node:assert/strict'
import { afterEach, beforeEach, describe, it } from 'node:test'

import { buildClient, CommitmentPolicy, KmsKeyringNode } from '@aws-crypto/client-node'
import {
  DecryptCommand, DescribeKeyCommand, EncryptCommand, GenerateDataKeyCommand,
  GenerateDataKeyWithoutPlaintextCommand, KMS, KMSClient
} from '@aws-sdk/client-kms'
import {
  BatchGetSecretValueCommand, DescribeSecretCommand, GetSecretValueCommand, SecretsManagerClient
} from '@aws-sdk/client-secrets-manager'
import {
  GetParameterCommand, GetParametersByPathCommand, GetParametersCommand, paginateGetParametersByPath, SSMClient
} from '@aws-sdk/client-ssm'
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts'

import { FakeAws, type FakeAwsOptions } from '../support/fake-aws.js'

const credentials = { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' }

interface Harness {
  fake: FakeAws
  sm: SecretsManagerClient
  ssm: SSMClient
  kms: KMSClient
  sts: STSClient
}

/**
 * A fresh fake and real SDK clients for each test, closed afterwards. `maxAttempts: 1` so the
 * SDK's retries never hide an injected fault.
 */
function useHarness (options?: FakeAwsOptions): () => Harness {
  let harness: Harness | undefined
  beforeEach(async () => {
    const fake = await FakeAws.start(options)
    const config = { region: 'us-east-1', endpoint: fake.url, credentials, maxAttempts: 1 }
    harness = {
      fake,
      sm: new SecretsManagerClient(config),
      ssm: new SSMClient(config),
      kms: new KMSClient(config),
      sts: new STSClient(config)
    }
  })
  afterEach(async () => {
    if (harness === undefined) return
    for (const client of [harness.sm, harness.ssm, harness.kms, harness.sts]) client.destroy()
    await harness.fake.close()
    harness = undefined
  })
  return () => {
    assert.ok(harness, 'harness not started')
    return harness
  }
}

/** The error the SDK threw, for assertions on its name, status and message. */
async function failure (promise: Promise<unknown>): Promise<Error & { $metadata?: { httpStatusCode?: number }, $fault?: string }> {
  try {
    await promise
  } catch (err) {
    assert.ok(err instanceof Error)
    return err
  }
  assert.fail('expected the call to fail')
}

describe('FakeAws: Secrets Manager', () => {
  const env = useHarness()

  it('returns a secret by name, full ARN and partial ARN', async () => {
    const { fake, sm } = env()
    const { arn, versionId } = fake.putSecret({ name: 'db/password', secretString: 's3cret' })

    const byName = await sm.send(new GetSecretValueCommand({ SecretId: 'db/password' }))
    const byArn = await sm.send(new GetSecretValueCommand({ SecretId: arn }))
    const byPartialArn = await sm.send(new GetSecretValueCommand({ SecretId: arn.slice(0, -7) }))

    assert.match(arn, /^arn:aws:secretsmanager:us-east-1:123456789012:secret:db\/password-[A-Za-z]{6}$/)
    for (const output of [byName, byArn, byPartialArn]) {
      assert.equal(output.SecretString, 's3cret')
      assert.equal(output.ARN, arn)
      assert.equal(output.Name, 'db/password')
      assert.equal(output.VersionId, versionId)
      assert.deepEqual(output.VersionStages, ['AWSCURRENT'])
      assert.ok(output.CreatedDate instanceof Date)
      assert.equal(output.SecretBinary, undefined)
    }
  })

  it('moves the previous AWSCURRENT version to AWSPREVIOUS and reads either by stage or id', async () => {
    const { fake, sm } = env()
    const first = fake.putSecret({ name: 'api-key', secretString: 'one', createdDate: new Date('2024-01-01T00:00:00Z') })
    fake.putSecret({ name: 'api-key', secretString: 'two' })

    const current = await sm.send(new GetSecretValueCommand({ SecretId: 'api-key' }))
    const previous = await sm.send(new GetSecretValueCommand({ SecretId: 'api-key', VersionStage: 'AWSPREVIOUS' }))
    const byId = await sm.send(new GetSecretValueCommand({ SecretId: 'api-key', VersionId: first.versionId }))

    assert.equal(current.SecretString, 'two')
    assert.equal(previous.SecretString, 'one')
    assert.deepEqual(previous.VersionStages, ['AWSPREVIOUS'])
    assert.equal(previous.CreatedDate?.toISOString(), '2024-01-01T00:00:00.000Z')
    assert.equal(byId.SecretString, 'one')
  })

  it('returns a binary secret as bytes', async () => {
    const { fake, sm } = env()
    const bytes = Uint8Array.from([0, 1, 2, 250, 255])
    fake.putSecret({ name: 'cert', secretBinary: bytes })

    const output = await sm.send(new GetSecretValueCommand({ SecretId: 'cert' }))

    assert.deepEqual(Uint8Array.from(output.SecretBinary ?? []), bytes)
    assert.equal(output.SecretString, undefined)
  })

  it('answers ResourceNotFoundException for a missing secret, version id or stage', async () => {
    const { fake, sm } = env()
    fake.putSecret({ name: 'present', secretString: 'x' })

    for (const input of [
      { SecretId: 'absent' },
      { SecretId: 'present', VersionId: 'no-such-version' },
      { SecretId: 'present', VersionStage: 'AWSPREVIOUS' }
    ]) {
      const err = await failure(sm.send(new GetSecretValueCommand(input)))
      assert.equal(err.name, 'ResourceNotFoundException')
      assert.equal(err.$metadata?.httpStatusCode, 400)
    }
  })

  it('refuses a denied secret with an IAM-style message naming caller and ARN, until revoked', async () => {
    const { fake, sm } = env()
    const { arn } = fake.putSecret({ name: 'private', secretString: 'x' })
    const revoke = fake.denyAccess('private')

    const err = await failure(sm.send(new GetSecretValueCommand({ SecretId: arn })))
    revoke()
    const output = await sm.send(new GetSecretValueCommand({ SecretId: 'private' }))

    assert.equal(err.name, 'AccessDeniedException')
    assert.match(err.message, /^User: arn:aws:sts::123456789012:assumed-role\/app-role\/i-1 is not authorized to perform: secretsmanager:GetSecretValue on resource: arn:aws:secretsmanager:us-east-1:123456789012:secret:private-/)
    assert.equal(output.SecretString, 'x')
  })

  it('answers DecryptionFailure while the secret\'s KMS key is disabled', async () => {
    const { fake, sm } = env()
    fake.createKey({ alias: 'secrets' })
    fake.putSecret({ name: 'guarded', secretString: 'x', kmsKeyId: 'alias/secrets' })
    fake.setKeyEnabled('alias/secrets', false)

    const err = await failure(sm.send(new GetSecretValueCommand({ SecretId: 'guarded' })))

    assert.equal(err.name, 'DecryptionFailure')
  })

  it('BatchGetSecretValue returns the values and an Errors entry per missing or denied id', async () => {
    const { fake, sm } = env()
    fake.putSecret({ name: 'a', secretString: '1' })
    fake.putSecret({ name: 'b', secretString: '2' })
    fake.putSecret({ name: 'c', secretString: '3' })
    fake.denyAccess('c')

    const output = await sm.send(new BatchGetSecretValueCommand({ SecretIdList: ['a', 'missing', 'b', 'c'] }))
    const filters = await failure(sm.send(new BatchGetSecretValueCommand({ Filters: [{ Key: 'name', Values: ['a'] }] })))

    assert.deepEqual(output.SecretValues?.map((value) => [value.Name, value.SecretString]), [['a', '1'], ['b', '2']])
    assert.deepEqual(output.Errors?.map((error) => [error.SecretId, error.ErrorCode]), [
      ['missing', 'ResourceNotFoundException'],
      ['c', 'AccessDeniedException']
    ])
    assert.equal(filters.name, 'ValidationException')
  })

  it('DescribeSecret lists the staged versions', async () => {
    const { fake, sm } = env()
    const first = fake.putSecret({ name: 'rotated', secretString: '1' })
    const second = fake.putSecret({ name: 'rotated', secretString: '2' })
    fake.putSecret({ name: 'rotated', secretString: '3', versionStages: ['AWSPENDING'] })

    const output = await sm.send(new DescribeSecretCommand({ SecretId: 'rotated' }))

    assert.deepEqual(output.VersionIdsToStages?.[first.versionId], ['AWSPREVIOUS'])
    assert.deepEqual(output.VersionIdsToStages?.[second.versionId], ['AWSCURRENT'])
    assert.equal(Object.keys(output.VersionIdsToStages ?? {}).length, 3)
  })

  it('refuses reads of a secret scheduled for deletion with InvalidRequestException', async () => {
    const { fake, sm } = env()
    fake.putSecret({ name: 'doomed', secretString: 'x' })
    fake.deleteSecret('doomed', { recoveryWindow: true })

    const err = await failure(sm.send(new GetSecretValueCommand({ SecretId: 'doomed' })))

    assert.equal(err.name, 'InvalidRequestException')
  })
})

describe('FakeAws: SSM Parameter Store', () => {
  const env = useHarness()

  it('reads the latest version, or one chosen by :version or :label selector, by name or ARN', async () => {
    const { fake, ssm } = env()
    fake.putParameter({ name: '/app/mode', value: 'blue', type: 'String', labels: ['stable'] })
    const { arn } = fake.putParameter({ name: '/app/mode', value: 'green', type: 'String' })
    const get = async (Name: string) => (await ssm.send(new GetParameterCommand({ Name }))).Parameter

    const latest = await get('/app/mode')
    const byVersion = await get('/app/mode:1')
    const byLabel = await get('/app/mode:stable')
    const byArn = await get(arn)
    const byArnVersion = await get(`${arn}:1`)

    assert.equal(arn, 'arn:aws:ssm:us-east-1:123456789012:parameter/app/mode')
    assert.deepEqual([latest?.Value, latest?.Version, latest?.Selector], ['green', 2, undefined])
    assert.deepEqual([byVersion?.Value, byVersion?.Version, byVersion?.Selector], ['blue', 1, ':1'])
    assert.deepEqual([byLabel?.Value, byLabel?.Selector], ['blue', ':stable'])
    assert.deepEqual([byArn?.Name, byArn?.Value, byArn?.ARN], ['/app/mode', 'green', arn])
    assert.equal(byArnVersion?.Value, 'blue')
    assert.equal(latest?.DataType, 'text')
    assert.ok(latest?.LastModifiedDate instanceof Date)
  })

  it('moves a label between versions and reports unknown versions, labels and names', async () => {
    const { fake, ssm } = env()
    fake.putParameter({ name: 'flag', value: 'off', type: 'String', labels: ['live'] })
    fake.putParameter({ name: 'flag', value: 'on', type: 'String' })
    fake.labelParameterVersion('flag', 2, ['live'])

    const live = await ssm.send(new GetParameterCommand({ Name: 'flag:live' }))
    const errors = await Promise.all(['flag:9', 'flag:nope', 'absent'].map((Name) =>
      failure(ssm.send(new GetParameterCommand({ Name })))))

    assert.equal(live.Parameter?.Value, 'on')
    assert.deepEqual(errors.map((err) => err.name), ['ParameterVersionNotFound', 'ParameterVersionNotFound', 'ParameterNotFound'])
  })

  it('returns a SecureString as KMS ciphertext without decryption and as plaintext with it', async () => {
    const { fake, ssm, kms } = env()
    const { arn } = fake.putParameter({ name: '/app/token', value: 'hunter2', type: 'SecureString' })

    const sealed = await ssm.send(new GetParameterCommand({ Name: '/app/token' }))
    const opened = await ssm.send(new GetParameterCommand({ Name: '/app/token', WithDecryption: true }))
    const ciphertext = sealed.Parameter?.Value ?? ''
    const viaKms = await kms.send(new DecryptCommand({
      CiphertextBlob: Buffer.from(ciphertext, 'base64'),
      EncryptionContext: { PARAMETER_ARN: arn }
    }))

    assert.notEqual(ciphertext, 'hunter2')
    assert.match(ciphertext, /^[A-Za-z0-9+/]{40,}={0,2}$/)
    assert.ok(!Buffer.from(ciphertext, 'base64').includes('hunter2'))
    assert.equal(opened.Parameter?.Value, 'hunter2')
    assert.equal(opened.Parameter?.Type, 'SecureString')
    assert.equal(Buffer.from(viaKms.Plaintext ?? []).toString(), 'hunter2')
  })

  it('serves a secret through /aws/reference/secretsmanager/, as SSM does', async () => {
    const { fake, ssm } = env()
    const { arn } = fake.putSecret({ name: 'db', secretString: 'old' })
    fake.putSecret({ name: 'db', secretString: 'new' })

    const current = await ssm.send(new GetParameterCommand({ Name: '/aws/reference/secretsmanager/db', WithDecryption: true }))
    const previous = await ssm.send(new GetParameterCommand({ Name: '/aws/reference/secretsmanager/db:AWSPREVIOUS', WithDecryption: true }))
    const undecrypted = await failure(ssm.send(new GetParameterCommand({ Name: '/aws/reference/secretsmanager/db' })))
    const missing = await failure(ssm.send(new GetParameterCommand({ Name: '/aws/reference/secretsmanager/nope', WithDecryption: true })))

    const parameter = current.Parameter
    assert.deepEqual(
      [parameter?.Name, parameter?.Type, parameter?.Value, parameter?.Version, parameter?.ARN, parameter?.DataType],
      ['/aws/reference/secretsmanager/db', 'SecureString', 'new', 0, arn, undefined]
    )
    const source: unknown = JSON.parse(parameter?.SourceResult ?? '')
    assert.ok(typeof source === 'object' && source !== null)
    assert.deepEqual([Reflect.get(source, 'ARN'), Reflect.get(source, 'name'), Reflect.get(source, 'secretString')], [arn, 'db', 'new'])
    assert.deepEqual([previous.Parameter?.Value, previous.Parameter?.Selector], ['old', ':AWSPREVIOUS'])
    assert.equal(undecrypted.name, 'ValidationException')
    assert.equal(missing.name, 'ParameterNotFound')
  })

  it('GetParameters returns what exists and lists the rest in InvalidParameters', async () => {
    const { fake, ssm } = env()
    fake.putParameter({ name: 'a', value: '1', type: 'String' })
    fake.putParameter({ name: 'b', value: 'x,y', type: 'StringList' })

    const output = await ssm.send(new GetParametersCommand({ Names: ['a', 'missing', 'b', 'a:7'] }))

    assert.deepEqual(output.Parameters?.map((p) => [p.Name, p.Value, p.Type]), [['a', '1', 'String'], ['b', 'x,y', 'StringList']])
    assert.deepEqual(output.InvalidParameters, ['missing', 'a:7'])
  })

  it('GetParametersByPath pages at 10 and honours Recursive', async () => {
    const { fake, ssm } = env()
    for (let i = 0; i < 25; i++) fake.putParameter({ name: `/svc/p${String(i).padStart(2, '0')}`, value: `${i}`, type: 'String' })
    for (const name of ['/svc/db/host', '/svc/db/port', '/svc/db/tls/ca']) fake.putParameter({ name, value: 'v', type: 'String' })
    fake.putParameter({ name: '/other/p', value: 'v', type: 'String' })

    const pageSizes: number[] = []
    let NextToken: string | undefined
    do {
      const page = await ssm.send(new GetParametersByPathCommand({ Path: '/svc', NextToken }))
      pageSizes.push(page.Parameters?.length ?? 0)
      NextToken = page.NextToken
    } while (NextToken !== undefined)
    const recursive: string[] = []
    for await (const page of paginateGetParametersByPath({ client: ssm }, { Path: '/svc/', Recursive: true })) {
      recursive.push(...(page.Parameters ?? []).map((p) => p.Name ?? ''))
    }
    const tooMany = await failure(ssm.send(new GetParametersByPathCommand({ Path: '/svc', MaxResults: 11 })))
    const badToken = await failure(ssm.send(new GetParametersByPathCommand({ Path: '/svc', NextToken: 'bogus' })))

    assert.deepEqual(pageSizes, [10, 10, 5])
    assert.equal(recursive.length, 28)
    assert.ok(recursive.includes('/svc/db/tls/ca'))
    assert.ok(!recursive.includes('/other/p'))
    assert.equal(tooMany.name, 'ValidationException')
    assert.equal(badToken.name, 'InvalidNextToken')
  })

  it('hides SecureString values in GetParametersByPath unless decryption is asked for', async () => {
    const { fake, ssm } = env()
    fake.putParameter({ name: '/s/key', value: 'plain', type: 'SecureString' })

    const sealed = await ssm.send(new GetParametersByPathCommand({ Path: '/s' }))
    const opened = await ssm.send(new GetParametersByPathCommand({ Path: '/s', WithDecryption: true }))

    assert.notEqual(sealed.Parameters?.[0]?.Value, 'plain')
    assert.equal(opened.Parameters?.[0]?.Value, 'plain')
  })
})

describe('FakeAws: KMS', () => {
  const env = useHarness()

  it('round-trips Encrypt and Decrypt under an encryption context, without a KeyId on decrypt', async () => {
    const { fake, kms } = env()
    const keyArn = fake.createKey({ alias: 'app' })
    const EncryptionContext = { purpose: 'test', tenant: 'a' }

    const encrypted = await kms.send(new EncryptCommand({ KeyId: 'alias/app', Plaintext: Buffer.from('hello'), EncryptionContext }))
    const decrypted = await kms.send(new DecryptCommand({
      CiphertextBlob: encrypted.CiphertextBlob,
      EncryptionContext: { tenant: 'a', purpose: 'test' }
    }))

    assert.match(keyArn, /^arn:aws:kms:us-east-1:123456789012:key\/[0-9a-f-]{36}$/)
    assert.equal(encrypted.KeyId, keyArn)
    assert.equal(encrypted.EncryptionAlgorithm, 'SYMMETRIC_DEFAULT')
    assert.equal(decrypted.KeyId, keyArn)
    assert.equal(Buffer.from(decrypted.Plaintext ?? []).toString(), 'hello')
  })

  it('accepts a key id, key ARN, alias name or alias ARN, and reports the key ARN', async () => {
    const { fake, kms } = env()
    const keyArn = fake.createKey({ alias: 'alias/named' })
    const keyId = keyArn.split('/')[1] ?? ''

    const ids = [keyId, keyArn, 'alias/named', 'arn:aws:kms:us-east-1:123456789012:alias/named']
    const described = await Promise.all(ids.map((KeyId) => kms.send(new DescribeKeyCommand({ KeyId }))))

    for (const output of described) {
      assert.equal(output.KeyMetadata?.Arn, keyArn)
      assert.equal(output.KeyMetadata?.KeyId, keyId)
      assert.equal(output.KeyMetadata?.KeyState, 'Enabled')
    }
  })

  it('rejects a wrong context and a tampered blob with InvalidCiphertextException', async () => {
    const { fake, kms } = env()
    const keyArn = fake.createKey()
    const { CiphertextBlob } = await kms.send(new EncryptCommand({ KeyId: keyArn, Plaintext: Buffer.from('x'), EncryptionContext: { a: '1' } }))
    const tampered = Uint8Array.from(CiphertextBlob ?? [])
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] ?? 0) ^ 1

    const wrongContext = await failure(kms.send(new DecryptCommand({ CiphertextBlob, EncryptionContext: { a: '2' } })))
    const noContext = await failure(kms.send(new DecryptCommand({ CiphertextBlob })))
    const tamperedBlob = await failure(kms.send(new DecryptCommand({ CiphertextBlob: tampered, EncryptionContext: { a: '1' } })))
    const garbage = await failure(kms.send(new DecryptCommand({ CiphertextBlob: Buffer.from('not a blob') })))

    for (const err of [wrongContext, noContext, tamperedBlob, garbage]) assert.equal(err.name, 'InvalidCiphertextException')
  })

  it('answers DisabledException, NotFoundException and AccessDeniedException as KMS does', async () => {
    const { fake, kms } = env()
    const disabled = fake.createKey({ alias: 'off', enabled: false })
    const denied = fake.createKey({ alias: 'denied' })
    fake.denyAccess('alias/denied')
    const encrypt = (KeyId: string) => kms.send(new EncryptCommand({ KeyId, Plaintext: Buffer.from('x') }))

    const errors = await Promise.all([
      encrypt('alias/off'),
      encrypt('alias/missing'),
      encrypt('arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000'),
      encrypt(denied)
    ].map(failure))

    assert.deepEqual(errors.map((err) => err.name), ['DisabledException', 'NotFoundException', 'NotFoundException', 'AccessDeniedException'])
    assert.ok(errors[0]?.message.includes(disabled))
    assert.ok(errors[3]?.message.includes('kms:Encrypt'))
  })

  it('generates data keys whose ciphertext decrypts to the same plaintext', async () => {
    const { fake, kms } = env()
    const keyArn = fake.createKey()

    const generated = await kms.send(new GenerateDataKeyCommand({ KeyId: keyArn, KeySpec: 'AES_256', EncryptionContext: { k: 'v' } }))
    const withoutPlaintext = await kms.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: keyArn, NumberOfBytes: 16 }))
    const decrypted = await kms.send(new DecryptCommand({ CiphertextBlob: generated.CiphertextBlob, EncryptionContext: { k: 'v' } }))
    const decrypted16 = await kms.send(new DecryptCommand({ CiphertextBlob: withoutPlaintext.CiphertextBlob, KeyId: keyArn }))

    assert.equal(generated.Plaintext?.length, 32)
    assert.deepEqual(Uint8Array.from(decrypted.Plaintext ?? []), Uint8Array.from(generated.Plaintext ?? []))
    assert.equal(decrypted16.Plaintext?.length, 16)
  })

  it('serves the AWS Encryption SDK\'s KMS keyring (a round trip through the ESDK)', async () => {
    const { fake } = env()
    const keyArn = fake.createKey({ alias: 'envelope' })
    // The keyring calls client.generateDataKey(...) and friends: it needs the aggregated `KMS`
    // client, not the bare KMSClient that only has send().
    const client = new KMS({ region: 'us-east-1', endpoint: fake.url, credentials, maxAttempts: 1 })
    const keyring = new KmsKeyringNode({ generatorKeyId: keyArn, clientProvider: () => client })
    const { encrypt, decrypt } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)

    try {
      const { result } = await encrypt(keyring, Buffer.from('envelope payload'), { encryptionContext: { app: 'test' } })
      const { plaintext, messageHeader } = await decrypt(keyring, result)

      assert.equal(plaintext.toString(), 'envelope payload')
      assert.equal(messageHeader.encryptionContext.app, 'test')
      assert.equal(messageHeader.encryptedDataKeys[0]?.providerInfo, keyArn)
      assert.deepEqual(fake.calls.filter((c) => c.service === 'kms').map((c) => c.operation), ['GenerateDataKey', 'Decrypt'])
    } finally {
      client.destroy()
    }
  })
})

describe('FakeAws: STS', () => {
  const env = useHarness({ accountId: '210987654321', callerArn: 'arn:aws:sts::210987654321:assumed-role/agent/session-1' })

  it('answers GetCallerIdentity over the query protocol', async () => {
    const { fake, sts } = env()

    const identity = await sts.send(new GetCallerIdentityCommand({}))

    assert.equal(identity.Account, '210987654321')
    assert.equal(identity.Arn, 'arn:aws:sts::210987654321:assumed-role/agent/session-1')
    assert.match(identity.UserId ?? '', /^AROA[0-9A-F]{17}:session-1$/)
    assert.equal(fake.calls[0]?.contentType, 'application/x-www-form-urlencoded')
    assert.equal(fake.calls[0]?.target, 'sts.GetCallerIdentity')
  })
})

describe('FakeAws: authentication and call records', () => {
  const env = useHarness()

  it('rejects a request without a SigV4 Authorization header', async () => {
    const { fake } = env()
    fake.putSecret({ name: 'x', secretString: 'y' })

    const json = await fetch(fake.url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'secretsmanager.GetSecretValue' },
      body: JSON.stringify({ SecretId: 'x' })
    })
    const query = await fetch(fake.url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: 'Bearer nope' },
      body: 'Action=GetCallerIdentity&Version=2011-06-15'
    })

    assert.equal(json.status, 403)
    assert.deepEqual(await json.json(), { __type: 'MissingAuthenticationTokenException', message: 'Missing Authentication Token' })
    assert.equal(query.status, 403)
    assert.match(await query.text(), /^<ErrorResponse[^>]*><Error><Type>Sender<\/Type><Code>IncompleteSignature<\/Code>/)
    assert.deepEqual(fake.calls.map((call) => call.accessKeyId), [undefined, undefined])
  })

  it('records access key id, signing region, user agents and input of each call', async () => {
    const { fake } = env()
    fake.putParameter({ name: 'p', value: 'v', type: 'String' })
    const ssm = new SSMClient({
      region: 'eu-west-1', endpoint: fake.url, credentials: { ...credentials, sessionToken: 'token' }, customUserAgent: 'secrets-agent/9.9.9'
    })

    try {
      await ssm.send(new GetParameterCommand({ Name: 'p', WithDecryption: true }))
    } finally {
      ssm.destroy()
    }

    const [call] = fake.calls
    assert.deepEqual(
      [call?.service, call?.operation, call?.target, call?.accessKeyId, call?.region, call?.sessionToken],
      ['ssm', 'GetParameter', 'AmazonSSM.GetParameter', 'AKIDTEST', 'eu-west-1', true]
    )
    assert.match(call?.userAgent ?? '', /aws-sdk-js\/3\./)
    assert.match(call?.userAgent ?? '', /secrets-agent\/9\.9\.9/)
    assert.match(call?.amzUserAgent ?? '', /aws-sdk-js\/3\./)
    assert.equal(call?.contentType, 'application/x-amz-json-1.1')
    assert.deepEqual(call?.input, { Name: 'p', WithDecryption: true })
    assert.equal(call?.attempt, 1)
    assert.ok(call?.at instanceof Date)
  })

  it('records which attempt of the SDK\'s retry loop each call was', async () => {
    const { fake } = env()
    fake.putSecret({ name: 's', secretString: 'v' })
    fake.inject({ kind: 'error500' }, { times: 1 })
    const sm = new SecretsManagerClient({ region: 'us-east-1', endpoint: fake.url, credentials, maxAttempts: 2 })

    try {
      const output = await sm.send(new GetSecretValueCommand({ SecretId: 's' }))
      assert.equal(output.SecretString, 'v')
    } finally {
      sm.destroy()
    }

    assert.deepEqual(fake.calls.map((call) => call.attempt), [1, 2])
  })

  it('counts calls by operation and filter, and forgets them on resetCalls()', async () => {
    const { fake, sm, ssm } = env()
    fake.putSecret({ name: 's', secretString: 'v' })
    fake.putParameter({ name: 'p', value: 'v', type: 'String' })

    await sm.send(new GetSecretValueCommand({ SecretId: 's' }))
    await sm.send(new GetSecretValueCommand({ SecretId: 's', VersionStage: 'AWSCURRENT' }))
    await ssm.send(new GetParameterCommand({ Name: 'p' }))

    assert.equal(fake.count(), 3)
    assert.equal(fake.count('GetSecretValue'), 2)
    assert.equal(fake.count('GetSecretValue', (call) => call.input.VersionStage === 'AWSCURRENT'), 1)
    assert.equal(fake.count(undefined, (call) => call.service === 'ssm'), 1)
    fake.resetCalls()
    assert.equal(fake.count(), 0)
  })
})

describe('FakeAws: signature verification', () => {
  const env = useHarness({ credentials: { AKIDTEST: 'secret' } })

  it('accepts a correct signature and refuses a wrong secret or an unknown key', async () => {
    const { fake, sm, sts } = env()
    fake.putSecret({ name: 's', secretString: 'v' })
    const config = { region: 'us-east-1', endpoint: fake.url, maxAttempts: 1 }
    const wrongSecret = new SecretsManagerClient({ ...config, credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'wrong' } })
    const unknownKey = new STSClient({ ...config, credentials: { accessKeyId: 'AKIDOTHER', secretAccessKey: 'secret' } })

    try {
      const ok = await sm.send(new GetSecretValueCommand({ SecretId: 's' }))
      const identity = await sts.send(new GetCallerIdentityCommand({}))
      const badSignature = await failure(wrongSecret.send(new GetSecretValueCommand({ SecretId: 's' })))
      const badKey = await failure(unknownKey.send(new GetCallerIdentityCommand({})))

      assert.equal(ok.SecretString, 'v')
      assert.equal(identity.Account, '123456789012')
      assert.equal(badSignature.name, 'InvalidSignatureException')
      assert.equal(badKey.name, 'InvalidClientTokenId')
    } finally {
      wrongSecret.destroy()
      unknownKey.destroy()
    }
  })
})

describe('FakeAws: fault injection', () => {
  const env = useHarness()

  it('throttles with ThrottlingException (400) for the given number of calls', async () => {
    const { fake, sm } = env()
    fake.putSecret({ name: 's', secretString: 'v' })
    const fault = fake.inject({ kind: 'throttle' }, { operation: 'GetSecretValue', times: 1 })

    const err = await failure(sm.send(new GetSecretValueCommand({ SecretId: 's' })))
    const after = await sm.send(new GetSecretValueCommand({ SecretId: 's' }))

    assert.equal(err.name, 'ThrottlingException')
    assert.equal(err.$metadata?.httpStatusCode, 400)
    assert.equal(after.SecretString, 'v')
    assert.equal(fault.hits, 1)
  })

  it('answers error500 with each service\'s own 5xx error', async () => {
    const { fake, sm, ssm, kms, sts } = env()
    fake.inject({ kind: 'error500' })

    const errors = await Promise.all([
      sm.send(new GetSecretValueCommand({ SecretId: 's' })),
      ssm.send(new GetParameterCommand({ Name: 'p' })),
      kms.send(new DescribeKeyCommand({ KeyId: 'alias/x' })),
      sts.send(new GetCallerIdentityCommand({}))
    ].map(failure))

    assert.deepEqual(errors.map((err) => err.name), ['InternalServiceError', 'InternalServerError', 'KMSInternalException', 'InternalFailure'])
    for (const err of errors) {
      assert.equal(err.$metadata?.httpStatusCode, 500)
      assert.equal(err.$fault, 'server')
    }
  })

  it('answers expiredCredentials with ExpiredTokenException, and STS with ExpiredToken', async () => {
    const { fake, ssm, sts } = env()
    fake.inject({ kind: 'expiredCredentials' })

    const json = await failure(ssm.send(new GetParameterCommand({ Name: 'p' })))
    const query = await failure(sts.send(new GetCallerIdentityCommand({})))

    assert.equal(json.name, 'ExpiredTokenException')
    assert.equal(query.name, 'ExpiredToken')
  })

  it('resets the connection, which the SDK reports as a network error', async () => {
    const { fake, sm } = env()
    fake.inject({ kind: 'reset' }, { times: 1 })

    const err = await failure(sm.send(new GetSecretValueCommand({ SecretId: 's' })))

    assert.equal(err.$metadata?.httpStatusCode, undefined)
    assert.match(`${err.name} ${err.message} ${String(Reflect.get(err, 'code'))}`, /ECONNRESET|socket hang up/)
  })

  it('answers malformed with a 200 the SDK cannot parse', async () => {
    const { fake, sm, sts } = env()
    fake.putSecret({ name: 's', secretString: 'v' })
    fake.inject({ kind: 'malformed' })

    const json = await failure(sm.send(new GetSecretValueCommand({ SecretId: 's' })))
    const xml = await failure(sts.send(new GetCallerIdentityCommand({})))

    assert.equal(json.name, 'SyntaxError')
    assert.match(xml.message, /XML parse error/)
    for (const err of [json, xml]) assert.equal(err.$metadata?.httpStatusCode, 200)
  })

  it('hangs until the client gives up', async () => {
    const { fake, sm } = env()
    fake.inject({ kind: 'hang' })

    const err = await failure(sm.send(new GetSecretValueCommand({ SecretId: 's' }), { abortSignal: AbortSignal.timeout(100) }))

    assert.equal(err.name, 'AbortError')
    assert.equal(fake.count('GetSecretValue'), 1)
  })

  it('adds latency, global and injected, before the real answer', async () => {
    const { fake, sm } = env()
    fake.putSecret({ name: 's', secretString: 'v' })
    fake.latencyMs = 30
    fake.inject({ kind: 'latency', ms: 40 }, { times: 1 })

    const started = performance.now()
    const output = await sm.send(new GetSecretValueCommand({ SecretId: 's' }))
    const elapsed = performance.now() - started

    assert.equal(output.SecretString, 'v')
    assert.ok(elapsed >= 65, `answered after ${elapsed} ms`)
  })

  it('applies a fault only to matching calls, and stops once removed or cleared', async () => {
    const { fake, sm, ssm } = env()
    fake.putSecret({ name: 'a', secretString: '1' })
    fake.putSecret({ name: 'b', secretString: '2' })
    fake.putParameter({ name: 'p', value: 'v', type: 'String' })
    const fault = fake.inject({ kind: 'throttle' }, { match: (call) => call.input.SecretId === 'b' })
    fake.inject({ kind: 'error500' }, { service: 'ssm' })

    const a = await sm.send(new GetSecretValueCommand({ SecretId: 'a' }))
    const b = await failure(sm.send(new GetSecretValueCommand({ SecretId: 'b' })))
    const p = await failure(ssm.send(new GetParameterCommand({ Name: 'p' })))
    fault.remove()
    const bAgain = await sm.send(new GetSecretValueCommand({ SecretId: 'b' }))
    fake.clearFaults()
    const pAgain = await ssm.send(new GetParameterCommand({ Name: 'p' }))

    assert.equal(a.SecretString, '1')
    assert.equal(b.name, 'ThrottlingException')
    assert.equal(p.name, 'InternalServerError')
    assert.equal(bAgain.SecretString, '2')
    assert.equal(pAgain.Parameter?.Value, 'v')
  })

  it('ends hung and keep-alive connections on close()', async () => {
    const fake = await FakeAws.start()
    const sm = new SecretsManagerClient({ region: 'us-east-1', endpoint: fake.url, credentials, maxAttempts: 1 })
    fake.inject({ kind: 'hang' })

    try {
      const pending = failure(sm.send(new GetSecretValueCommand({ SecretId: 's' })))
      await new Promise((resolve) => setTimeout(resolve, 50))
      await fake.close()
      const err = await pending

      assert.equal(err.$metadata?.httpStatusCode, undefined)
    } finally {
      sm.destroy()
      await fake.close()
    }
  })
})
