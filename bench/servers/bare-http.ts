/** Baseline: a bare node:http server answering the agent's cache-hit bytes after the same token check. */
import { createServer } from 'node:http'
import { UNAUTHORIZED, baselineConfig } from './response.js'

const config = baselineConfig()
const headers = { ...config.headers, 'content-length': String(config.body.length) }
const server = createServer((request, response) => {
  if (!config.matches(request.headers[config.tokenHeader])) {
    response.writeHead(401, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }).end(UNAUTHORIZED)
    return
  }
  response.writeHead(200, headers).end(config.body)
})
server.listen(config.port, '127.0.0.1')
process.once('SIGTERM', () => { server.closeAllConnections(); server.close(() => process.exit(0)) })
