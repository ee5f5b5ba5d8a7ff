import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import type { SecretCache } from '../cache/secret-cache.js'
import type { Envelope } from '../envelope/envelope.js'
import type { Provider } from '../providers/types.js'
import type { Metrics } from '../metrics.js'
import { AccessDeniedError, CredentialsError } from '../providers/errors.js'
import type { Token } from '../token.js'
import { AllowList, AllowListRefusal } from './allow.js'
import { PUBLIC_PATHS, carriesToken, pathOf, tokenCheck } from './auth.js'
import { Errors, toErrorAnswer } from './errors.js'
import { fastPath } from './fast-path.js'
import { clientErrorHandler, checkRequestSize, limitConnections } from './connection-limits.js'
import { JSON_TYPE, KMS_BODY_LIMIT, MAX_HEADER_BYTES, MAX_ID_BYTES, MAX_URL_BYTES } from './limits.js'
import { Reads } from './reads.js'
import { healthRoutes, type Readiness } from './routes/health.js'
import { kmsRoutes } from './routes/kms.js'
import { parameterRoutes } from './routes/parameters.js'
import { secretRoutes } from './routes/secrets.js'
import { errorBody } from './schemas.js'
import { VERSION } from '../version.js'
import { accessLine, accessLog, type AccessFields, type AccessLog } from '../logger.js'

export interface AppOptions {
  provider: Provider
  cache: SecretCache
  token: Token
  logger: Logger
  /** Header names that may carry the token, in order. */
  tokenHeaders: readonly string[]
  /** Prefix of the `GET <prefix><secretId>` route (`/v1/`); the rest of the path is the id. */
  pathPrefix?: string
  secretsTtlMs: number
  parametersTtlMs: number
  /** What `/ready` reports; ready when omitted. */
  readiness?: Readiness
  /** Request counts and latencies go here when given. */
  metrics?: Metrics
  /** Open connections beyond this are answered 429 (default 800). */
  maxConnections?: number
  /** Time for a whole request to arrive, in ms (default 10 s); later → 408. */
  requestTimeoutMs?: number
  /** Collect the route schemas as an OpenAPI document (`app.swagger()`); for docs/openapi.json. */
  openapi?: boolean
  /** The `[allow]` patterns; everything is allowed when omitted. */
  allow?: AllowList
  /** Envelope encryption for `/envelope/*`, built with `allowKey` from `allow`; defaults over `provider` when omitted. */
  envelope?: Envelope | (() => Promise<Envelope>)
  /** Body limit of `/envelope/*` (`envelope_max_body_bytes`, default 1 MiB). */
  envelopeMaxBodyBytes?: number
  /**
   * Answer fresh secret hits before fastify (fast-path.ts); default true. Only requests that
   * reach the listening server take it: `inject()` goes to fastify directly.
   */
  fastPath?: boolean
}


/**
 * Builds the HTTP app; never listens (the CLI does, tests use inject()). Routes, token check,
 * error mapping and the access log are wired here, in one place.
 */
