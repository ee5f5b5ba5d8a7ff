import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { pino } from 'pino'
import { SecretCache } from '../../src/cache/secret-cache.js'
import { LocalProvider } from '../../src/providers/local/provider.js'
import { buildApp } from '../../src/server/app.js'
import { Token } from '../../src/token.js'

const TOKEN = 'limits-test-token'

/** Sends raw bytes on a new connection and collects the whole answer until the server closes or `ms` pass. */
function raw (port: number, data: string | Buffer, ms = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let out = ''
    const timer = setTimeout(() => { socket.destroy(); resolve(out) }, ms)
    socket.on('data', (chunk) => { out += chunk.toString('utf8') })
    socket.on('close', () => { clearTimeout(timer); resolve(out) })
    socket.on('error', (error) => { clearTimeout(timer); if (out === '') reject(error); else resolve(out) })
    socket.write(data)
  })
}

function statusOf (response: string): number {
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(response)?.[1])
}

function bodyOf (response: string): Record<string, unknown> {
  return JSON.parse(response.slice(response.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>
}

describe('request limits on a listening agent', () => {
  let dir: string
  let app: FastifyInstance
  let provider: LocalProvider
  let port: number

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sa-limits-'))
    await writeFile(join(dir, 'store.yaml'), 'secrets:\n  s: value\n')
    provider = await LocalProvider.open({ storeFile: join(dir, 'store.yaml'), region: 'us-east-1', logger: pino({ level: 'silent' }), watch: false })
    app = buildApp({
      provider,
      cache: new SecretCache({ maxEntries: 10, maxBytes: 1 << 20, maxStaleMs: 0, staleIfError: true }),
      token: new Token(TOKEN),
      logger: pino({ level: 'silent' }),
      tokenHeaders: ['X-Aws-Parameters-Secrets-Token'],
      secretsTtlMs: 60_000,
      parametersTtlMs: 60_000,
      maxConnections: 3,
      requestTimeoutMs: 500
    })
    await app.listen({ host: '127.0.0.1', port: 0 })
    const address = app.server.address()
    port = typeof address === 'object' && address !== null ? address.port : 0
  })
  after(async () => {
    await app.close()
    await provider.close()
    await rm(dir, { recursive: true, force: true })
  })

  const request = (path: string, extraHeaders = ''): string =>
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Aws-Parameters-Secrets-Token: ${TOKEN}\r\n${extraHeaders}Connection: close\r\n\r\n`

  it('answers a URL over 64 KiB with 414 in the agent\'s error shape', async () => {
    const response = await raw(port, request(`/secretsmanager/get?secretId=s&x=${'a'.repeat(70 * 1024)}`))
    assert.equal(statusOf(response), 414)
    assert.equal(bodyOf(response).__type, 'UriTooLongException')
  })

  it('answers headers over 16 KiB with 431', async () => {
    const response = await raw(port, request('/secretsmanager/get?secretId=s', `X-Padding: ${'p'.repeat(17 * 1024)}\r\n`))
    assert.equal(statusOf(response), 431)
    assert.equal(bodyOf(response).__type, 'RequestHeaderFieldsTooLargeException')
  })

  it('answers headers past what the HTTP parser takes with 431 and a JSON body, then closes', async () => {
    const response = await raw(port, request('/secretsmanager/get?secretId=s', `X-Padding: ${'p'.repeat(100 * 1024)}\r\n`))
    assert.equal(statusOf(response), 431)
    assert.equal(bodyOf(response).__type, 'RequestHeaderFieldsTooLargeException')
  })

  it('answers malformed HTTP with 400 and a JSON body', async () => {
    const response = await raw(port, 'NOT HTTP AT ALL\r\n\r\n')
    assert.equal(statusOf(response), 400)
    assert.equal(bodyOf(response).__type, 'ValidationException')
  })

  it('answers a request that said Connection: close though bytes follow it, then closes', async () => {
    // Node's HTTP client sends a DELETE or OPTIONS body this way: no length, the close frames it.
    for (const [head, status] of [
      [`OPTIONS / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Aws-Parameters-Secrets-Token: ${TOKEN}\r\nConnection: close\r\n\r\n`, 404],
      [request('/secretsmanager/get?secretId=s'), 200]
    ] as const) {
      const started = Date.now()
      const response = await raw(port, head + '[]\r\nGET / HTTP/1.1\r\n\r\n')
      assert.equal(statusOf(response), status, response)
      assert.equal(response.match(/HTTP\/1\.1 \d{3} /g)?.length, 1, 'one answer, none for the bytes after it')
      assert.ok(Date.now() - started < 2000, 'the agent closed the connection, not the test')
    }
  })

  it('answers kept-alive requests that bytes of no HTTP follow, then closes, without answering the bytes', async () => {
    const started = Date.now()
    const get = `GET /v1/s HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Aws-Parameters-Secrets-Token: ${TOKEN}\r\n\r\n`
    const one = await raw(port, `${get}BOGUS\r\n\r\n`)
    const pipelined = await raw(port, `${get}${get}BOGUS\r\n\r\n`)

    assert.equal(statusOf(one), 200, one)
    // Answers follow each other on the connection: a status line comes right after a body.
    assert.deepEqual(pipelined.match(/HTTP\/1\.1 \d+/g), ['HTTP/1.1 200', 'HTTP/1.1 200'], 'each request its answer, none for the bytes after them')
    assert.equal(one.match(/HTTP\/1\.1 /g)?.length, 1)
    assert.ok(Date.now() - started < 2000, 'the agent closed the connections, not the test')
  })

  it('answers kept-alive fresh hits that bytes of no HTTP follow, each of them, then closes', async () => {
    const started = Date.now()
    const hit = `GET /secretsmanager/get?secretId=s HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Aws-Parameters-Secrets-Token: ${TOKEN}\r\n\r\n`
    assert.equal(statusOf(await raw(port, request('/secretsmanager/get?secretId=s'))), 200)

    // The fast path writes the first answer in full as it is read; Node hands the connection to
    // the answers queued behind it only at that answer's finish event, a tick later.
    const pipelined = await raw(port, `${hit}${hit}${hit}BOGUS\r\n\r\n`)

    assert.deepEqual(pipelined.match(/HTTP\/1\.1 \d+/g), ['HTTP/1.1 200', 'HTTP/1.1 200', 'HTTP/1.1 200'], pipelined)
    assert.deepEqual(pipelined.match(/x-cache: \w+/gi), ['x-cache: HIT', 'x-cache: HIT', 'x-cache: HIT'])
    assert.ok(Date.now() - started < 2000, 'the agent closed the connection, not the test')
  })

  it('answers 408 when the request does not arrive within the request timeout', async () => {
    const started = Date.now()
    const response = await raw(port, `GET /secretsmanager/get?secretId=s HTTP/1.1\r\nHost: 127.0.0.1\r\n`, 5000)
    assert.equal(statusOf(response), 408)
    assert.equal(bodyOf(response).__type, 'RequestTimeoutException')
    assert.ok(Date.now() - started < 4000, 'well before the test gives up')
  })

  it('answers a request without a Host header as any other, in its own shape', async () => {
    const served = await raw(port, `GET /v1/s HTTP/1.1\r\nX-Aws-Parameters-Secrets-Token: ${TOKEN}\r\nConnection: close\r\n\r\n`)
    const refused = await raw(port, 'GET /v1/s HTTP/1.1\r\nConnection: close\r\n\r\n')
    assert.equal(statusOf(served), 200, served)
    assert.equal(bodyOf(served).SecretString, 'value')
    assert.equal(statusOf(refused), 401, refused)
    assert.equal(bodyOf(refused).__type, 'UnauthorizedException')
    assert.match(refused, /\r\ncache-control: no-store\r\n/i)
  })

  it('answers 408 when a request\'s body does not arrive within the request timeout, and closes', async () => {
    const started = Date.now()
    const head = `POST /kms/encrypt HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Aws-Parameters-Secrets-Token: ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n`
    const response = await raw(port, `${head}{"Plain`, 5000)
    assert.equal(statusOf(response), 408, response)
    assert.equal(bodyOf(response).__type, 'RequestTimeoutException')
    assert.ok(Date.now() - started < 4000, 'the agent closed the connection, not the test')
  })

  it('answers 408 for a late body after an answered request on a kept-alive connection', async () => {
    const get = `GET /v1/s HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Aws-Parameters-Secrets-Token: ${TOKEN}\r\n\r\n`
    const post = `POST /kms/encrypt HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Aws-Parameters-Secrets-Token: ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"Plain`
    const response = await raw(port, `${get}${post}`, 5000)
    assert.deepEqual(response.match(/HTTP\/1\.1 \d+/g), ['HTTP/1.1 200', 'HTTP/1.1 408'], response)
  })

  it('answers 429 on connections beyond max_conn, and serves again once they close', async () => {
    const held: Socket[] = []
    try {
      for (let i = 0; i < 3; i++) {
        const socket = connect(port, '127.0.0.1')
        await new Promise((resolve) => socket.once('connect', resolve))
        held.push(socket)
      }
      await new Promise((resolve) => setTimeout(resolve, 50))
      const refused = await raw(port, request('/secretsmanager/get?secretId=s'))
      assert.equal(statusOf(refused), 429)
      assert.match(refused, /\r\nretry-after: 1\r\n/i)
      assert.equal(bodyOf(refused).__type, 'TooManyConnectionsException')
      assert.ok(!refused.includes('value'), 'no secret bytes')
      // The orchestrator's probes still get their answer, and the connection still closes.
      for (const probe of ['/ping', '/ready']) {
        const started = Date.now()
        const answer = await raw(port, `GET ${probe} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`)
        assert.equal(statusOf(answer), 200, answer)
        assert.match(answer, /\r\nconnection: close\r\n/i)
        assert.ok(Date.now() - started < 2000, 'the agent closed the connection, not the test')
      }
    } finally {
      for (const s of held) s.destroy()
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
    const served = await raw(port, request('/secretsmanager/get?secretId=s'))
    assert.equal(statusOf(served), 200)
  })
})
