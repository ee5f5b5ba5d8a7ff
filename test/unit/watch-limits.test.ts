import assert from 'node:assert/strict'
import fs from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { syncBuiltinESMExports } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, afterEach, before, beforeEach, describe, it, mock } from 'node:test'
import { pino } from 'pino'
import { LocalProvider } from '../../src/providers/local/provider.js'
import { loadToken } from '../../src/token.js'

/** Log lines written to `lines`, as parsed objects. */
function capture (): { logger: pino.Logger, lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const logger = pino({ level: 'info' }, { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>) } })
  return { logger, lines }
}

describe('when the system has no file watch left to give (EMFILE, ENOSPC)', () => {
  let dir: string
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'sa-watch-limits-')) })
  after(async () => { await rm(dir, { recursive: true, force: true }) })
  beforeEach(() => {
    mock.method(fs, 'watch', () => {
      throw Object.assign(new Error('EMFILE: too many open files, watch'), { code: 'EMFILE' })
    })
    syncBuiltinESMExports()
  })
  afterEach(() => {
    mock.restoreAll()
    syncBuiltinESMExports()
  })

  it('the local store still opens and serves, with a warning that edits wait for a restart', async () => {
    const { logger, lines } = capture()
    await writeFile(join(dir, 'store.yaml'), 'secrets:\n  app/key: served-Qa1\n')
    const provider = await LocalProvider.open({ storeFile: join(dir, 'store.yaml'), region: 'us-east-1', logger })
    try {
      assert.equal((await provider.getSecret({ secretId: 'app/key' })).secretString, 'served-Qa1')
      assert.ok(lines.some((l) => l.level === 40 && String(l.msg).startsWith('cannot watch the local store')), JSON.stringify(lines))
    } finally {
      await provider.close()
    }
  })

  it('a token file still loads, with a warning that a rotation waits for a restart', async () => {
    const { logger, lines } = capture()
    const file = join(dir, 'token')
    await writeFile(file, 'token-from-file-Zx9')
    const token = await loadToken({ tokenFile: file, generate: false, fileMode: 0o600, envVariables: [], env: {}, logger })
    try {
      token.watchFile()
      assert.ok(token.matches('token-from-file-Zx9'))
      assert.ok(lines.some((l) => l.level === 40 && String(l.msg).startsWith('cannot watch the token file')), JSON.stringify(lines))
      assert.ok(!JSON.stringify(lines).includes('token-from-file-Zx9'))
    } finally {
      token.close()
    }
  })
})
