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
          // Labels cannot start with a digit (as in SSM): `name:1` would read as version 1.
          label: { type: 'string', minLength: 1, maxLength: 100, pattern: '^[A-Za-z_.-][A-Za-z0-9_.-]*$' },
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
    allow.check('parameters', bare, request.log)
    // A reference to a secret must pass the secret rules too, named by path or by ARN.
    for (const path of [bare, ...namesInArn('parameters', bare)]) {
      if (path.startsWith(REFERENCE_PREFIX)) allow.check('secrets', path.slice(REFERENCE_PREFIX.length), request.log)
    }
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
