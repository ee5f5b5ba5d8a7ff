import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Token } from '../token.js'
import { Errors } from './errors.js'

/** Paths answered without a token: liveness and readiness probes. */
export const PUBLIC_PATHS: ReadonlySet<string> = new Set(['/ping', '/ready'])

export function pathOf (url: string): string {
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}

/** Whether one of the header `names` (lower case) carries the token. */
export function hasValidToken (token: Token, names: readonly string[], headers: IncomingHttpHeaders): boolean {
  for (const name of names) {
    const value = headers[name]
    if (typeof value === 'string' && token.matches(value)) return true
  }
  return false
}

/**
 * Whether a request carries the token in one of the header `names` (lower case): `hasValidToken`,
 * or, for a header sent twice (Node joins its values into `"a, b"`), its first value, as the
 * Secrets Manager Agent takes it (a client library or proxy may repeat a header).
 */
export function carriesToken (token: Token, names: readonly string[], request: IncomingMessage): boolean {
  return hasValidToken(token, names, request.headers) || firstSentIsToken(token, names, request.rawHeaders)
}

function firstSentIsToken (token: Token, names: readonly string[], rawHeaders: readonly string[]): boolean {
  const seen = new Set<string>()
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase()
    if (!names.includes(name) || seen.has(name)) continue
    seen.add(name)
    if (token.matches(rawHeaders[i + 1]!)) return true
  }
  return false
}

/** Whether a request shows signs of having come through a proxy (`X-Forwarded-For`, `Forwarded`). */
export function isForwarded (headers: IncomingHttpHeaders): boolean {
  return headers['x-forwarded-for'] !== undefined || headers.forwarded !== undefined
}

/**
 * The onRequest check (before any body is read): a valid token in one of the configured headers,
 * and no sign of having come through a proxy. A request that fails never learns which routes
 * exist: it gets 401 whatever its path.
 */
export function tokenCheck (token: Token, headers: readonly string[], onFailure: () => void = () => {}) {
  const names = headers.map((h) => h.toLowerCase())
  const shown = headers[0] ?? 'X-Aws-Parameters-Secrets-Token'
  return function checkToken (request: FastifyRequest, _reply: FastifyReply, done: (error?: Error) => void): void {
    if (PUBLIC_PATHS.has(pathOf(request.url))) return done()
    if (!carriesToken(token, names, request.raw)) {
      onFailure()
      return done(new Errors.Unauthorized(shown))
    }
    // SSRF through a proxy on the same host: such requests are not the app's own.
    if (isForwarded(request.headers)) {
      return done(new Errors.ForwardedRequest())
    }
    done()
  }
}
