import type { FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify'
import type { AllowList } from '../allow.js'
import type { CacheResult } from '../../cache/secret-cache.js'
import { JsonNumber, jsonText, parseJsonKeepingNumbers } from '../../json-numbers.js'
import { Errors } from '../errors.js'
import { secretFromBody, type Reads } from '../reads.js'
import { batchGetSchema, batchBody, booleanFlag, errorResponses, getSecretValueSchema } from '../schemas.js'
import { JSON_TYPE } from '../limits.js'
import { NO_CONTROL_CHARACTERS, checkId, flag, idSchema, sendCached } from './common.js'

interface SecretQuery {
  versionId?: string
  versionStage?: string
  refreshNow?: string
  field?: string
}

const secretQueryProperties = {
  // Any ClientRequestToken becomes a VersionId: AWS bounds its length only (UUIDs are the SDKs' default).
  versionId: { type: 'string', minLength: 32, maxLength: 64, pattern: NO_CONTROL_CHARACTERS },
  versionStage: { type: 'string', minLength: 1, maxLength: 256, pattern: NO_CONTROL_CHARACTERS },
  refreshNow: booleanFlag,
  field: { type: 'string', minLength: 1, maxLength: 1024 }
}

const secretResponses = {
  200: getSecretValueSchema,
  ...errorResponses(400, 401, 403, 404, 429, 502, 503, 504)
}

export const secretRoutes: FastifyPluginCallback<{ reads: Reads, pathPrefix: string, allow: AllowList }> = (app, { reads, pathPrefix, allow }, done) => {
  const answer = async (request: FastifyRequest, reply: FastifyReply, secretId: string, query: SecretQuery): Promise<FastifyReply> => {
    allow.check('secrets', checkId(secretId, 'secretId'), request.log)
    const result = await reads.secret({
      secretId,
      ...(query.versionId === undefined ? {} : { versionId: query.versionId }),
      ...(query.versionStage === undefined ? {} : { versionStage: query.versionStage })
    }, flag(query.refreshNow))
    if (query.field !== undefined) return sendField(reply, result, query.field)
    return sendCached(reply, result)
  }

  app.get<{ Querystring: SecretQuery & { secretId: string } }>('/secretsmanager/get', {
    schema: {
      querystring: {
        type: 'object',
        additionalProperties: false,
        required: ['secretId'],
        properties: { secretId: idSchema, ...secretQueryProperties }
      },
      response: secretResponses
    }
  }, async (request, reply) => answer(request, reply, request.query.secretId, request.query))

  app.get<{ Params: { '*': string }, Querystring: SecretQuery }>(`${pathPrefix}*`, {
    schema: {
      querystring: { type: 'object', additionalProperties: false, properties: secretQueryProperties },
      response: secretResponses
    }
  }, async (request, reply) => answer(request, reply, request.params['*'], request.query))

  app.get<{ Querystring: { secretId: string[], refreshNow?: string } }>('/secretsmanager/batch-get', {
    schema: {
      querystring: {
        type: 'object',
        additionalProperties: false,
        required: ['secretId'],
        properties: {
          secretId: { type: 'array', items: idSchema, minItems: 1, maxItems: 20 },
          refreshNow: booleanFlag
        }
      },
      response: { 200: batchGetSchema, ...errorResponses(400, 401, 403, 429, 502, 503, 504) }
    },
    // One `secretId=` is a string to the query parser: the list of one id the schema wants.
    preValidation: (request, _reply, done) => {
      const query = request.query as { secretId?: unknown }
      if (typeof query.secretId === 'string') query.secretId = [query.secretId]
      done()
    }
  }, async (request, reply) => {
    const ids = request.query.secretId.map((id) => checkId(id, 'secretId'))
    // Refused ids are reported in Errors, as AWS reports ids it cannot read, and never fetched
    // (or, for an ARN that turned out to name a refused secret, never cached).
    const refusedFirst = ids.filter((id) => !allow.allows('secrets', id))
    const allowed = ids.filter((id) => !refusedFirst.includes(id))
    const result = allowed.length > 0 ? await reads.batch(allowed, flag(request.query.refreshNow)) : { values: [], errors: [], refused: [] }
    const refused = [...refusedFirst, ...result.refused]
    if (refused.length > 0) request.log.warn({ kind: 'secrets', ids: refused }, 'refused by the allow-list')
    const errors = [
      ...result.errors.map((e) => ({ SecretId: e.secretId, ErrorCode: e.errorCode, Message: e.message })),
      ...[...new Set(refused)].map((id) => ({ SecretId: id, ErrorCode: 'AccessDeniedException', Message: 'This secret may not be read through this agent (allow-list).' }))
    ]
    return reply.type(JSON_TYPE).send(batchBody(result.values, errors))
  })
  done()
}

/** `field=NAME`: one top-level field of a JSON SecretString, as text (for shell scripts). */
function sendField (reply: FastifyReply, result: CacheResult<null>, field: string): FastifyReply {
  const secret = secretFromBody(result.entry.body)
  if (secret.secretString === undefined) throw new Errors.Validation('field= needs a string secret; this one is binary.')
  let parsed: unknown
  try {
    // Numbers as the secret holds them: a 20-digit id's field is not rounded through a double.
    parsed = parseJsonKeepingNumbers(secret.secretString)
  } catch {
    throw new Errors.Validation('field= needs a JSON object secret; this one is not JSON.')
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed) || parsed instanceof JsonNumber) {
    throw new Errors.Validation('field= needs a JSON object secret.')
  }
  if (!Object.prototype.hasOwnProperty.call(parsed, field)) throw new Errors.NotFound(`The secret has no field ${JSON.stringify(field)}.`)
  const value = (parsed as Record<string, unknown>)[field]
  return reply
    .header('x-cache', result.outcome)
    .header('age', String(result.ageSeconds))
    .type('text/plain; charset=utf-8')
    .send(typeof value === 'string' ? value : jsonText(value))
}
