import { AwsError, constraintError } from './errors.js'

/**
 * Typed reads of a JSON 1.1 request body. The SDK only sends well-typed members, so a wrong type
 * here means a hand-built request; it gets the SerializationException AWS would answer.
 */
export class Input {
  constructor (readonly raw: Readonly<Record<string, unknown>>) {}

  string (member: string): string | undefined {
    const value = this.raw[member]
    if (value === undefined || value === null) return undefined
    if (typeof value !== 'string') throw wrongType(member, 'string')
    return value
  }

  requiredString (member: string): string {
    const value = this.string(member)
    if (value === undefined) throw constraintError(member, undefined, 'Member must not be null')
    return value
  }

  boolean (member: string): boolean | undefined {
    const value = this.raw[member]
    if (value === undefined || value === null) return undefined
    if (typeof value !== 'boolean') throw wrongType(member, 'boolean')
    return value
  }

  integer (member: string): number | undefined {
    const value = this.raw[member]
    if (value === undefined || value === null) return undefined
    if (typeof value !== 'number' || !Number.isInteger(value)) throw wrongType(member, 'integer')
    return value
  }

  stringList (member: string): string[] | undefined {
    const value = this.raw[member]
    if (value === undefined || value === null) return undefined
    if (!Array.isArray(value) || !value.every((item): item is string => typeof item === 'string')) {
      throw wrongType(member, 'list of strings')
    }
    return value
  }

  stringMap (member: string): Record<string, string> | undefined {
    const value = this.raw[member]
    if (value === undefined || value === null) return undefined
    if (!isRecord(value) || !Object.values(value).every((item) => typeof item === 'string')) {
      throw wrongType(member, 'map of strings')
    }
    return value as Record<string, string>
  }

  /** Blobs travel as base64 in JSON 1.1. */
  blob (member: string): Buffer | undefined {
    const value = this.string(member)
    if (value === undefined) return undefined
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 !== 0) {
      throw new AwsError('SerializationException', `Member ${member} is not valid base64`)
    }
    return Buffer.from(value, 'base64')
  }

  requiredBlob (member: string): Buffer {
    const value = this.blob(member)
    if (value === undefined) throw constraintError(member, undefined, 'Member must not be null')
    return value
  }

  has (member: string): boolean {
    return this.raw[member] !== undefined && this.raw[member] !== null
  }
}

export function isRecord (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function wrongType (member: string, expected: string): AwsError {
  return new AwsError('SerializationException', `Member ${member} must be a ${expected}`)
}
