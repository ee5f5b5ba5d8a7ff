import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { afterEach, describe, it } from 'node:test'
import { pino, type Logger } from 'pino'
import { NotFoundError, ThrottledError } from '../../src/providers/errors.js'
import { prefetch } from '../../src/server/prefetch.js'
import type { Reads } from '../../src/server/reads.js'
import { startTestAgent, eventually, type TestAgent } from '../support/agent.js'

function capture (): { logger: Logger, lines: () => Array<Record<string, unknown>> } {
  let raw = ''
  const logger = pino({ level: 'debug' }, new Writable({ write (c: Buffer, _e, cb) { raw += c.toString(); cb() } }))
  return { logger, lines: () => raw.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) }
}

/** Reads whose answers per id a test sets: a value, an error, or errors for the first n tries. */
function fakeReads (behaviour: Record<string, (attempt: number) => void>): { reads: Reads, attempts: Map<string, number> } {
  const attempts = new Map<string, number>()
  const read = async (id: string): Promise<never> => {
    const n = (attempts.get(id) ?? 0) + 1
    attempts.set(id, n)
    behaviour[id]?.(n)
    return undefined as never
  }
  const reads = {
    secret: async ({ secretId }: { secretId: string }) => read(secretId),
    parameter: async (name: string) => read(name),
    parametersByPath: async (path: string) => read(path)
  } as unknown as Reads
  return { reads, attempts }
}

