import type { Parameter, SecretValue } from '../providers/types.js'
import { serialiser, type Serialiser } from './serialisers.js'

/**
 * JSON Schemas of the API, shared by the routes (validation, documentation) and by the
 * serialisers that build a response's bytes once, when a value is stored. Fields the Lambda
 * extension sends as null are nullable here: fast-json-stringify writes a null declared as plain
 * `string` as `""`, and clients index those keys directly.
 */

const nullableString = { type: ["string", "null"] }
const nullableInteger = { type: ['integer', 'null'] }

/**
 * A boolean query parameter: `true` or `false` in any case, `1` or `0`, as the Secrets Manager
 * Agent takes them (it lower-cases the value; Python's requests sends `True`).
 */
export const BOOLEAN_PATTERN = '^(?:[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]|1|0)$'
export const booleanFlag = { type: 'string', pattern: BOOLEAN_PATTERN }

export const secretValueSchema = {
  type: 'object',
  properties: {
    ARN: { type: 'string' },
    CreatedDate: { type: 'string', description: 'ISO 8601' },
    Name: { type: 'string' },
    SecretBinary: { ...nullableString, description: 'base64; null when the secret is a string' },
    SecretString: { ...nullableString, description: 'null when the secret is binary' },
    VersionId: { type: 'string' },
    VersionStages: { type: 'array', items: { type: 'string' } }
  },
  required: ['ARN', 'CreatedDate', 'Name', 'SecretBinary', 'SecretString', 'VersionId', 'VersionStages']
}

export const getSecretValueSchema = {
  ...secretValueSchema,
  properties: { ...secretValueSchema.properties, ResultMetadata: { type: 'object', additionalProperties: false } },
  required: [...secretValueSchema.required, 'ResultMetadata']
}

export const parameterSchema = {
  type: 'object',
  properties: {
    ARN: { type: 'string' },
    DataType: nullableString,
    LastModifiedDate: { type: 'string', description: 'ISO 8601' },
    Name: { type: 'string' },
    Selector: nullableString,
    SourceResult: nullableString,
    Type: { type: 'string', enum: ['String', 'StringList', 'SecureString'] },
    Value: nullableString,
    Version: nullableInteger
  },
  required: ['ARN', 'DataType', 'LastModifiedDate', 'Name', 'Selector', 'SourceResult', 'Type', 'Value', 'Version']
}

export const getParameterSchema = {
  type: 'object',
  properties: {
    Parameter: parameterSchema,
    ResultMetadata: { type: 'object', additionalProperties: false }
  },
  required: ['Parameter', 'ResultMetadata']
}

export const getParametersByPathSchema = {
  type: 'object',
  properties: { Parameters: { type: 'array', items: parameterSchema } },
  required: ['Parameters']
}

export const batchGetSchema = {
  type: 'object',
  properties: {
    SecretValues: { type: 'array', items: secretValueSchema },
    Errors: {
      type: 'array',
      items: {
        type: 'object',
        properties: { SecretId: { type: 'string' }, ErrorCode: { type: 'string' }, Message: { type: 'string' } },
        required: ['SecretId', 'ErrorCode', 'Message']
      }
    }
  },
  required: ['SecretValues', 'Errors']
}

export const errorSchema = {
  type: 'object',
  properties: { __type: { type: 'string' }, message: { type: 'string' } },
  required: ['__type', 'message']
}

/** The error answers a route can give, for its `response` schema. */
export function errorResponses (...statuses: number[]): Record<number, typeof errorSchema> {
  return Object.fromEntries(statuses.map((s) => [s, errorSchema]))
}

/**
 * The answers the agent serialises itself: when a value is stored (the bytes are cached) and for
 * every error. scripts/precompile-schemas.ts compiles these for the built agent, whose
 * serialiser has no others: an answer needs its schema here.
 */
export const answerSchemas = {
  secret: getSecretValueSchema,
  parameter: getParameterSchema,
  parameters: getParametersByPathSchema,
  batch: batchGetSchema,
  error: errorSchema
}

const serialise = Object.fromEntries(Object.entries(answerSchemas).map(([name, schema]) => [name, serialiser(schema)])) as Record<keyof typeof answerSchemas, Serialiser>

export function secretShape (s: SecretValue): Record<string, unknown> {
  return {
    ARN: s.arn,
    CreatedDate: s.createdDate.toISOString(),
    Name: s.name,
    SecretBinary: s.secretBinary === undefined ? null : Buffer.from(s.secretBinary.buffer, s.secretBinary.byteOffset, s.secretBinary.byteLength).toString('base64'),
    SecretString: s.secretString ?? null,
    VersionId: s.versionId,
    VersionStages: s.versionStages
  }
}

export function parameterShape (p: Parameter): Record<string, unknown> {
  return {
    ARN: p.arn,
    DataType: p.dataType,
    LastModifiedDate: p.lastModifiedDate.toISOString(),
    Name: p.name,
    Selector: p.selector,
    SourceResult: p.sourceResult,
    Type: p.type,
    Value: p.value,
    Version: p.version
  }
}

/**
 * The UTF-8 bytes of `text` in memory of their own. These bytes are cached for a TTL or longer,
 * and `Buffer.from(text)` would hand back a slice of Node's shared allocation pool whenever the
 * text is short (under 4 KiB on Node 20, under 32 KiB on Node 24, whose pool is 64 KiB): the
 * slice keeps the whole pool alive, with whatever short-lived bytes were also cut from it. A
 * cache of 10,000 4 KiB secrets held 89 MB of buffers that way on Node 24, 44 MB without.
 */
export function ownBytes (text: string): Buffer {
  const bytes = Buffer.allocUnsafeSlow(Buffer.byteLength(text))
  bytes.write(text)
  return bytes
}

/** A GetSecretValue answer, in bytes of its own (it is cached). */
export function secretBody (s: SecretValue): Buffer {
  return ownBytes(serialise.secret({ ...secretShape(s), ResultMetadata: {} }))
}

/** A GetParameter answer, in bytes of its own (it is cached). */
export function parameterBody (p: Parameter): Buffer {
  return ownBytes(serialise.parameter({ Parameter: parameterShape(p), ResultMetadata: {} }))
}

/** A GetParametersByPath answer, in bytes of its own (it is cached). */
export function parametersBody (list: Parameter[]): Buffer {
  return ownBytes(serialise.parameters({ Parameters: list.map(parameterShape) }))
}

export function batchBody (values: SecretValue[], errors: Array<{ SecretId: string, ErrorCode: string, Message: string }>): string {
  return serialise.batch({ SecretValues: values.map(secretShape), Errors: errors })
}

export function errorBody (type: string, message: string): string {
  return serialise.error({ __type: type, message })
}
