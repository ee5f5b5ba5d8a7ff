import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative as relativePath } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { pino } from 'pino'
import { Token, TokenError, devTokenPath, loadDevToken, loadToken } from '../../src/token.js'

const logger = pino({ level: 'silent' })
const DEFAULT_VARIABLES = ['AWS_TOKEN', 'AWS_SESSION_TOKEN', 'AWS_CONTAINER_AUTHORIZATION_TOKEN']

function load (env: NodeJS.ProcessEnv, tokenFile: string | null = null, generate = false, fileMode = 0o640): Promise<Token> {
  return loadToken({ tokenFile, generate, fileMode, envVariables: DEFAULT_VARIABLES, env, logger })
}

describe('Token', () => {
  it('matches only the exact token, whatever the length of the candidate', () => {
    const token = new Token('s3cret-token')
    assert.equal(token.matches('s3cret-token'), true)
    for (const wrong of ['', 's3cret', 's3cret-token ', 's3cret-tokenX', 'S3CRET-TOKEN', 'x'.repeat(10_000)]) {
      assert.equal(token.matches(wrong), false, JSON.stringify(wrong.slice(0, 20)))
    }
  })

  it('compares text beyond ASCII by its UTF-8 bytes', () => {
    const token = new Token('pässwörd-€-😀')
    assert.equal(token.matches('pässwörd-€-😀'), true)
    // Same UTF-16 length, or the same bytes in another encoding (ä and Ǥ share their Latin-1 byte).
    for (const wrong of ['passwörd-€-😀', 'pässwörd-€-😁', 'p\u01e4sswörd-€-😀', 'pÃ¤sswÃ¶rd-â\u0082¬-😀', 'pässwörd-\u20ad-😀']) {
      assert.equal(token.matches(wrong), false, wrong)
    }
  })
})

