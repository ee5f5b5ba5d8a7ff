import assert from 'node:assert/strict'
import { describe, it } from 'node:test'

import { AllowList, globMatch, namesInArn } from '../../src/server/allow.js'

describe('globMatch', () => {
  it('matches any run of characters, slashes and nothing included, with *', () => {
    assert.ok(globMatch('*', ''))
    assert.ok(globMatch('*', 'alias/app/db/x'))
    assert.ok(globMatch('alias/app/*', 'alias/app/db/x'))
    assert.ok(globMatch('alias/app/*', 'alias/app/'))
    assert.ok(globMatch('a*b*c', 'aXXbYYc'))
    assert.ok(globMatch('a*b*c', 'abc'))
    assert.ok(!globMatch('alias/app/*', 'alias/other/x'))
    assert.ok(!globMatch('a*b*c', 'aXXbYY'))
  })

  it('matches exactly one character, a code point, with ?', () => {
    assert.ok(globMatch('key/?', 'key/1'))
    assert.ok(globMatch('key/?', 'key/é'))
    assert.ok(globMatch('x?', 'x😀'))
    assert.ok(!globMatch('key/?', 'key/'))
    assert.ok(!globMatch('key/?', 'key/12'))
  })

  it('takes every other character literally, regular-expression syntax included', () => {
    assert.ok(globMatch('a.b+(c)[d]', 'a.b+(c)[d]'))
    assert.ok(!globMatch('a.b', 'aXb'))
    assert.ok(!globMatch('^a$', 'a'))
    assert.ok(!globMatch('Alias/x', 'alias/x'))
  })

  it('matches the whole value, not a part of it', () => {
    assert.ok(!globMatch('alias/app', 'alias/app/x'))
    assert.ok(!globMatch('app/x', 'alias/app/x'))
    assert.ok(globMatch('', ''))
    assert.ok(!globMatch('', 'x'))
  })

  it('answers patterns that make a backtracking matcher explode (linear in stars, not exponential)', { timeout: 5000 }, () => {
    assert.ok(!globMatch('*a*a*a*a*a*a*a*a*b', 'a'.repeat(2048)))
    assert.ok(globMatch('*a*a*a*a*a*a*a*a*b', 'a'.repeat(2048) + 'b'))
  })
})

describe('namesInArn', () => {
  it('finds key/<id> and alias/<name> in KMS ARNs', () => {
    assert.deepEqual(namesInArn('kmsKeys', 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab'), ['key/1234abcd-12ab-34cd-56ef-1234567890ab'])
    assert.deepEqual(namesInArn('kmsKeys', 'arn:aws:kms:us-east-1:111122223333:alias/app/db'), ['alias/app/db'])
    assert.deepEqual(namesInArn('kmsKeys', 'alias/app/db'), [])
  })

  it('finds the secret name with and without its random suffix, and the parameter name', () => {
    assert.deepEqual(namesInArn('secrets', 'arn:aws:secretsmanager:us-east-1:111122223333:secret:app/db-AbCdEf'), ['app/db', 'app/db-AbCdEf'])
    assert.deepEqual(namesInArn('parameters', 'arn:aws:ssm:us-east-1:111122223333:parameter/app/x'), ['/app/x'])
    assert.deepEqual(namesInArn('parameters', 'arn:aws:ssm:us-east-1:111122223333:parameter/flat'), ['/flat', 'flat'])
  })
})

describe('AllowList', () => {
  it('allows every id of every kind by default', () => {
    const allow = new AllowList()
    assert.ok(allow.kmsKey('alias/anything'))
    assert.ok(allow.allows('secrets', 'any/secret'))
    assert.ok(allow.allows('parameters', '/any/parameter'))
  })

  it('matches a KMS pattern against the id as given and against the name inside an ARN', () => {
    const allow = new AllowList({ kmsKeys: ['alias/app/*', 'key/1111*'] })

    assert.ok(allow.kmsKey('alias/app/db'))
    assert.ok(allow.kmsKey('arn:aws:kms:us-east-1:111122223333:alias/app/db'))
    assert.ok(allow.kmsKey('arn:aws:kms:eu-west-1:111122223333:key/11112222-3333-4444-5555-666677778888'))
    assert.ok(!allow.kmsKey('11112222-3333-4444-5555-666677778888'), 'a bare key id is not key/<id>')
    assert.ok(!allow.kmsKey('alias/other'))
    assert.ok(!allow.kmsKey('arn:aws:kms:us-east-1:111122223333:key/99992222-3333-4444-5555-666677778888'))
  })

  it('matches full-ARN patterns too', () => {
    const allow = new AllowList({ kmsKeys: ['arn:aws:kms:*:111122223333:*'] })
    assert.ok(allow.kmsKey('arn:aws:kms:us-east-1:111122223333:key/x'))
    assert.ok(!allow.kmsKey('arn:aws:kms:us-east-1:999999999999:key/x'))
  })

  it('allows nothing of a kind whose list is empty, and keeps kinds apart', () => {
    const allow = new AllowList({ kmsKeys: [], secrets: ['app/*'] })
    assert.ok(!allow.kmsKey('alias/app/db'))
    assert.ok(allow.allows('secrets', 'app/db'))
    assert.ok(!allow.allows('secrets', 'other/db'))
    assert.ok(allow.allows('parameters', '/anything'), 'a kind not given keeps the default')
  })

  it('checks the full ARN a secret was fetched by: its name, the ARN, and its partial ARN', () => {
    const prefix = 'arn:aws:secretsmanager:us-east-1:111122223333:secret:'
    const byName = new AllowList({ secrets: ['dev/db'] })
    assert.ok(byName.allowsSecretArn(`${prefix}dev/db-AbC123`))
    // Asked as `${prefix}dev/db-secret`, which passes `allows` on "dev/db", and was that secret.
    assert.ok(!byName.allowsSecretArn(`${prefix}dev/db-secret-XyZ789`))

    const byPartialArn = new AllowList({ secrets: [`${prefix}dev/db`] })
    assert.ok(byPartialArn.allowsSecretArn(`${prefix}dev/db-AbC123`))
    assert.ok(!byPartialArn.allowsSecretArn(`${prefix}dev/db-secret-XyZ789`))

    // `${prefix}payments-3zhK6X` passes `payments-*` as asked; the secret it names is `payments`.
    const wildcard = new AllowList({ secrets: ['payments-*'] })
    assert.ok(wildcard.allows('secrets', `${prefix}payments-3zhK6X`))
    assert.ok(!wildcard.allowsSecretArn(`${prefix}payments-3zhK6X`))
    assert.ok(wildcard.allowsSecretArn(`${prefix}payments-api-Qw12Er`))

    assert.ok(new AllowList().allowsSecretArn(`${prefix}anything-AbC123`))
  })
})
