import { format } from 'node:util'
import type { FastifyError } from 'fastify'
import {
  AccessDeniedError, CredentialsError, InvalidRequestError, NotFoundError, ProviderError, ThrottledError,
  UpstreamError, UpstreamTimeoutError
} from '../providers/errors.js'
import { BOOLEAN_PATTERN } from './schemas.js'

/** An error the agent answers with: `code` is the `__type` sent, `statusCode` the status. */
export class ApiError extends Error {
  override readonly name = 'ApiError'
  constructor (readonly code: string, readonly statusCode: number, message: string) {
    super(message)
  }
}

export interface ApiErrorClass {
  new (...args: unknown[]): ApiError
  readonly code: string
  readonly statusCode: number
}

/**
 * Shaped after @fastify/error's createError, which upper-cases codes: ours are AWS-style
 * exception names (`ResourceNotFoundException`) that clients compare as they are.
 */
function createError (code: string, template: string, statusCode: number): ApiErrorClass {
  return class extends ApiError {
    static readonly code = code
    static readonly statusCode = statusCode
    constructor (...args: unknown[]) {
      super(code, statusCode, format(template, ...args))
    }
  }
}

/**
 * Every error the agent answers with, in one place: the `__type` sent to the client, the
 * status, and a message template. Codes are never reused for a new meaning. The README's
 * "Errors" table lists them.
 */
export const Errors = {
  Validation: createError('ValidationException', '%s', 400),
  ForwardedRequest: createError('ForwardedRequestException', 'Requests carrying X-Forwarded-For or Forwarded are refused: the agent serves local callers only.', 400),
  Unauthorized: createError('UnauthorizedException', 'A valid token is required in the %s header.', 401),
  AccessDenied: createError('AccessDeniedException', '%s', 403),
  NotFound: createError('ResourceNotFoundException', '%s', 404),
  RouteNotFound: createError('UnknownRouteException', 'No such route.', 404),
  MethodNotAllowed: createError('MethodNotAllowedException', 'Method %s is not allowed here.', 405),
  RequestTimeout: createError('RequestTimeoutException', 'The request was not received in time.', 408),
  PayloadTooLarge: createError('PayloadTooLargeException', 'The request body is over the limit.', 413),
  UriTooLong: createError('UriTooLongException', 'The request URL is over the limit of %d bytes.', 414),
  UnsupportedMediaType: createError('UnsupportedMediaTypeException', 'The request body must be JSON (Content-Type: application/json).', 415),
  HeadersTooLarge: createError('RequestHeaderFieldsTooLargeException', 'The request headers are over the limit of %d bytes.', 431),
  TooManyConnections: createError('TooManyConnectionsException', 'Too many open connections; retry shortly.', 429),
  NotReady: createError('ServiceUnavailableException', '%s', 503),
  Internal: createError('InternalFailure', 'The agent failed to handle the request.', 500)
} as const

export interface ErrorAnswer {
  statusCode: number
  type: string
  message: string
  retryAfterSeconds?: number
}

/** The status for each provider error class (DESIGN §2). */
function providerStatus (error: ProviderError): number {
  if (error instanceof NotFoundError) return 404
  if (error instanceof AccessDeniedError || error instanceof CredentialsError) return 403
  if (error instanceof InvalidRequestError) return 400
  if (error instanceof ThrottledError) return 429
  if (error instanceof UpstreamTimeoutError) return 504
  if (error instanceof UpstreamError) return 502
  return 502
}


/**
 * Maps anything thrown while handling a request to what the client is told. Provider errors
 * carry messages we wrote; fastify's own errors get our codes; anything else is a bug and gets a
 * generic 500 whose cause is only logged.
 */
export function toErrorAnswer (error: unknown): ErrorAnswer {
  if (error instanceof ProviderError) {
    const statusCode = providerStatus(error)
    return {
      statusCode,
      type: error.code,
      message: error.message,
      ...(error instanceof ThrottledError ? { retryAfterSeconds: error.retryAfterSeconds } : {})
    }
  }
  if (error instanceof ApiError) return answerOf(error)
  const e = error as Partial<FastifyError> & { validation?: Array<{ instancePath?: string, message?: string, params?: Record<string, unknown> }>, validationContext?: string }
  if (Array.isArray(e.validation)) return answerOf(new Errors.Validation(describeValidation(e.validation, e.validationContext)))
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return answerOf(new Errors.PayloadTooLarge())
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return answerOf(new Errors.UnsupportedMediaType())
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return answerOf(new Errors.Validation('The request body is not valid JSON.'))
  }
  if (e.name === 'SyntaxError' && e.statusCode === 400) return answerOf(new Errors.Validation('The request body is not valid JSON.'))
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    // A client error fastify raised that we have no code for: keep the status, not its text.
    return { statusCode: e.statusCode, type: 'ValidationException', message: 'The request is not valid.' }
  }
  return answerOf(new Errors.Internal())
}

function answerOf (error: ApiError): ErrorAnswer {
  return { statusCode: error.statusCode, type: error.code, message: error.message }
}

function describeValidation (errors: Array<{ instancePath?: string, message?: string, keyword?: string, params?: Record<string, unknown> }>, context = 'request'): string {
  const first = errors[0]
  if (first === undefined) return `The ${context} is not valid.`
  const where = context === 'querystring' ? 'query parameter' : 'field'
  const path = (first.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.')
  const params = first.params ?? {}
  if (typeof params.additionalProperty === 'string') return `Unknown ${where} ${JSON.stringify(params.additionalProperty)}.`
  if (typeof params.missingProperty === 'string') return `Missing required ${where} ${JSON.stringify(params.missingProperty)}.`
  if (path !== '' && params.pattern === BOOLEAN_PATTERN) return `The ${where} ${JSON.stringify(path)} must be true or false (in any case), 1 or 0.`
  if (path !== '' && Array.isArray(params.allowedValues)) return `The ${where} ${JSON.stringify(path)} must be one of ${params.allowedValues.map(String).join(', ')}.`
  if (path !== '' && params.type === 'string') return `The ${where} ${JSON.stringify(path)} must be given once, as a string.`
  if (path !== '') return `The ${where} ${JSON.stringify(path)} ${first.message ?? 'is not valid'}.`
  return `The ${context} ${first.message ?? 'is not valid'}.`
}
