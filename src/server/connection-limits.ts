import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { nodeHttp } from '../builtins.js'
import { PUBLIC_PATHS, pathOf } from './auth.js'
import { Errors, type ApiError } from './errors.js'
import { JSON_TYPE, MAX_HEADER_BYTES, MAX_URL_BYTES } from './limits.js'
import { errorBody } from './schemas.js'

const OVER_LIMIT = Symbol('secrets-agent.overLimit')
type CountedSocket = Socket & { [OVER_LIMIT]?: boolean }

/** Whether `socket` was accepted past the connection cap (its requests are answered 429). */
export function isOverLimit (socket: Socket | null | undefined): boolean {
  return (socket as CountedSocket | null | undefined)?.[OVER_LIMIT] === true
}

/**
 * Counts open connections; one accepted beyond `max` is marked, and its requests are answered
 * 429 and the connection closed. Answering (rather than dropping, as `server.maxConnections`
 * does) tells a client to back off instead of retrying at once.
 *
 * `/ping` and `/ready` are answered on such a connection too, which then closes: an app whose
 * pool holds `max` connections open must not make the orchestrator's probes fail and restart
 * the agent. They cost what the 429 would.
 */
export function limitConnections (app: FastifyInstance, max: number): (request: FastifyRequest, reply: FastifyReply, done: (error?: Error) => void) => void {
  let open = 0
  app.server.on('connection', (socket: CountedSocket) => {
    open += 1
    if (open > max) socket[OVER_LIMIT] = true
    socket.once('close', () => { open -= 1 })
  })
  return function checkConnections (request, reply, done) {
    if (isOverLimit(request.raw.socket)) {
      void reply.header('connection', 'close')
      if (PUBLIC_PATHS.has(pathOf(request.url))) return done()
      void reply.header('retry-after', '1')
      return done(new Errors.TooManyConnections())
    }
    done()
  }
}

/** 414 for a URL over 64 KiB, 431 for headers over 16 KiB (DESIGN §4). */
export function checkRequestSize (request: FastifyRequest, _reply: FastifyReply, done: (error?: Error) => void): void {
  if (Buffer.byteLength(request.raw.url ?? '') > MAX_URL_BYTES) return done(new Errors.UriTooLong(MAX_URL_BYTES))
  if (headerBytes(request.raw.rawHeaders) > MAX_HEADER_BYTES) return done(new Errors.HeadersTooLarge(MAX_HEADER_BYTES))
  done()
}

/** The size of a request's headers as the limit counts it: names and values, 2 bytes each for `: ` and CRLF. */
export function headerBytes (raw: readonly string[]): number {
  let size = 0
  for (let i = 0; i < raw.length; i++) size += (raw[i]?.length ?? 0) + 2
  return size
}

/**
 * The answer that holds `socket` (Node's own field for it), if any. It holds it until Node has
 * handled its `finish` event, and only then hands the socket to the next answer queued behind it
 * (pipelined requests): an answer already written in full, whose `finish` is still to come, holds
 * it too, or the answers queued behind it would be lost with the connection.
 */
function answeringOn (socket: Socket): ServerResponse | undefined {
  return (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage ?? undefined
}

/**
 * Answers what Node's HTTP parser rejects before any route runs (a request not received within
 * the request timeout, headers past the parser's limit, malformed HTTP) in the agent's own error
 * shape, then closes the connection.
 *
 * Bytes after a request that said `Connection: close` are the one exception: that request is
 * still being answered, and the connection closes after its answer, as that header asks. The
 * bytes are ignored. (Node's HTTP client sends them when it gives a DELETE or OPTIONS a body: it
 * frames such a body by closing the connection, not by its length.) Destroying the connection
 * here would drop the answer and leave the client with a reset.
 */
export function clientErrorHandler (error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || error.code === 'HPE_CLOSED_CONNECTION' || socket.destroyed) return
  const answer = error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
    ? new Errors.RequestTimeout()
    : error.code === 'HPE_HEADER_OVERFLOW'
      ? new Errors.HeadersTooLarge(MAX_HEADER_BYTES)
      : new Errors.Validation('The request is not valid HTTP.')
  // A request whose body did not come in time: its answer has not begun, and never will (the
  // route waits for the body). It gets the 408 in its place, when its turn comes.
  const timedOut = (response: ServerResponse): boolean =>
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT' && !response.headersSent && !response.req.complete
  const answering = answeringOn(socket)
  if (answering === undefined) {
    // Write an answer only on a connection that has had none: after a response (one that said
    // `Connection: close`, or an earlier one on a kept-alive connection) more bytes would
    // corrupt what the client reads. Node's own handler holds back for the same reason.
    answerAndClose(socket, socket.bytesWritten === 0 ? answer : undefined)
    return
  }
  // Requests still being answered (a kept-alive client pipelining, or writing its next request
  // wrong): those requests get their answers, in turn, and then the connection closes; the bytes
  // get none. An error answer now would be read as a request's.
  socket.pause()
  const closeAfter = (response: ServerResponse): void => {
    if (timedOut(response)) {
      answerAndClose(socket, answer)
      return
    }
    // Node hands the socket to the next queued answer before this listener runs.
    response.once('finish', () => {
      const next = answeringOn(socket)
      if (next !== undefined && next !== response) closeAfter(next)
      else socket.destroySoon()
    })
    response.once('close', () => { if (!response.writableFinished && !socket.destroyed) socket.destroy() })
  }
  closeAfter(answering)
}

/** Writes `answer` (when given) as the connection's last answer, and closes it. */
function answerAndClose (socket: Socket, answer: ApiError | undefined): void {
  if (answer !== undefined && socket.writable) {
    const { statusCode: status, code: type, message } = answer
    const body = errorBody(type, message)
    socket.write(`HTTP/1.1 ${status} ${nodeHttp().STATUS_CODES[status] ?? ''}\r\nContent-Type: ${JSON_TYPE}\r\nCache-Control: no-store\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
  }
  socket.destroy()
}
