import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Parameter, SecretValue } from '../../src/providers/types.js'
import { ownBytes, parameterBody, parametersBody, secretBody } from '../../src/server/schemas.js'

/**
 * Cached answers are built once and held for a TTL or longer: each must own exactly its bytes,
 * never a slice of Node's shared Buffer pool (which would keep the whole pool alive per entry).
 */
function assertOwnMemory (bytes: Buffer, what: string): void {
  assert.equal(bytes.byteOffset, 0, `${what} starts inside a larger allocation`)
  assert.equal(bytes.buffer.byteLength, bytes.length, `${what} holds ${bytes.buffer.byteLength} bytes for ${bytes.length}`)
}

const secret = (secretString: string): SecretValue => ({
  arn: 'arn:aws:secretsmanager:us-east-1:000000000000:secret:app/db-AbCdEf',
  name: 'app/db',
  versionId: '11111111-2222-4333-a444-555555555555',
  secretString,
  versionStages: ['AWSCURRENT'],
  createdDate: new Date('2024-01-01T00:00:00.000Z')
})

const parameter = (value: string): Parameter => ({
  arn: 'arn:aws:ssm:us-east-1:000000000000:parameter/app/level',
  name: '/app/level',
  type: 'String',
  dataType: 'text',
  value,
  version: 1,
  lastModifiedDate: new Date('2024-01-01T00:00:00.000Z'),
  selector: null,
  sourceResult: null
})

describe('cached answer bytes', () => {
  it('ownBytes: the UTF-8 bytes of the text, in an allocation of exactly their size', () => {
    for (const text of ['', 'a', 'é€😀', 'x'.repeat(100), 'y'.repeat(4095), 'z'.repeat(4096), 'ü'.repeat(20_000), 'w'.repeat(70_000)]) {
      const bytes = ownBytes(text)
      assert.ok(bytes.equals(Buffer.from(text, 'utf8')), `bytes of a ${text.length}-character text`)
      assertOwnMemory(bytes, `ownBytes of ${text.length} characters`)
    }
  })

  it('secret, parameter and get-by-path answers own their bytes, small or large', () => {
    for (const size of [10, 1000, 4096, 40_000]) {
      const value = 's'.repeat(size)
      const body = secretBody(secret(value))
      assertOwnMemory(body, `a secret of ${size} bytes`)
      assert.equal((JSON.parse(body.toString('utf8')) as { SecretString: string }).SecretString, value)
      assertOwnMemory(parameterBody(parameter(value)), `a parameter of ${size} bytes`)
      assertOwnMemory(parametersBody([parameter(value), parameter(value)]), `a path of two ${size}-byte parameters`)
    }
  })
})
