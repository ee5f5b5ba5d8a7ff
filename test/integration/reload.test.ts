import assert from 'node:assert/strict'
import { rm, writeFile } from 'node:fs/promises'
import { describe, it, type TestContext } from 'node:test'
import {
  getWithToken as get, openForTest, json, until, type LocalApp, type LocalAppOptions
} from '../support/local-app.js'

const SECRET = 'app/api-key'
const PARAMETER = '/app/flag'

/** A small store whose secret, parameter and path answers all change with `value`. */
function storeWith (value: string): string {
  return `secrets:
  ${SECRET}: "${value}"
parameters:
  ${PARAMETER}:
    type: SecureString
    value: "param-${value}"
`
}

async function open (t: TestContext, options: LocalAppOptions = {}): Promise<LocalApp> {
  return openForTest(t, { secretsTtlSeconds: 300, parametersTtlSeconds: 300, storeText: storeWith('first-value-Ab1'), ...options })
}

async function secretValue (h: LocalApp): Promise<{ status: number, value: unknown, cache: unknown }> {
  const response = await get(h, `/secretsmanager/get?secretId=${SECRET}`)
  return { status: response.statusCode, value: response.statusCode === 200 ? json(response).SecretString : undefined, cache: response.headers['x-cache'] }
}

/** Log lines at error level (pino level 50) or above, parsed. */
function errorLines (h: LocalApp): string[] {
  return h.logs().filter((line) => (JSON.parse(line) as { level: number }).level >= 50)
}

describe('local store reload', () => {
  it('serves an edit made by rename to the next read after the reload event, long before the TTL ends', async (t) => {
    const h = await open(t)
    await secretValue(h)
    assert.equal((await secretValue(h)).cache, 'HIT')

    const changed = h.nextChange()
    await h.replaceStore(storeWith('second-value-Cd2'))
    await changed
    const after = await secretValue(h)

    assert.equal(after.status, 200)
    assert.equal(after.value, 'second-value-Cd2')
    assert.equal(after.cache, 'MISS')
  })

  it('drops cached parameters and get-by-path answers on an edit too', async (t) => {
    const h = await open(t)
    const parameterUrl = `/systemsmanager/parameters/get?name=${PARAMETER}&withDecryption=true`
    const pathUrl = '/systemsmanager/parameters/get-by-path?path=/app&withDecryption=true'
    await get(h, parameterUrl)
    await get(h, pathUrl)

    const changed = h.nextChange()
    await h.replaceStore(storeWith('second-value-Cd2'))
    await changed
    const parameter = await get(h, parameterUrl)
    const path = await get(h, pathUrl)

    assert.equal((json(parameter).Parameter as Record<string, unknown>).Value, 'param-second-value-Cd2')
    assert.equal((json(path).Parameters as Array<Record<string, unknown>>)[0]?.Value, 'param-second-value-Cd2')
  })

  it('answers every request with one of the written values while the store is replaced 120 times', async (t) => {
    const h = await open(t)
    const allowed = new Set(['first-value-Ab1'])
    const results: Array<{ status: number, value: unknown }> = []
    let writing = true
    const deadline = Date.now() + 10_000
    const reader = async (): Promise<void> => {
      while (writing && Date.now() < deadline) {
        results.push(await secretValue(h))
        // A cache hit resolves without I/O: let timers and the file watcher run between reads.
        await new Promise((resolve) => setImmediate(resolve))
      }
    }
    const readers = [reader(), reader(), reader(), reader()]

    let last = ''
    for (let i = 0; i < 120; i++) {
      last = `value-${i}`
      allowed.add(last)
      await h.replaceStore(storeWith(last))
      await new Promise((resolve) => setTimeout(resolve, 2))
    }
    await until(async () => (await secretValue(h)).value === last, 2000)
    writing = false
    await Promise.all(readers)

    assert.ok(results.length >= 100, `only ${results.length} reads ran`)
    const failed = results.filter((r) => r.status !== 200)
    assert.deepEqual(failed, [])
    const strangers = results.filter((r) => !allowed.has(r.value as string))
    assert.deepEqual(strangers, [])
    assert.ok(new Set(results.map((r) => r.value)).size > 2, 'the readers saw the store change')
    assert.ok(h.changes() >= 1)
  })

  it('keeps the last good store serving when the file does not parse, and logs an error without its values', async (t) => {
    const h = await open(t)
    await secretValue(h)
    const changesBefore = h.changes()

    await h.replaceStore(`secrets:\n  ${SECRET}: "unterminated-secret-Zz9\n  other: [broken-value-Yy8\n`)
    await until(() => errorLines(h).length > 0, 2000)
    const after = await secretValue(h)

    assert.equal(after.status, 200)
    assert.equal(after.value, 'first-value-Ab1')
    assert.equal(h.changes(), changesBefore)
    const [line] = errorLines(h)
    assert.ok(line !== undefined)
    assert.match(line, /store/)
    for (const value of ['unterminated-secret-Zz9', 'broken-value-Yy8', 'first-value-Ab1']) assert.ok(!line.includes(value), line)
  })

  it('logs a broken store once, however often the same text is written, and no change for the same good text', async (t) => {
    const h = await open(t, { watch: false })
    await writeFile(h.storeFile, 'secrets: {broken\n')
    await h.provider.reload()
    await writeFile(h.storeFile, 'secrets: {broken\n')
    await h.provider.reload()
    await writeFile(h.storeFile, storeWith('first-value-Ab1'))
    await h.provider.reload()

    assert.equal(errorLines(h).length, 1)
    assert.equal(h.changes(), 0, 'the text in service came back: nothing changed')
  })

  it('serves the next good edit after a broken one', async (t) => {
    const h = await open(t)
    await h.replaceStore('secrets: [this is: not a mapping\n')
    await until(() => errorLines(h).length > 0, 2000)

    const changed = h.nextChange()
    await h.replaceStore(storeWith('fixed-value-Ee5'))
    await changed
    const after = await secretValue(h)

    assert.equal(after.value, 'fixed-value-Ee5')
  })

  it('does not log a YAML value that looks like an alias when the store fails to parse', async (t) => {
    // A password starting with `*` is a YAML alias; the parser names it in its error.
    const h = await open(t)

    await h.replaceStore(`secrets:\n  ${SECRET}: *Hunter2-alias-leak\n`)
    await until(() => errorLines(h).length > 0, 2000)

    const [line] = errorLines(h)
    assert.ok(line !== undefined)
    assert.ok(!line.includes('Hunter2-alias-leak'), line)
  })

  it('does not log the values of a JSON store that fails to parse', async (t) => {
    // V8's JSON.parse messages quote the text around the error: here, an unquoted password.
    const h = await open(t, { storeFileName: 'store.json', storeText: JSON.stringify({ secrets: { [SECRET]: 'first-value-Ab1' } }) })

    await h.replaceStore(`{"secrets": {"${SECRET}": Wq9xK}}`)
    await until(() => errorLines(h).length > 0, 2000)

    assert.equal((await secretValue(h)).value, 'first-value-Ab1')
    const [line] = errorLines(h)
    assert.ok(line !== undefined)
    assert.ok(!line.includes('Wq9xK'), line)
  })

  it('keeps the last good store serving when the file is removed', async (t) => {
    const h = await open(t)

    await rm(h.storeFile)
    await until(() => errorLines(h).length > 0, 2000)
    const after = await secretValue(h)

    assert.equal(after.status, 200)
    assert.equal(after.value, 'first-value-Ab1')
  })

  it('applies the file on provider.reload() without a watcher, and clears the cache', async (t) => {
    const h = await open(t, { watch: false })
    await secretValue(h)
    await writeFile(h.storeFile, storeWith('reloaded-value-Gg7'))
    assert.equal((await secretValue(h)).value, 'first-value-Ab1')

    await h.provider.reload()
    const after = await secretValue(h)

    assert.equal(h.changes(), 1)
    assert.equal(after.value, 'reloaded-value-Gg7')
    assert.equal(after.cache, 'MISS')
  })

  it('keeps the store on provider.reload() of a broken file, without a change event', async (t) => {
    const h = await open(t, { watch: false })
    await writeFile(h.storeFile, 'secrets: {broken\n')

    await h.provider.reload()
    const after = await secretValue(h)

    assert.equal(h.changes(), 0)
    assert.equal(after.value, 'first-value-Ab1')
    assert.equal(errorLines(h).length, 1)
  })
})

