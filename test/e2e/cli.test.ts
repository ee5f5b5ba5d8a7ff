import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, afterEach, before, describe, it } from 'node:test'
import { promisify } from 'node:util'
import { startCli, type CliProcess } from '../support/cli.js'

const sh = promisify(execFile)

describe('secrets-agent CLI', () => {
  let dir: string
  const running: CliProcess[] = []
  const start = (args: string[], env: NodeJS.ProcessEnv = {}): CliProcess => {
    const p = startCli(args, { XDG_RUNTIME_DIR: join(dir, 'run'), XDG_CONFIG_HOME: join(dir, 'config'), ...env })
    running.push(p)
    return p
  }

  before(async () => { dir = await mkdtemp(join(tmpdir(), 'sa-e2e-')) })
  afterEach(() => { for (const p of running.splice(0)) p.kill() })
  after(async () => { await rm(dir, { recursive: true, force: true }) })

  it('dev creates the example store, and its printed curl line returns the example secret', async () => {
    const store = join(dir, 'dev', 'store.yaml')
    const agent = start(['dev', '--port', '0', '--store', store])
    const [line] = await agent.waitFor(/^curl .*$/m)
    assert.ok(!line.includes((await readFile(join(dir, 'run', 'secrets-agent', 'token'), 'utf8')).trim()), 'the banner never shows the token')

    const { stdout } = await sh('sh', ['-c', line], { timeout: 5000 })
    const body = JSON.parse(stdout) as Record<string, unknown>
    assert.equal(body.Name, 'dev/example/database')
    assert.deepEqual(body.VersionStages, ['AWSCURRENT'])
    assert.equal(body.SecretBinary, null)
    const secret = JSON.parse(String(body.SecretString)) as Record<string, unknown>
    assert.deepEqual(Object.keys(secret).sort(), ['host', 'password', 'port', 'username'])
    assert.match(await readFile(store, 'utf8'), /dev\/example\/log-level/)

    agent.child.kill('SIGTERM')
    assert.equal(await agent.exited(), 0)
  })

  it('serve on the local provider answers on the port it logs, with the token from AWS_TOKEN', async () => {
    const store = join(dir, 'serve-store.yaml')
    await writeFile(store, 'secrets:\n  app/key: abc\nparameters:\n  /app/level: warn\n')
    const agent = start(['serve', '--provider', 'local', '--store', store, '--port', '0'], { AWS_TOKEN: 'tok-123' })
    const [, port] = await agent.waitFor(/"port":(\d+)/)
    const url = `http://127.0.0.1:${port}`
    const ok = await fetch(`${url}/systemsmanager/parameters/get?name=/app/level`, { headers: { 'X-Aws-Parameters-Secrets-Token': 'tok-123' } })
    assert.equal(ok.status, 200)
    assert.equal(((await ok.json()) as { Parameter: { Value: string } }).Parameter.Value, 'warn')
    const denied = await fetch(`${url}/secretsmanager/get?secretId=app/key`)
    assert.equal(denied.status, 401)
    assert.ok(!(await denied.text()).includes('abc'))
    assert.equal((await fetch(`${url}/ping`)).status, 200)
    assert.equal((await fetch(`${url}/ready`)).status, 200)

    agent.child.kill('SIGINT')
    assert.equal(await agent.exited(), 0)
  })

  it('serve refuses to start without a token, exit code 2', async () => {
    const agent = start(['serve', '--provider', 'local', '--store', join(dir, 'none.yaml'), '--port', '0'])
    assert.equal(await agent.exited(), 2)
    assert.match(agent.output(), /no token/)
  })

  /** Serves from a one-secret store with `flags`, where `taken` is a port another server holds; the agent's JSON lines. */
  async function serveWithPortTaken (name: string, flags: (taken: number) => string[]): Promise<{ code: number | string, lines: Array<Record<string, unknown>> }> {
    const other = createServer()
    await new Promise<void>((resolve) => { other.listen(0, '127.0.0.1', resolve) })
    try {
      const store = join(dir, `${name}-store.yaml`)
      await writeFile(store, 'secrets:\n  app/key: abc\n')
      const agent = start(['serve', '--provider', 'local', '--store', store, ...flags((other.address() as AddressInfo).port)], { AWS_TOKEN: 'tok-123' })
      const code = await agent.exited()
      return { code, lines: agent.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>) }
    } finally {
      other.close()
    }
  }

  it('exits 1 with its reason logged when the port is taken', async () => {
    const { code, lines } = await serveWithPortTaken('taken', (port) => ['--port', String(port)])
    assert.equal(code, 1)
    const fatal = lines.find((l) => l.level === 60)
    assert.equal(fatal?.msg, 'secrets-agent could not start')
    assert.equal((fatal?.err as { code?: string } | undefined)?.code, 'EADDRINUSE')
  })

  it('exits 1 when the metrics address is taken, without having said it was listening', async () => {
    const { code, lines } = await serveWithPortTaken('metrics-taken', (port) => ['--port', '0', '--metrics-listen', `127.0.0.1:${port}`])
    assert.equal(code, 1)
    const fatal = lines.find((l) => l.level === 60)
    assert.equal(fatal?.msg, 'secrets-agent could not start')
    assert.equal((fatal?.err as { code?: string } | undefined)?.code, 'EADDRINUSE')
    assert.deepEqual(lines.filter((l) => l.msg === 'secrets-agent listening'), [])
  })

  it('serve refuses a non-loopback address without --allow-remote', async () => {
    const store = join(dir, 'remote-store.yaml')
    await writeFile(store, 'secrets: {}\n')
    const agent = start(['serve', '--provider', 'local', '--store', store, '--host', '0.0.0.0', '--port', '0'], { AWS_TOKEN: 't' })
    assert.equal(await agent.exited(), 2)
    assert.match(agent.output(), /refusing to listen on 0\.0\.0\.0.*--allow-remote/)
  })

  it('serve on a non-loopback address with --allow-remote starts with a warning', async () => {
    const store = join(dir, 'remote-store-ok.yaml')
    await writeFile(store, 'secrets: {}\n')
    const agent = start(['serve', '--provider', 'local', '--store', store, '--host', '0.0.0.0', '--allow-remote', '--port', '0'], { AWS_TOKEN: 't' })
    await agent.waitFor(/"port":\d+/)
    assert.match(agent.output(), /"level":40.*non-loopback/)
  })

  it('serve listens on an IPv6 loopback address written in brackets, as in a URL', async () => {
    const store = join(dir, 'ipv6-store.yaml')
    await writeFile(store, 'secrets:\n  app/key: over-ipv6\n')
    const agent = start(['serve', '--provider', 'local', '--store', store, '--host', '[::1]', '--port', '0'], { AWS_TOKEN: 'tok-6' })
    const [, port] = await agent.waitFor(/"port":(\d+)/)
    const answer = await fetch(`http://[::1]:${port}/secretsmanager/get?secretId=app/key`, { headers: { 'X-Aws-Parameters-Secrets-Token': 'tok-6' } })
    assert.equal(((await answer.json()) as { SecretString: string }).SecretString, 'over-ipv6')
  })

  it('dev makes the token file --generate-token names, as serve does', async () => {
    const store = join(dir, 'dev-generate', 'store.yaml')
    const tokenFile = join(dir, 'dev-generate', 'token')
    const agent = start(['dev', '--port', '0', '--store', store, '--token-file', tokenFile, '--generate-token'])
    const [, port] = await agent.waitFor(/127\.0\.0\.1:(\d+)/)
    const token = (await readFile(tokenFile, 'utf8')).trim()
    const answer = await fetch(`http://127.0.0.1:${port}/secretsmanager/get?secretId=dev/example/database`, { headers: { 'X-Aws-Parameters-Secrets-Token': token } })
    assert.equal(answer.status, 200)
  })

  it('stops with exit code 2 and names the key for a bad setting', async () => {
    const agent = start(['serve', '--port', '99999'], { AWS_TOKEN: 't' })
    assert.equal(await agent.exited(), 2)
    assert.match(agent.output(), /http_port \(from --port\): "99999"; expected a whole number from 0 to 65535/)
  })

  it('rejects an unknown flag with exit code 2', async () => {
    const agent = start(['serve', '--prot', '1'])
    assert.equal(await agent.exited(), 2)
    assert.match(agent.output(), /Unknown option '--prot'/)
  })

  it('config prints each value with where it came from', async () => {
    const agent = start(['config', '--port', '4000'], { SECRETS_MANAGER_TTL: '60' })
    assert.equal(await agent.exited(), 0)
    const out = agent.output()
    assert.match(out, /^http_port +=  ?4000 +# flag: --port$/m)
    assert.match(out, /^secrets_ttl_seconds += 60 +# env: SECRETS_MANAGER_TTL$/m)
    assert.match(out, /^cache_size += 1000 +# default$/m)
  })

  it('--version prints the package version, and --help describes each command', async () => {
    const version = start(['--version'])
    assert.equal(await version.exited(), 0)
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
    assert.equal(version.output().trim(), pkg.version)
    for (const command of ['serve', 'dev', 'config']) {
      const help = start([command, '--help'])
      assert.equal(await help.exited(), 0)
      assert.match(help.output(), new RegExp(`Usage: secrets-agent ${command}`))
    }
  })
})
