import type { FastifyReply } from 'fastify'
import type { CacheResult } from '../../cache/secret-cache.js'
import { Errors } from '../errors.js'
import { JSON_TYPE, MAX_ID_BYTES } from '../limits.js'

/** A schema pattern: text without control characters. */
export const NO_CONTROL_CHARACTERS = '^[^\\u0000-\\u001f\\u007f]+$'

/** An id: 1 to 2048 bytes, no control characters (checked in bytes by `checkId` too). */
export const idSchema = {
  type: 'string',
  minLength: 1,
  maxLength: MAX_ID_BYTES,
  pattern: NO_CONTROL_CHARACTERS
}

export function checkId (id: string, field: string): string {
  if (id === '') throw new Errors.Validation(`The ${field} must not be empty.`)
  if (Buffer.byteLength(id, 'utf8') > MAX_ID_BYTES) throw new Errors.Validation(`The ${field} is longer than ${MAX_ID_BYTES} bytes.`)
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(id)) throw new Errors.Validation(`The ${field} contains control characters.`)
  return id
}

export function flag (value: string | undefined, fallback = false): boolean {
  if (value === undefined) return fallback
  return value === '1' || value.toLowerCase() === 'true'
}

/** Sends stored bytes as they are: a hit serialises nothing. */
export function sendCached (reply: FastifyReply, result: CacheResult<unknown>): FastifyReply {
  return reply
    .header('x-cache', result.outcome)
    .header('age', String(result.ageSeconds))
    .type(JSON_TYPE)
    .send(result.entry.body)
}