export function buildApp (options: AppOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: options.logger as FastifyBaseLogger,
    // Our own access log (below) leaves the id out; fastify's would log the URL.
    logController: new LogController({ disableRequestLogging: true }),
    // No child logger per request (fastify's default, for a request id): our lines carry no id,
    // and making one per request is a measurable share of a cache hit.
    childLoggerFactory: (logger) => logger,
    bodyLimit: KMS_BODY_LIMIT,
    // Ids are up to 2048 bytes, which percent-encoded can be three times longer.
    routerOptions: { maxParamLength: MAX_ID_BYTES * 3 + 16 },
    return503OnClosing: false,
    requestTimeout: options.requestTimeoutMs ?? 10_000,
    clientErrorHandler,
    http: {
      // Node's own limit covers the request line and headers together: raise it above both of
      // ours (URL 64 KiB, headers 16 KiB) so that ours answer with the right status.
      maxHeaderSize: MAX_URL_BYTES + MAX_HEADER_BYTES + 4096,
      headersTimeout: options.requestTimeoutMs ?? 10_000,
      // How often Node checks for requests past their timeout (default 30 s).
      connectionsCheckingInterval: Math.min(1000, options.requestTimeoutMs ?? 10_000),
      // An HTTP/1.1 request without Host would get Node's own bare 400 (no JSON body, no
      // no-store). The agent serves one host, so Host tells it nothing; such requests are
      // answered like any other.
      requireHostHeader: false
    },
    // Errors fastify raises before routing (a malformed percent-encoding in the path): still no
    // answer but 401 without the token, and our error shape with it.
    frameworkErrors: (error, request, reply) => {
      const authorised = PUBLIC_PATHS.has(pathOf(request.url)) || carriesToken(options.token, options.tokenHeaders.map((h) => h.toLowerCase()), request.raw)
      const answer = authorised
        ? { statusCode: 400, type: 'ValidationException', message: 'The request URL is not valid.' }
        : toErrorAnswer(new Errors.Unauthorized(options.tokenHeaders[0] ?? 'X-Aws-Parameters-Secrets-Token'))
      if (!authorised) options.metrics?.authFailures.inc()
      // The reply here is typed for the route-less context; it is an ordinary reply.
      void (reply as FastifyReply).code(answer.statusCode).header('cache-control', 'no-store').type(JSON_TYPE).send(errorBody(answer.type, answer.message))
      request.log.debug({ code: error.code }, 'request refused before routing')
    },
    // No type coercion: a KMS body's `{"a": 1}` context or `["alias/x"]` KeyId is refused, as KMS
    // refuses it, not read as a string. (Query values are strings already; batch-get's one
    // `secretId` is made a list by its route.)
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
    // The built agent's route schemas come compiled (scripts/precompile-schemas.ts, with the
    // options above); run from src/, fastify compiles them here as usual.
    ...(typeof SECRETS_AGENT_SCHEMA_COMPILERS === 'undefined' ? {} : { schemaController: { compilersFactory: SECRETS_AGENT_SCHEMA_COMPILERS } })
  })

  const allow = options.allow ?? new AllowList()
  const reads = new Reads(options.provider, options.cache, { secretsMs: options.secretsTtlMs, parametersMs: options.parametersTtlMs }, allow)
  /** Methods each route path answers, for 405's `Allow`. */
  const knownPaths = new Map<string, Set<string>>()
  const prefix = options.pathPrefix ?? '/v1/'

  app.addHook('onRoute', (route) => {
    const methods = knownPaths.get(route.url) ?? new Set<string>()
    for (const m of Array.isArray(route.method) ? route.method : [route.method]) methods.add(m)
    knownPaths.set(route.url, methods)
  })
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('cache-control', 'no-store')
    done()
  })
  app.addHook('onRequest', limitConnections(app, options.maxConnections ?? 800))
  app.addHook('onRequest', checkRequestSize)
  const metrics = options.metrics
  const recorder = requestRecorder(options.logger, metrics)
  app.addHook('onRequest', tokenCheck(options.token, options.tokenHeaders, () => metrics?.authFailures.inc()))
  // A request no route takes is answered before its body is read: a JSON body sent with the wrong
  // method would otherwise fail to parse (400) before the not-found handler could say 405.
  app.addHook('onRequest', (request, reply, done) => { done(request.is404 ? noRoute(request, reply) : undefined) })
  app.addHook('onResponse', (request, reply, done) => {
    const cache = reply.getHeader('x-cache')
    // Route patterns, never URLs: a URL holds the id.
    recorder.record({ method: request.method, route: request.routeOptions.url ?? 'unmatched', status: reply.statusCode, ms: reply.elapsedTime, ...(typeof cache === 'string' ? { cache } : {}) })
    done()
  })

  app.setErrorHandler((error, request, reply) => {
    const answer = toErrorAnswer(error)
    if (answer.statusCode >= 500 && answer.type === 'InternalFailure') {
      request.log.error({ err: { name: (error as Error).name, message: (error as Error).message, stack: (error as Error).stack } }, 'unexpected error')
    } else if (answer.statusCode >= 500) {
      request.log.warn({ type: answer.type, cause: causeName(error) }, 'upstream failure')
    } else if (error instanceof AllowListRefusal) {
      request.log.warn({ kind: error.kind, id: error.id }, 'refused by the allow-list')
    } else if (error instanceof AccessDeniedError || error instanceof CredentialsError) {
      // Expired credentials, a missing IAM grant, a disabled key: the operator must hear of it.
      request.log.warn({ route: request.routeOptions.url, type: answer.type }, 'upstream refused access')
    }
    if (answer.retryAfterSeconds !== undefined) reply.header('retry-after', String(Math.max(1, Math.ceil(answer.retryAfterSeconds))))
    void reply.code(answer.statusCode).type(JSON_TYPE).send(errorBody(answer.type, answer.message))
  })

  /** 405 with Allow for a path that takes other methods, else 404. */
  const noRoute = (request: FastifyRequest, reply: FastifyReply): Error => {
    const path = pathOf(request.url)
    const methods = knownPaths.get(path) ?? (path.startsWith(prefix) ? knownPaths.get(`${prefix}*`) : undefined)
    if (methods === undefined) return new Errors.RouteNotFound()
    void reply.header('allow', [...methods].sort().join(', '))
    return new Errors.MethodNotAllowed(request.method)
  }
  app.setNotFoundHandler((request, reply) => { throw noRoute(request, reply) })

  if (options.fastPath !== false) {
    // Once closing, fastify answers everything: it tells each client `Connection: close`, so that
    // kept-alive connections end and the close can finish.
    let closing = false
    app.addHook('preClose', (done) => { closing = true; done() })
    answerFirst(app.server, fastPath({ reads, token: options.token, tokenHeaders: options.tokenHeaders, allow, recorder, closing: () => closing }))
  }

  if (options.openapi === true) app.register(import('@fastify/swagger'), { openapi: OPENAPI_INFO })
  app.register(healthRoutes, { readiness: options.readiness })
  app.register(secretRoutes, { reads, pathPrefix: prefix, allow })
  app.register(parameterRoutes, { reads, allow })
  app.register(kmsRoutes, { provider: options.provider, allow: options.allow, envelope: options.envelope, envelopeMaxBodyBytes: options.envelopeMaxBodyBytes })
  return app
}

