import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import fc from 'fast-check'
import { pino } from 'pino'
import { performance } from 'node:perf_hooks'
import { accessLine, accessLog, createLogger, latencyText, writeLatency, type AccessFields } from '../../src/logger.js'

/** A logger as the agent makes it, writing its lines into an array. */
function capture (level: 'info' | 'warn' = 'info'): { lines: string[], logger: ReturnType<typeof createLogger> } {
  const lines: string[] = []
  return { lines, logger: createLogger({ level, destination: { write: (line: string) => { lines.push(line) } } }) }
}

/** The line with its timestamp taken out: two lines written a moment apart differ only there. */
const untimed = (line: string | undefined): string => (line ?? '').replace(/"time":\d+/, '"time":0')

const SAMPLES: AccessFields[] = [
  { method: 'GET', route: '/secretsmanager/get', status: 200, ms: 0.05, cache: 'HIT' },
  { method: 'GET', route: '/v1/*', status: 404, ms: 12 },
  { method: 'POST', route: '/kms/encrypt', status: 400, ms: 1.25 },
  { method: 'DELETE', route: 'unmatched', status: 401, ms: 0 },
  { method: 'GET', route: 'a "quoted" \\ route\n', status: 500, ms: 3.5, cache: 'STALE' }
]

describe('createLogger: err', () => {
  it('logs the fields the agent picked as they are, and an Error as pino serializes it', () => {
    const { lines, logger } = capture()
    logger.fatal({ err: { message: 'listen EADDRINUSE: address already in use 127.0.0.1:2773', code: 'EADDRINUSE' } }, 'secrets-agent could not start')
    logger.error({ err: new TypeError('boom') }, 'from a library')

    const [picked, whole] = lines.map((line) => JSON.parse(line) as { err: Record<string, unknown> })
    assert.deepEqual(picked?.err, { message: 'listen EADDRINUSE: address already in use 127.0.0.1:2773', code: 'EADDRINUSE' })
    assert.equal(whole?.err.type, 'TypeError')
    assert.equal(whole?.err.message, 'boom')
    assert.match(String(whole?.err.stack), /TypeError: boom/)
  })
})

describe('accessLog', () => {
  it('writes, byte for byte, the line logger.info(fields, "request") writes', () => {
    const { lines, logger } = capture()
    const write = accessLog(logger)
    for (const fields of SAMPLES) {
      write(fields)
      logger.info(fields, 'request')
    }
    assert.equal(lines.length, SAMPLES.length * 2)
    for (let i = 0; i < lines.length; i += 2) {
      assert.equal(untimed(lines[i]), untimed(lines[i + 1]))
      assert.ok(lines[i]?.endsWith('}\n'))
      assert.deepEqual(Object.keys(JSON.parse(lines[i] ?? '') as object), ['level', 'time', 'name', ...Object.keys(SAMPLES[i / 2] ?? {}), 'msg'])
    }
  })

  it('writes nothing below info, and follows a level changed later', () => {
    const { lines, logger } = capture('warn')
    const write = accessLog(logger)
    write(SAMPLES[0] ?? assert.fail())
    assert.equal(lines.length, 0)
    logger.level = 'info'
    write(SAMPLES[0] ?? assert.fail())
    assert.equal(lines.length, 1)
  })

  it('goes through logger.info for a logger configured in a way it does not copy', () => {
    const lines: string[] = []
    const logger = pino({ messageKey: 'message', mixin: () => ({ extra: 1 }) }, { write: (line: string) => { lines.push(line) } })
    accessLog(logger)(SAMPLES[0] ?? assert.fail())
    const line = JSON.parse(lines[0] ?? '') as Record<string, unknown>
    assert.equal(line.message, 'request')
    assert.equal(line.extra, 1)
    assert.equal(line.route, '/secretsmanager/get')
  })
})

