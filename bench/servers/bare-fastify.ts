/**
 * Baseline: a bare fastify server (no logger, no schema) answering the agent's cache-hit bytes after the same token check.
 * It loads fastify from node_modules, as a fastify app is usually run; the agent's bundle has fastify bundled in (bench/lib/build.ts).
 */
import Fastify from 'fastify'
import { UNAUTHORIZED, baselineConfig } from './response.js'

const config = baselineConfig()
const app = Fastify({ logger: false })
app.get('/secretsmanager/get', (request, reply) => {
  if (!config.matches(request.headers[config.tokenHeader])) {
    void reply.code(401).headers({ 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }).send(UNAUTHORIZED)
    return
  }
  void reply.headers(config.headers).send(config.body)
})
await app.listen({ host: '127.0.0.1', port: config.port })
process.once('SIGTERM', () => { void app.close().then(() => process.exit(0)) })