const OPENAPI_INFO = {
  openapi: '3.0.3',
  info: {
    title: 'secrets-agent',
    description: 'AWS Secrets Manager secrets, SSM parameters and KMS for local applications, from a refreshing cache. Compatible with the AWS Parameters and Secrets Lambda Extension and the AWS Secrets Manager Agent.',
    version: VERSION
  },
  components: {
    securitySchemes: {
      token: { type: 'apiKey' as const, in: 'header', name: 'X-Aws-Parameters-Secrets-Token' },
      vaultToken: { type: 'apiKey' as const, in: 'header', name: 'X-Vault-Token' }
    }
  },
  security: [{ token: [] }, { vaultToken: [] }] as Array<Record<string, string[]>>
}

/** What every answered request leaves behind, whichever path answered it. */
export interface RequestRecorder {
  /** Records one answered request. */
  record: AccessLog
  /**
   * A recorder for requests that share these fields but the latency (ms), with the work of labels
   * and line done once; `at` is the time of the answer as performance.now(), when at hand.
   */
  fixed (fields: Omit<AccessFields, 'ms'>): (ms: number, at?: number) => void
}

/**
 * Records answered requests: their count and latency in the metrics, and their access line
 * (route, status, latency, cache outcome), written without pino's generic pass (logger.ts).
 */
function requestRecorder (logger: Logger, metrics: Metrics | undefined): RequestRecorder {
  const access = accessLog(logger)
  const rounded = (ms: number): number => Math.round(ms * 100) / 100
  return {
    record: (fields) => {
      metrics?.requests(fields.route, fields.method, fields.status).observe(fields.ms / 1000)
      access({ ...fields, ms: rounded(fields.ms) })
    },
    fixed: (fields) => {
      const series = metrics?.requests(fields.route, fields.method, fields.status)
      const line = accessLine(logger, fields)
      return (ms, at) => {
        series?.observe(ms / 1000)
        line(rounded(ms), at)
      }
    }
  }
}

/**
 * Puts `first` before fastify's request listener on `server`: a request it answers (returns true
 * for) fastify never sees; any other goes on to fastify as it came.
 */
function answerFirst (server: Server, first: (request: IncomingMessage, response: ServerResponse) => boolean): void {
  const listeners = server.listeners('request') as Array<(request: IncomingMessage, response: ServerResponse) => void>
  const [fastify] = listeners
  // Fastify makes the server with its handler as the one listener; anything else is not ours to rewire.
  if (listeners.length !== 1 || fastify === undefined) return
  server.removeListener('request', fastify)
  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    if (!first(request, response)) fastify(request, response)
  })
}

function causeName (error: unknown): string | undefined {
  const cause = (error as { cause?: unknown }).cause
  if (cause instanceof Error) return cause.name
  return undefined
}
