import type { FastifyPluginCallback } from 'fastify'
import { Errors } from '../errors.js'
import { errorSchema } from '../schemas.js'

export interface ReadinessState {
  ready: boolean
  /** Why not, when not ready. */
  reason?: string
}

export interface Readiness {
  state (): ReadinessState
}

const TEXT = (description: string): Record<string, unknown> => ({ description, content: { 'text/plain': { schema: { type: 'string' } } } })

export const healthRoutes: FastifyPluginCallback<{ readiness?: Readiness | undefined }> = (app, options, done) => {
  const readiness = options.readiness

  app.get('/ping', {
    schema: { response: { 200: TEXT('`healthy`: the process answers (liveness).') } }
  }, async (_request, reply) => reply.type('text/plain; charset=utf-8').send('healthy'))

  app.get('/ready', {
    schema: { response: { 200: TEXT('`ready`: configuration valid, credentials resolved, prefetch settled.'), 503: { description: 'Not ready yet, or shutting down; the message says why.', ...errorSchema } } }
  }, async (_request, reply) => {
    const state = readiness?.state() ?? { ready: true }
    if (!state.ready) throw new Errors.NotReady(state.reason ?? 'The agent is not ready yet.')
    return reply.type('text/plain; charset=utf-8').send('ready')
  })
  done()
}