describe('accessLine', () => {
  it('writes, byte for byte, the line logger.info writes for its fields and each latency', () => {
    const { lines, logger } = capture()
    for (const { ms, ...fields } of SAMPLES) {
      const line = accessLine(logger, fields)
      for (const latency of [ms, 0.01, 1234.5, Number.NaN]) {
        line(latency)
        // The fields in the order the agent records them, latency before the cache outcome.
        logger.info({ method: fields.method, route: fields.route, status: fields.status, ms: latency, ...(fields.cache === undefined ? {} : { cache: fields.cache }) }, 'request')
      }
    }
    assert.equal(lines.length, SAMPLES.length * 8)
    for (let i = 0; i < lines.length; i += 2) assert.equal(untimed(lines[i]), untimed(lines[i + 1]))
  })

  it('follows the level, and goes through logger.info for a logger it does not copy', () => {
    const { lines, logger } = capture('warn')
    const line = accessLine(logger, { method: 'GET', route: '/secretsmanager/get', status: 200, cache: 'HIT' })
    line(0.05)
    assert.equal(lines.length, 0)
    logger.level = 'info'
    line(0.05)
    assert.equal(lines.length, 1)

    const other: string[] = []
    const custom = pino({ messageKey: 'message' }, { write: (l: string) => { other.push(l) } })
    accessLine(custom, { method: 'GET', route: '/v1/*', status: 200, cache: 'MISS' })(2.5)
    const parsed = JSON.parse(other[0] ?? '') as Record<string, unknown>
    assert.equal(parsed.message, 'request')
    assert.deepEqual(Object.keys(parsed).slice(-6), ['method', 'route', 'status', 'ms', 'cache', 'message'])
    assert.equal(parsed.ms, 2.5)
  })
})

describe('latencyText', () => {
  it('writes a latency as String (pino) does, rounded to hundredths or not', () => {
    const hundredths = fc.double({ min: 0, max: 1e8, noNaN: true }).map((ms) => Math.round(ms * 100) / 100)
    fc.assert(fc.property(fc.oneof(hundredths, fc.integer({ min: 0, max: 100_000 }).map((h) => h / 100), fc.double()), (ms) => {
      assert.equal(latencyText(ms), Number.isFinite(ms) ? String(ms) : 'null')
    }), { numRuns: 20_000 })
    for (const ms of [0, -0, 0.01, 0.1, 0.05, 1, 12.3, 1234.5, 9999999.99, 1e7, -1.5, 1e21, Number.NaN, Infinity, -Infinity]) {
      assert.equal(latencyText(ms), Number.isFinite(ms) ? String(ms) : 'null', String(ms))
    }
  })
})

describe('writeLatency', () => {
  it('writes the bytes of latencyText, and returns where they end', () => {
    const bytes = Buffer.alloc(64, 0x2a)
    const check = (ms: number): void => {
      const end = writeLatency(bytes, 5, ms)
      assert.equal(bytes.toString('latin1', 5, end), latencyText(ms), String(ms))
      assert.equal(bytes[end], 0x2a, 'nothing written past the end')
      bytes.fill(0x2a)
    }
    fc.assert(fc.property(fc.oneof(fc.integer({ min: 0, max: 1e9 }).map((h) => h / 100), fc.double()), (ms) => { check(ms) }), { numRuns: 20_000 })
    for (const ms of [0, -0, 0.01, 0.1, 0.05, 1, 10, 12.3, 100.07, 1234.5, 9999999.99, 1e7, -1.5, 1e21, -1.2345e-300, Number.MAX_VALUE, Number.NaN, Infinity]) check(ms)
  })
})