/** Waits up to `ms` for `token` to take `next`, then holds that it did and that `previous` no longer passes. */
async function assertRotated (token: Token, next: string, previous: string, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms
  while (!token.matches(next) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  assert.ok(token.matches(next))
  assert.ok(!token.matches(previous))
}

describe('loadToken', () => {
  let dir: string
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'sa-token-')) })
  after(async () => { await rm(dir, { recursive: true, force: true }) })

  it('prefers --token-file over every variable, trimming whitespace', async () => {
    const file = join(dir, 'flag-token')
    await writeFile(file, '  from-file \n')
    const token = await load({ AWS_TOKEN: 'from-env' }, file)
    assert.ok(token.matches('from-file'))
    assert.ok(!token.matches('from-env'))
  })

  it('takes the first variable set, in the configured order', async () => {
    assert.ok((await load({ AWS_TOKEN: 'a', AWS_SESSION_TOKEN: 'b' })).matches('a'))
    assert.ok((await load({ AWS_SESSION_TOKEN: ' b ', AWS_CONTAINER_AUTHORIZATION_TOKEN: 'c' })).matches('b'))
    assert.ok((await load({ AWS_CONTAINER_AUTHORIZATION_TOKEN: 'c' })).matches('c'))
    assert.ok((await load({ AWS_TOKEN: '  ', AWS_SESSION_TOKEN: 'b' })).matches('b'), 'a blank variable is skipped')
  })

  it('reads a file:// value from the file it names', async () => {
    const file = join(dir, 'env-file-token')
    await writeFile(file, 'token-in-file\n')
    const token = await load({ AWS_TOKEN: `file://${file}` })
    assert.ok(token.matches('token-in-file'))
    assert.equal(token.choice.file, file)
  })

  it('takes the rest of a file:// value as a path as written, as the Secrets Manager Agent does', async () => {
    const file = join(dir, 'token #1 %41')
    await writeFile(file, 'token-in-odd-file\n')
    assert.ok((await load({ AWS_TOKEN: `file://${file}` })).matches('token-in-odd-file'))
    const relative = relativePath(process.cwd(), file)
    assert.ok(!relative.startsWith('/'))
    assert.ok((await load({ AWS_TOKEN: `file://${relative}` })).matches('token-in-odd-file'), 'relative to the working directory')
    await assert.rejects(load({ AWS_TOKEN: 'file://' }), /AWS_TOKEN is file:\/\/ with no path/)
  })

  it('refuses to start without any token, saying where it looked', async () => {
    await assert.rejects(load({}), (error: unknown) => {
      assert.ok(error instanceof TokenError)
      assert.match(error.message, /--token-file.*AWS_TOKEN, AWS_SESSION_TOKEN, AWS_CONTAINER_AUTHORIZATION_TOKEN/)
      return true
    })
  })

  it('refuses an empty or missing token file', async () => {
    const empty = join(dir, 'empty')
    await writeFile(empty, ' \n')
    await assert.rejects(load({}, empty), /is empty/)
    await assert.rejects(load({}, join(dir, 'absent')), /cannot read the token file .*ENOENT/)
  })

  it('--generate-token writes a fresh 256-bit base64url token with the configured mode', async () => {
    const file = join(dir, 'generated', 'token')
    const token = await load({}, file, true, 0o640)
    const value = (await readFile(file, 'utf8')).trim()
    assert.match(value, /^[A-Za-z0-9_-]{43}$/)
    assert.ok(token.matches(value))
    assert.equal((await stat(file)).mode & 0o777, 0o640)
  })

  it('--generate-token keeps an existing token file', async () => {
    const file = join(dir, 'kept')
    await writeFile(file, 'existing')
    const token = await load({}, file, true)
    assert.ok(token.matches('existing'))
  })

  it('re-reads the token file when it is replaced', async () => {
    const file = join(dir, 'rotating')
    await writeFile(file, 'first')
    const token = await load({}, file)
    token.watchFile()
    try {
      await writeFile(file + '.tmp', 'second')
      const { rename } = await import('node:fs/promises')
      await rename(file + '.tmp', file)
      await assertRotated(token, 'second', 'first')
    } finally {
      token.close()
    }
  })

  it('re-reads a token file on a Kubernetes Secret volume when the volume swaps its ..data symlink', async () => {
    const { mkdir, rename, symlink } = await import('node:fs/promises')
    const volume = join(dir, 'secret-volume')
    await mkdir(join(volume, '..2026_11_30_01'), { recursive: true })
    await writeFile(join(volume, '..2026_11_30_01', 'token'), 'first')
    await symlink('..2026_11_30_01', join(volume, '..data'))
    await symlink(join('..data', 'token'), join(volume, 'token'))
    const token = await load({}, join(volume, 'token'))
    token.watchFile()
    try {
      assert.ok(token.matches('first'))
      // What the kubelet does: a new dated directory, then ..data_tmp renamed over ..data.
      await mkdir(join(volume, '..2026_11_30_02'))
      await writeFile(join(volume, '..2026_11_30_02', 'token'), 'second')
      await symlink('..2026_11_30_02', join(volume, '..data_tmp'))
      await rename(join(volume, '..data_tmp'), join(volume, '..data'))
      await assertRotated(token, 'second', 'first')
    } finally {
      token.close()
    }
  })

  it('re-reads the token file in a directory where other files change all the time', async () => {
    const { mkdir, rename } = await import('node:fs/promises')
    const busy = join(dir, 'busy')
    await mkdir(busy)
    const file = join(busy, 'token')
    await writeFile(file, 'first')
    const token = await load({}, file)
    token.watchFile()
    let churning = true
    const churn = (async () => {
      for (let i = 0; churning; i++) {
        await writeFile(join(busy, 'app.log'), `line ${i}\n`)
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
    })()
    try {
      await new Promise((resolve) => setTimeout(resolve, 100))
      await writeFile(file + '.tmp', 'second')
      await rename(file + '.tmp', file)
      await assertRotated(token, 'second', 'first', 2000)
    } finally {
      churning = false
      await churn
      token.close()
    }
  })

  it('keeps the current token when the file is emptied', async () => {
    const file = join(dir, 'emptied')
    await writeFile(file, 'still-good')
    const token = await load({}, file)
    await writeFile(file, '')
    await token.reload()
    assert.ok(token.matches('still-good'))
  })
})

describe('loadDevToken', () => {
  let dir: string
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'sa-devtoken-')) })
  after(async () => { await rm(dir, { recursive: true, force: true }) })

  it('never takes AWS_SESSION_TOKEN, which on a laptop is an AWS credential', async () => {
    const env = { XDG_RUNTIME_DIR: dir, AWS_SESSION_TOKEN: 'aws-credential' }
    const token = await loadDevToken({ tokenFile: null, env, logger })
    assert.ok(!token.matches('aws-credential'))
    assert.equal(token.choice.file, join(dir, 'secrets-agent', 'token'))
  })

  it('generates a token into a file only this user can read, and reuses it next time', async () => {
    const env = { XDG_RUNTIME_DIR: dir }
    const first = await loadDevToken({ tokenFile: null, env, logger })
    const file = devTokenPath(env)
    assert.equal((await stat(file)).mode & 0o777, 0o600)
    const value = (await readFile(file, 'utf8')).trim()
    assert.ok(first.matches(value))
    const second = await loadDevToken({ tokenFile: null, env, logger })
    assert.ok(second.matches(value))
  })

  it('uses AWS_TOKEN when set', async () => {
    const token = await loadDevToken({ tokenFile: null, env: { XDG_RUNTIME_DIR: dir, AWS_TOKEN: 'mine' }, logger })
    assert.ok(token.matches('mine'))
  })

  it('falls back to ~/.cache/secrets-agent/token without XDG_RUNTIME_DIR', () => {
    assert.equal(devTokenPath({ HOME: '/home/u' }), '/home/u/.cache/secrets-agent/token')
  })
})