describe('prefetch', () => {
  it('loads every listed secret, parameter and path', async () => {
    const { reads, attempts } = fakeReads({})
    const { logger } = capture()
    const result = await prefetch(reads, { secrets: ['s1', 's2'], parameters: ['/p'], parameterPaths: ['/path'] }, { timeoutMs: 1000, logger })
    assert.deepEqual(result, { loaded: 4, failed: 0, timedOut: 0 })
    assert.deepEqual([...attempts.keys()].sort(), ['/p', '/path', 's1', 's2'])
  })

  it('logs an item that does not exist as an error, once, without holding the rest', async () => {
    const { reads, attempts } = fakeReads({ gone: () => { throw new NotFoundError() } })
    const { logger, lines } = capture()
    const result = await prefetch(reads, { secrets: ['gone', 'ok'], parameters: [], parameterPaths: [] }, { timeoutMs: 5000, logger })
    assert.deepEqual(result, { loaded: 1, failed: 1, timedOut: 0 })
    assert.equal(attempts.get('gone'), 1)
    const error = lines().find((l) => l.level === 50)
    assert.match(String(error?.msg), /prefetch failed/)
    assert.equal(error?.code, 'ResourceNotFoundException')
    assert.ok(!JSON.stringify(lines().filter((l) => (l.level as number) > 20)).includes('gone'), 'the id shows at debug level only')
  })

  it('stops waiting for a load still under way at the timeout, and reports it timed out', async () => {
    const attempts = new Map<string, number>()
    const reads = {
      // One call that never answers (a timeout of 0), one that answers at once.
      secret: async ({ secretId }: { secretId: string }) => {
        attempts.set(secretId, (attempts.get(secretId) ?? 0) + 1)
        if (secretId === 'hung') await new Promise(() => {})
      }
    } as unknown as Reads
    const { logger, lines } = capture()
    const started = Date.now()
    const result = await prefetch(reads, { secrets: ['hung', 'ok'], parameters: [], parameterPaths: [] }, { timeoutMs: 200, logger })

    assert.deepEqual(result, { loaded: 1, failed: 0, timedOut: 1 })
    assert.ok(Date.now() - started < 2000, 'settled at the timeout')
    assert.equal(attempts.get('hung'), 1)
    assert.ok(lines().some((l) => l.level === 40 && String(l.msg).startsWith('prefetch still loading')))
  })

  it('stops waiting for a load under way when the stop signal comes', async () => {
    const reads = { secret: async () => { await new Promise(() => {}) } } as unknown as Reads
    const { logger } = capture()
    const stop = new AbortController()
    setTimeout(() => { stop.abort() }, 50)
    const started = Date.now()
    const result = await prefetch(reads, { secrets: ['hung'], parameters: [], parameterPaths: [] }, { timeoutMs: 5000, logger, signal: stop.signal })
    assert.deepEqual(result, { loaded: 0, failed: 0, timedOut: 1 })
    assert.ok(Date.now() - started < 2000, 'settled at the stop, not at the timeout')
  })

  it('does not start a retry at the deadline: the item is reported with its last failure', async () => {
    // Each try takes 10 ms to be throttled, as a call to AWS would.
    let attempts = 0
    const reads = {
      secret: async () => {
        attempts += 1
        await new Promise((resolve) => setTimeout(resolve, 10))
        throw new ThrottledError()
      }
    } as unknown as Reads
    const { logger, lines } = capture()
    const result = await prefetch(reads, { secrets: ['slow'], parameters: [], parameterPaths: [] }, { timeoutMs: 100, logger, backoffBaseMs: 40, backoffMaxMs: 40 })
    assert.deepEqual(result, { loaded: 0, failed: 0, timedOut: 1 })
    const warning = lines().find((l) => l.level === 40)
    assert.match(String(warning?.msg), /still failing/)
    assert.equal(warning?.code, 'ThrottlingException')
    assert.ok(attempts >= 2)
  })

  it('retries a throttled item with backoff until it loads', async () => {
    const { reads, attempts } = fakeReads({ slow: (n) => { if (n < 3) throw new ThrottledError() } })
    const { logger } = capture()
    const result = await prefetch(reads, { secrets: ['slow'], parameters: [], parameterPaths: [] }, { timeoutMs: 5000, logger, backoffBaseMs: 5, backoffMaxMs: 20 })
    assert.deepEqual(result, { loaded: 1, failed: 0, timedOut: 0 })
    assert.equal(attempts.get('slow'), 3)
  })

  it('retries many times under one stop signal without piling listeners on it', async () => {
    const warnings: Error[] = []
    const onWarning = (warning: Error): void => { warnings.push(warning) }
    process.on('warning', onWarning)
    try {
      const { reads, attempts } = fakeReads({ slow: (n) => { if (n < 20) throw new ThrottledError() } })
      const { logger } = capture()
      const stop = new AbortController()
      const result = await prefetch(reads, { secrets: ['slow'], parameters: [], parameterPaths: [] }, { timeoutMs: 5000, logger, backoffBaseMs: 1, backoffMaxMs: 2, signal: stop.signal })
      assert.deepEqual(result, { loaded: 1, failed: 0, timedOut: 0 })
      assert.equal(attempts.get('slow'), 20)
      await new Promise((resolve) => setImmediate(resolve))
      assert.deepEqual(warnings.map((w) => w.name), [])
    } finally {
      process.off('warning', onWarning)
    }
  })

  it('gives up on an item still throttled at the timeout, with a warning', async () => {
    const { reads, attempts } = fakeReads({ stuck: () => { throw new ThrottledError() } })
    const { logger, lines } = capture()
    const started = Date.now()
    const result = await prefetch(reads, { secrets: ['stuck'], parameters: [], parameterPaths: [] }, { timeoutMs: 300, logger, backoffBaseMs: 10, backoffMaxMs: 40 })
    assert.deepEqual(result, { loaded: 0, failed: 0, timedOut: 1 })
    assert.ok(Date.now() - started < 1000)
    assert.ok((attempts.get('stuck') ?? 0) >= 3)
    assert.ok(lines().some((l) => l.level === 40 && /prefetch_timeout_seconds/.test(String(l.msg))))
  })
})

describe('/ready with a prefetch list', () => {
  let agent: TestAgent | undefined
  afterEach(async () => { await agent?.stop(); agent = undefined })

  it('turns 200 with the listed items cached, a missing one logged and not holding it', async () => {
    agent = await startTestAgent({ config: { prefetch: { secrets: ['app/db', 'no/such'], parameters: ['/app/level'], parameterPaths: ['/app'] } } })
    await eventually(async () => (await agent!.get('/ready')).status === 200, 3000, 'ready')
    const hit = await agent.get('/secretsmanager/get?secretId=app/db')
    assert.equal(hit.headers.get('x-cache'), 'HIT', 'prefetched')
    const param = await agent.get('/systemsmanager/parameters/get?name=/app/level&withDecryption=true')
    assert.equal(param.headers.get('x-cache'), 'HIT', 'parameters are prefetched with decryption')
    assert.ok(agent.logs().some((l) => l.level === 50 && /prefetch failed/.test(String(l.msg))))
  })
})