describe('createLogger writing to a file', () => {
  let dir: string
  before(() => { dir = mkdtempSync(join(tmpdir(), 'secrets-agent-log-')) })
  after(() => { rmSync(dir, { recursive: true, force: true }) })

  it('calls a flush back once every line logged before it is in the file, in order', async () => {
    const file = join(dir, 'flush.log')
    const logger = createLogger({ level: 'info', output: file })
    // 2,000 lines are about ten 16 KiB writes: sonic-boom is still writing when flush is called.
    for (let i = 0; i < 2000; i++) logger.info({ i }, 'line')
    await new Promise<void>((resolve, reject) => { logger.flush((error) => { if (error === undefined) resolve(); else reject(error) }) })
    const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { i: number })
    assert.deepEqual(lines.map((l) => l.i), Array.from({ length: 2000 }, (_, i) => i))
  })

  it('writes lines of any length and script whole and in order, around and past its 16 KiB batches', async () => {
    const file = join(dir, 'sizes.log')
    const logger = createLogger({ level: 'info', output: file })
    // Short lines, lines that straddle a batch's end, lines longer than a batch, one longer than
    // the batch buffer, and text of 2-, 3- and 4-byte UTF-8 characters (and a lone surrogate).
    const texts = ['a', 'é'.repeat(3000), '€'.repeat(5000), 'x'.repeat(16 * 1024), '😀'.repeat(6000), 'y'.repeat(40_000), 'z', 'bad \ud800 pair', '€'.repeat(11_000)]
    const sent: string[] = []
    for (let round = 0; round < 3; round++) {
      for (const text of texts) {
        sent.push(text)
        logger.info({ text }, 'line')
      }
    }
    await new Promise<void>((resolve, reject) => { logger.flush((error) => { if (error === undefined) resolve(); else reject(error) }) })
    const written = readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => (JSON.parse(l) as { text: string }).text)
    assert.deepEqual(written, sent.map((text) => text.replace('\ud800', '\ufffd')))
  })

  it('writes access lines as logger.info does, in order with its other lines and at their time', async () => {
    const file = join(dir, 'access.log')
    const logger = createLogger({ level: 'info', output: file })
    const expected = capture()
    const lines = SAMPLES.map(({ ms: _, ...fields }) => ({ write: accessLine(logger, fields), same: accessLine(expected.logger, fields) }))
    const before = Date.now()
    // Past several batches of recorded lines (128) and of bytes (16 KiB), text lines in between.
    for (let i = 0; i < 1000; i++) {
      const { write, same } = lines[i % lines.length] ?? assert.fail()
      const ms = [0.05, 12, 1.25, 0, 3.5, 0.01, 1234.56, Number.NaN][i % 8] ?? 0
      if (i % 2 === 0) write(ms)
      else write(ms, performance.now())
      same(ms)
      if (i % 97 === 0) {
        logger.info({ i }, 'between')
        expected.logger.info({ i }, 'between')
      }
    }
    await new Promise<void>((resolve, reject) => { logger.flush((error) => { if (error === undefined) resolve(); else reject(error) }) })
    const after = Date.now()
    const written = readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => l + '\n')
    assert.equal(written.length, expected.lines.length)
    for (let i = 0; i < written.length; i++) assert.equal(untimed(written[i]), untimed(expected.lines[i]), `line ${i}`)
    for (const line of written) {
      const time = (JSON.parse(line) as { time: number }).time
      assert.ok(Number.isInteger(time) && time >= before - 1 && time <= after, `time ${time} outside ${before}..${after}`)
    }
  })

  it('records access lines only at info, following a level changed later', async () => {
    const file = join(dir, 'access-level.log')
    const logger = createLogger({ level: 'warn', output: file })
    const line = accessLine(logger, { method: 'GET', route: '/secretsmanager/get', status: 200, cache: 'HIT' })
    line(0.5)
    logger.level = 'info'
    line(0.25)
    await new Promise<void>((resolve) => { logger.flush(() => { resolve() }) })
    const written = readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { ms: number })
    assert.deepEqual(written.map((l) => l.ms), [0.25])
  })

  it('adds one exit listener, however many loggers are made', async () => {
    const listeners = process.listenerCount('exit')
    const loggers = Array.from({ length: 20 }, (_, i) => createLogger({ level: 'info', output: join(dir, `many-${i}.log`) }))
    assert.ok(process.listenerCount('exit') <= listeners + 1, `${process.listenerCount('exit') - listeners} exit listeners added`)
    // A line each, written before the directory goes.
    for (const logger of loggers) {
      logger.info('one')
      await new Promise<void>((resolve) => { logger.flush(() => { resolve() }) })
    }
  })

  it('calls a flush back when there is nothing left to write', async () => {
    const file = join(dir, 'idle.log')
    const logger = createLogger({ level: 'info', output: file })
    logger.info('one')
    await new Promise<void>((resolve) => { logger.flush(() => { resolve() }) })
    await new Promise<void>((resolve) => { logger.flush(() => { resolve() }) })
    assert.equal(readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').length, 1)
  })
})

