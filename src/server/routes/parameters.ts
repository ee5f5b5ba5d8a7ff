import type { FastifyPluginCallback } from 'fastify'
import { REFERENCE_PREFIX, splitSelector } from '../../providers/parameter-name.js'
import { namesInArn, type AllowList } from '../allow.js'
import { Errors } from '../errors.js'
import type { Reads } from '../reads.js'
import { booleanFlag, errorResponses, getParameterSchema, getParametersByPathSchema } from '../schemas.js'
import { checkId, flag, idSchema, sendCached } from './common.js'

interface ParameterQuery {
  name: string
  version?: string
  label?: string
  withDecryption?: string
  refreshNow?: string
}

/** A Parameter Store label. Not beginning with a digit (as in SSM): `name:1` reads as version 1. */
const PARAMETER_LABEL = /^[A-Za-z_.-][A-Za-z0-9_.-]{0,99}$/

export const parameterRoutes: FastifyPluginCallback<{ reads: Reads, allow: AllowList }> = (app, { reads, allow }, done) => {
  app.get<{ Querystring: ParameterQuery }>('/systemsmanager/parameters/get', {
    schema: {
      querystring: {
        type: 'object',
        additionalProperties: false,
        required: ['name'],
        properties: {
          name: idSchema,
          version: { type: 'string', pattern: '^[1-9][0-9]{0,9}$' },
          // A parameter's label, or for a reference a secret's staging label or version id: their
          // own rules are checked below, once it is known which. No colon: it would read as a selector.
          label: { type: 'string', minLength: 1, maxLength: 256, pattern: '^[^:\\u0000-\\u001f\\u007f]+$' },
          withDecryption: booleanFlag,
          refreshNow: booleanFlag
        }
      },
      response: { 200: getParameterSchema, ...errorResponses(400, 401, 403, 404, 429, 502, 503, 504) }
    }
  }, async (request, reply) => {
    const { version, label } = request.query
    const name = checkId(request.query.name, 'name')
    if (version !== undefined && label !== undefined) throw new Errors.Validation('Give version or label, not both.')
    const selector = version ?? label
    const { name: bare, selector: own } = splitSelector(name)
    if (selector !== undefined && own !== null) throw new Errors.Validation('The name already has a :version or :label selector; do not also pass version or label.')
    // A reference to a secret, named by path or by ARN.
    const references = [bare, ...namesInArn('parameters', bare)].filter((path) => path.startsWith(REFERENCE_PREFIX))
    if (label !== undefined && references.length === 0 && !PARAMETER_LABEL.test(label)) {
      throw new Errors.Validation('The query parameter "label" must be a Parameter Store label: up to 100 letters, digits, ".", "-" or "_", not beginning with a digit.')
    }
    allow.check('parameters', bare, request.log)
    // A reference must pass the secret rules too.
    for (const path of references) allow.check('secrets', path.slice(REFERENCE_PREFIX.length), request.log)
    const result = await reads.parameter(selector === undefined ? name : `${name}:${selector}`, flag(request.query.withDecryption), flag(request.query.refreshNow))
    return sendCached(reply, result)
  })

  app.get<{ Querystring: { path: string, recursive?: string, withDecryption?: string, refreshNow?: string } }>('/systemsmanager/parameters/get-by-path', {
    schema: {
      querystring: {
        type: 'object',
        additionalProperties: false,
        required: ['path'],
        properties: {
          path: idSchema,
          recursive: booleanFlag,
          withDecryption: booleanFlag,
          refreshNow: booleanFlag
        }
      },
      response: { 200: getParametersByPathSchema, ...errorResponses(400, 401, 403, 404, 429, 502, 503, 504) }
    }
  }, async (request, reply) => {
    const path = checkId(request.query.path, 'path')
    if (!path.startsWith('/')) throw new Errors.Validation('The path must begin with a forward slash (/).')
    // The path itself must be allowed (as given, or as the folder `path/` that patterns like
    // `/app/*` describe), and only allowed names come back.
    if (!allow.allows('parameters', path) && !allow.allows('parameters', path.endsWith('/') ? path : path + '/')) allow.check('parameters', path, request.log)
    const result = await reads.parametersByPath(path, flag(request.query.recursive), flag(request.query.withDecryption), flag(request.query.refreshNow))
    return sendCached(reply, result)
  })
  done()
}