describe('local KMS key file reload', () => {
  it('uses a key made by another process (the store CLI) at once, with the store named by a relative path', async () => {
    const { mkdtemp } = await import('node:fs/promises')
    const { tmpdir } = await import('node:os')
    const { join, relative } = await import('node:path')
    const { pino } = await import('pino')
    const { LocalProvider, defaultKeyFile } = await import('../../src/providers/local/provider.js')
    const { LocalKms } = await import('../../src/providers/local/kms.js')
    const dir = await mkdtemp(join(tmpdir(), 'sa-keys-'))
    const storeFile = join(dir, 'store.yaml')
    await writeFile(storeFile, 'secrets:\n  a: b\n')
    const relativeStore = relative(process.cwd(), storeFile)
    assert.ok(!relativeStore.startsWith('/'))
    const provider = await LocalProvider.open({ storeFile: relativeStore, region: 'us-east-1', logger: pino({ level: 'silent' }), debounceMs: 10 })
    try {
      const encrypt = async (): Promise<string> => {
        try {
          await provider.encrypt({ keyId: 'alias/cli-made', plaintext: Buffer.from('x') })
          return 'ok'
        } catch (error) {
          return (error as Error).name
        }
      }
      assert.equal(await encrypt(), 'NotFoundError')
      const cli = await LocalKms.open({ keyFile: defaultKeyFile(storeFile), region: 'us-east-1' })
      await cli.createKey({ alias: 'alias/cli-made' })
      await until(async () => await encrypt() === 'ok', 3000)
      await cli.setEnabled('alias/cli-made', false)
      await until(async () => await encrypt() === 'AccessDeniedError', 3000)
    } finally {
      await provider.close()
      await rm(dir, { recursive: true, force: true })
    }
  })
})