describe('createLogger on stdout', () => {
  /** Runs `body` in a child with `logger` made by createLogger (stdout, JSON); its stdout lines. */
  function run (body: string): { lines: Array<Record<string, unknown>>, status: number | null } {
    const script = `import { createLogger } from ${JSON.stringify(new URL('../../src/logger.ts', import.meta.url).href)}\nconst logger = createLogger({ level: 'info' })\n${body}`
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 })
    return { status: child.status, lines: child.stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>) }
  }

  it('writes every line, in order, before a flush calls back (the CLI exits that way)', () => {
    const { lines, status } = run("for (let i = 0; i < 2000; i++) logger.info({ i }, 'line')\nsetImmediate(() => { logger.warn({ i: 2000 }, 'last'); logger.flush(() => process.exit(0)) })")
    assert.equal(status, 0)
    assert.deepEqual(lines.map((l) => l.i), Array.from({ length: 2001 }, (_, i) => i))
  })

  it('writes recorded access lines still waiting when the process exits abruptly', () => {
    const { lines, status } = run("import { accessLine } from " + JSON.stringify(new URL('../../src/logger.ts', import.meta.url).href) +
      "\nconst line = accessLine(logger, { method: 'GET', route: '/secretsmanager/get', status: 200, cache: 'HIT' })\nfor (let i = 0; i < 300; i++) line(i / 100)\nlogger.warn('last')\nline(9.99)\nprocess.exit(3)")
    assert.equal(status, 3)
    // Every line, once. Not necessarily in order: a batch already handed to libuv's threads can
    // land after the ones written at exit (Batched's documented limit for an exit without flush).
    const order = (values: unknown[]): string[] => values.map(String).sort()
    assert.deepEqual(order(lines.map((l) => l.ms ?? l.msg)), order([...Array.from({ length: 300 }, (_, i) => i / 100), 'last', 9.99]))
  })

  it('writes a line still waiting for its turn when the process exits abruptly', () => {
    const { lines, status } = run("logger.error('about to exit')\nprocess.exit(3)")
    assert.equal(status, 3)
    assert.deepEqual(lines.map((l) => l.msg), ['about to exit'])
  })

  it('stops logging, not the process, when stdout fails, and says so once on stderr', () => {
    // Writes to /dev/full fail with ENOSPC, as they would to a full disk.
    const full = openSync('/dev/full', 'w')
    try {
      const script = `import { createLogger } from ${JSON.stringify(new URL('../../src/logger.ts', import.meta.url).href)}\nconst logger = createLogger({ level: 'info' })\n` +
        "for (let i = 0; i < 2000; i++) logger.info({ i }, 'line')\nlogger.flush((error) => { process.stderr.write('flushed: ' + error?.code + '\\n'); logger.info('after'); logger.flush(() => { process.stderr.write('still here\\n'); process.exit(0) }) })"
      const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', full, 'pipe'], encoding: 'utf8', timeout: 20_000 })
      assert.equal(child.status, 0, child.stderr)
      assert.deepEqual(child.stderr.split('\n').filter((l) => l !== ''), [
        'secrets-agent: writing the log failed (ENOSPC); logging stopped',
        'flushed: ENOSPC',
        'still here'
      ])
    } finally {
      closeSync(full)
    }
  })

  it('holds up to 16 MiB of lines while stdout stalls, drops later ones, and writes the held ones in order once it reads', async () => {
    // 40 MiB of lines into a pipe nobody reads: the first write blocks, the rest are held or dropped.
    const script = `import { createLogger } from ${JSON.stringify(new URL('../../src/logger.ts', import.meta.url).href)}\nconst logger = createLogger({ level: 'info' })\n` +
      "const pad = 'x'.repeat(150)\nfor (let i = 0; i < 200_000; i++) logger.info({ i, pad }, 'line')\nprocess.stderr.write('logged\\n')\nlogger.flush(() => { process.exit(0) })"
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 })
    const stderr: Buffer[] = []
    await new Promise<void>((resolve, reject) => {
      child.stderr.on('data', (chunk: Buffer) => { stderr.push(chunk); if (Buffer.concat(stderr).includes('logged\n')) resolve() })
      child.once('exit', () => { reject(new Error(`exited before logging everything: ${Buffer.concat(stderr).toString()}`)) })
    })
    // Only now is stdout read.
    const stdout: Buffer[] = []
    child.stdout.on('data', (chunk: Buffer) => { stdout.push(chunk) })
    const [status] = await Promise.all([
      new Promise<number | null>((resolve) => { child.once('exit', resolve) }),
      new Promise<void>((resolve) => { child.stdout.once('end', resolve) })
    ])
    assert.equal(status, 0, Buffer.concat(stderr).toString())
    const text = Buffer.concat(stdout).toString('utf8')
    const numbers = text.split('\n').filter((l) => l !== '').map((l) => (JSON.parse(l) as { i: number }).i)
    // Every line up to some point, in order, then nothing: what came later was dropped, not reordered.
    assert.deepEqual(numbers, Array.from({ length: numbers.length }, (_, i) => i))
    assert.ok(numbers.length < 200_000, 'no line was dropped')
    assert.ok(text.length >= 16 * 1024 * 1024, `only ${text.length} characters were kept`)
    assert.ok(text.length < 17 * 1024 * 1024, `${text.length} characters were kept`)
  })

  it('writes a quiet agent\'s line within a moment, not only at exit', () => {
    // The marker goes straight to fd 1 after 700 ms: the line must be out before it.
    const { lines } = run("import { writeSync } from 'node:fs'\nlogger.info('one')\nsetTimeout(() => { writeSync(1, JSON.stringify({ msg: 'marker' }) + '\\n'); process.exit(0) }, 700)")
    assert.deepEqual(lines.map((l) => l.msg), ['one', 'marker'])
  })
})