describe('a local store reached through a symlink', () => {
  /** A provider on `link`, in a fresh directory laid out by `layout`, closed when the test ends. */
  async function openLinked (t: TestContext, layout: (dir: string) => Promise<string>): Promise<{ dir: string, value: () => Promise<string | undefined>, changes: () => number }> {
    const { mkdtemp } = await import('node:fs/promises')
    const { tmpdir } = await import('node:os')
    const { join } = await import('node:path')
    const { pino } = await import('pino')
    const { LocalProvider } = await import('../../src/providers/local/provider.js')
    const dir = await mkdtemp(join(tmpdir(), 'sa-linked-'))
    const provider = await LocalProvider.open({ storeFile: await layout(dir), region: 'us-east-1', logger: pino({ level: 'silent' }), debounceMs: 10 })
    let changes = 0
    provider.onChange(() => { changes += 1 })
    t.after(async () => {
      await provider.close()
      await rm(dir, { recursive: true, force: true })
    })
    return { dir, value: async () => (await provider.getSecret({ secretId: SECRET })).secretString, changes: () => changes }
  }

  it('serves a ConfigMap update, which swaps the ..data link and names no file of the store', async (t) => {
    const { mkdir, rename, symlink } = await import('node:fs/promises')
    const { join } = await import('node:path')
    const version = async (dir: string, name: string, value: string): Promise<void> => {
      await mkdir(join(dir, name))
      await writeFile(join(dir, name, 'store.yaml'), storeWith(value))
    }
    const h = await openLinked(t, async (dir) => {
      await version(dir, '..2026_11_30_01', 'configmap-first-Pq1')
      await symlink('..2026_11_30_01', join(dir, '..data'))
      await symlink('..data/store.yaml', join(dir, 'store.yaml'))
      return join(dir, 'store.yaml')
    })
    assert.equal(await h.value(), 'configmap-first-Pq1')

    // As the kubelet does: the new files beside the old, a new link, renamed over ..data.
    await version(h.dir, '..2026_11_30_02', 'configmap-second-Rt2')
    await symlink('..2026_11_30_02', join(h.dir, '..data_tmp'))
    await rename(join(h.dir, '..data_tmp'), join(h.dir, '..data'))
    await rm(join(h.dir, '..2026_11_30_01'), { recursive: true })

    await until(async () => await h.value() === 'configmap-second-Rt2', 3000)
    assert.equal(h.changes(), 1)
  })

  it('serves an edit of the file a link names in another directory', async (t) => {
    const { mkdir, symlink } = await import('node:fs/promises')
    const { join } = await import('node:path')
    let target = ''
    const h = await openLinked(t, async (dir) => {
      await mkdir(join(dir, 'dotfiles'))
      await mkdir(join(dir, 'config'))
      target = join(dir, 'dotfiles', 'store.yaml')
      await writeFile(target, storeWith('dotfiles-first-Wx3'))
      await symlink(target, join(dir, 'config', 'store.yaml'))
      return join(dir, 'config', 'store.yaml')
    })

    await writeFile(target, storeWith('dotfiles-second-Yz4'))

    await until(async () => await h.value() === 'dotfiles-second-Yz4', 3000)
  })
})

describe('a symlinked local store in a directory that never goes quiet', () => {
  it('is re-read after an edit while another file there is written every few milliseconds', async (t) => {
    const { mkdtemp, symlink } = await import('node:fs/promises')
    const { tmpdir } = await import('node:os')
    const { join } = await import('node:path')
    const { pino } = await import('pino')
    const { LocalProvider } = await import('../../src/providers/local/provider.js')
    const dir = await mkdtemp(join(tmpdir(), 'sa-busy-'))
    const target = join(dir, 'store.real.yaml')
    await writeFile(target, storeWith('busy-first-Hj5'))
    await symlink(target, join(dir, 'store.yaml'))
    const provider = await LocalProvider.open({ storeFile: join(dir, 'store.yaml'), region: 'us-east-1', logger: pino({ level: 'silent' }), debounceMs: 100 })
    // An application's log beside the store, written far more often than the 100 ms quiet time
    // (as fast as it can be).
    let churning = true
    const churn = (async () => {
      for (let i = 0; churning; i++) {
        await writeFile(join(dir, 'app.log'), `line ${i}\n`)
        await new Promise((resolve) => setImmediate(resolve))
      }
    })()
    t.after(async () => {
      churning = false
      await churn
      await provider.close()
      await rm(dir, { recursive: true, force: true })
    })
    const value = async (): Promise<string | undefined> => (await provider.getSecret({ secretId: SECRET })).secretString

    await new Promise((resolve) => setTimeout(resolve, 100))
    await writeFile(target, storeWith('busy-second-Kl6'))

    // Ten times the quiet time after the first event at the latest (1 s); allow 2.5 times that.
    await until(async () => await value() === 'busy-second-Kl6', 2500)
  })
})
