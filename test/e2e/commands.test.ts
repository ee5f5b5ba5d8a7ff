import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { lstat, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { EXIT } from '../../src/cli.js'
import { eventually, startTestAgent, TEST_TOKEN, type TestAgent } from '../support/agent.js'
import { CLI } from '../support/cli.js'

interface Run {
  code: number | string
  stdout: Buffer
  stderr: string
}

/**
 * Runs the CLI from source to its end, with stdout kept apart (and as bytes: `get` prints binary
 * secrets raw) and optional stdin. Killed after 10 s.
 */
function run (args: string[], env: NodeJS.ProcessEnv = {}, input?: string | Buffer): Promise<Run> {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_NO_WARNINGS: '1', ...env },
    stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe']
  })
  const out: Buffer[] = []
  let err = ''
  child.stdout?.on('data', (chunk: Buffer) => out.push(chunk))
  child.stderr?.on('data', (chunk: Buffer) => { err += chunk.toString('utf8') })
  if (input !== undefined) child.stdin?.end(input)
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code: code ?? signal ?? 'unknown', stdout: Buffer.concat(out), stderr: err })
    })
  })
}

/** A port nothing listens on: bound once by the OS, then released. */
async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  assert.ok(address !== null && typeof address === 'object')
  return address.port
}

const STORE = `# the team's store: keep this comment
secrets:
  app/db:
    versions:
      - stages: [AWSCURRENT]
        json: { username: app, password: pw-current-7Qx }
      - id: 6b1f0c52-9a1e-4c0e-8a57-2f3d4e5a6b7c
        stages: [AWSPREVIOUS]
        string: '{"username":"app","password":"pw-previous-3Kd"}'
  app/api-key: key-plain-9Zt
  app/cert:
    binary: ${Buffer.from([0, 1, 2, 255, 10]).toString('base64')}
parameters:
  /app/level: info   # a String
  /app/db-password: { type: SecureString, value: param-secure-5Rw }
`

describe('secrets-agent health, get and store', () => {
  let dir: string
  let agent: TestAgent
  let port: string
  /** The environment of an app beside the agent: its port and token, and nothing of the real user's. */
  let env: NodeJS.ProcessEnv

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sa-commands-'))
    agent = await startTestAgent({ store: STORE, logLevel: 'warn' })
    await eventually(() => agent.readiness.state().ready, 3000, 'the agent to be ready')
    port = String(agent.port)
    env = { XDG_RUNTIME_DIR: join(dir, 'run'), XDG_CONFIG_HOME: join(dir, 'config'), SECRETS_AGENT_HTTP_PORT: port, AWS_TOKEN: TEST_TOKEN }
  })
  after(async () => {
    await agent.stop()
    await rm(dir, { recursive: true, force: true })
  })

  describe('health', () => {
    it('exits 0 and prints healthy when the agent answers /ping, finding the port in the environment', async () => {
      const result = await run(['health'], { PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: port })

      assert.equal(result.code, EXIT.ok)
      assert.equal(result.stdout.toString(), 'healthy\n')
    })

    it('exits 5 with a one-line reason when nothing listens on the port', async () => {
      const result = await run(['health', '--port', String(await freePort())])

      assert.equal(result.code, EXIT.unreachable)
      assert.match(result.stderr, /^secrets-agent health: nothing is listening on 127\.0\.0\.1:\d+.*\n$/)
    })

    it('with --ready exits 6 while the agent is not ready, and 0 once it is', async () => {
      agent.readiness.set({ ready: false, reason: 'Prefetching.' })
      let notReady: Run
      try {
        notReady = await run(['health', '--ready', '--port', port])
      } finally {
        agent.readiness.set({ ready: true })
      }
      const ready = await run(['health', '--ready', '--port', port])

      assert.equal(notReady.code, EXIT.unhealthy)
      assert.match(notReady.stderr, /not ready: .*503.*Prefetching\./)
      assert.equal(ready.code, EXIT.ok)
      assert.equal(ready.stdout.toString(), 'ready\n')
    })

    it('reads the port from the TOML file serve reads, and answers a bad flag with exit 2', async () => {
      const config = join(dir, 'agent.toml')
      await writeFile(config, `http_port = ${port}\n`)

      const [fromFile, badFlag] = await Promise.all([run(['health', '--config', config]), run(['health', '--prot', '1'])])

      assert.equal(fromFile.code, EXIT.ok)
      assert.equal(badFlag.code, EXIT.usage)
      assert.match(badFlag.stderr, /Unknown option '--prot'/)
    })
  })

  describe('get', () => {
    it('prints a SecretString exactly (no newline added when stdout is not a terminal), one field, or a version by stage or id', async () => {
      const [plain, field, previous, byId] = await Promise.all([
        run(['get', 'app/api-key'], env),
        run(['get', 'app/db', '--field', 'password'], env),
        run(['get', 'app/db', '--stage', 'AWSPREVIOUS', '--field', 'password'], env),
        run(['get', 'app/db', '--version-id', '6b1f0c52-9a1e-4c0e-8a57-2f3d4e5a6b7c'], env)
      ])

      assert.equal(plain.stdout.toString(), 'key-plain-9Zt')
      assert.equal(plain.stderr, '')
      assert.equal(field.stdout.toString(), 'pw-current-7Qx')
      assert.equal(previous.stdout.toString(), 'pw-previous-3Kd')
      assert.deepEqual(JSON.parse(byId.stdout.toString()), { username: 'app', password: 'pw-previous-3Kd' })
      assert.deepEqual([plain.code, field.code, previous.code, byId.code], [0, 0, 0, 0])
    })

    it('prints the raw bytes of a binary secret', async () => {
      const result = await run(['get', 'app/cert'], env)

      assert.equal(result.code, EXIT.ok)
      assert.deepEqual([...result.stdout], [0, 1, 2, 255, 10])
    })

    it('prints a parameter value, and a SecureString in plaintext only with --with-decryption', async () => {
      const [plain, decrypted, encrypted] = await Promise.all([
        run(['get', '--parameter', '/app/level'], env),
        run(['get', '--parameter', '/app/db-password', '--with-decryption'], env),
        run(['get', '--parameter', '/app/db-password'], env)
      ])

      assert.equal(plain.stdout.toString(), 'info')
      assert.equal(decrypted.stdout.toString(), 'param-secure-5Rw')
      assert.equal(encrypted.code, EXIT.ok)
      assert.ok(!encrypted.stdout.toString().includes('param-secure-5Rw'))
      assert.match(encrypted.stdout.toString(), /^[A-Za-z0-9+/]+=*$/)
    })

    it('takes the token from a file:// variable, from --token-file, or from the file dev writes', async () => {
      const tokenFile = join(dir, 'token')
      await writeFile(tokenFile, `${TEST_TOKEN}\n`)
      await mkdir(join(dir, 'run', 'secrets-agent'), { recursive: true })
      await writeFile(join(dir, 'run', 'secrets-agent', 'token'), TEST_TOKEN)
      const noToken = { ...env, AWS_TOKEN: undefined }
      // As the agent reads file://: the rest is a path as written, relative ones too, # and all.
      const oddFile = join(dir, 'token #1')
      await writeFile(oddFile, `${TEST_TOKEN}\n`)

      const results = await Promise.all([
        // No dev file here: it would come before AWS_CONTAINER_AUTHORIZATION_TOKEN.
        run(['get', 'app/api-key'], { ...noToken, XDG_RUNTIME_DIR: join(dir, 'empty-run'), AWS_CONTAINER_AUTHORIZATION_TOKEN: `file://${tokenFile}` }),
        run(['get', 'app/api-key'], { ...noToken, XDG_RUNTIME_DIR: join(dir, 'empty-run'), AWS_TOKEN: `file://${relative(process.cwd(), oddFile)}` }),
        run(['get', 'app/api-key', '--token-file', tokenFile], { ...noToken, AWS_TOKEN: 'not-the-token' }),
        run(['get', 'app/api-key'], noToken)
      ])

      for (const result of results) {
        assert.equal(result.code, EXIT.ok, result.stderr)
        assert.equal(result.stdout.toString(), 'key-plain-9Zt')
      }
    })

    it('beside dev, takes the dev file over an AWS_SESSION_TOKEN (an SSO credential), but AWS_TOKEN over the dev file', async () => {
      const runtime = join(dir, 'dev-run')
      await mkdir(join(runtime, 'secrets-agent'), { recursive: true })
      await writeFile(join(runtime, 'secrets-agent', 'token'), `${TEST_TOKEN}\n`, { mode: 0o600 })
      const laptop = { ...env, AWS_TOKEN: undefined, XDG_RUNTIME_DIR: runtime, AWS_SESSION_TOKEN: 'IQoJb3JpZ2luX2VjEXAMPLE-sso-session' }

      const [beside, overridden] = await Promise.all([
        run(['get', 'app/api-key'], laptop),
        run(['get', 'app/api-key'], { ...laptop, AWS_TOKEN: 'wrong-token-8Lm' })
      ])

      assert.equal(beside.code, EXIT.ok, beside.stderr)
      assert.equal(beside.stdout.toString(), 'key-plain-9Zt')
      assert.equal(overridden.code, EXIT.denied)
      assert.match(overridden.stderr, /UnauthorizedException/)
    })

    it('exits 3 for a missing secret, parameter or field, and 4 for a wrong token', async () => {
      const [secret, parameter, field, denied] = await Promise.all([
        run(['get', 'app/none'], env),
        run(['get', '--parameter', '/app/none'], env),
        run(['get', 'app/db', '--field', 'none'], env),
        run(['get', 'app/api-key'], { ...env, AWS_TOKEN: 'wrong-token-4Hs' })
      ])

      assert.deepEqual([secret.code, parameter.code, field.code, denied.code], [EXIT.notFound, EXIT.notFound, EXIT.notFound, EXIT.denied])
      assert.match(secret.stderr, /^secrets-agent get: ResourceNotFoundException: .*\n$/)
      assert.match(denied.stderr, /UnauthorizedException/)
      for (const result of [secret, parameter, field, denied]) assert.equal(result.stdout.length, 0)
    })

    it('exits 5 when nothing listens, and 2 for bad usage or no token at all', async () => {
      const [unreachable, noId, fieldOfParameter, noToken] = await Promise.all([
        run(['get', 'app/api-key', '--port', String(await freePort())], env),
        run(['get'], env),
        run(['get', '--parameter', '/app/level', '--field', 'x'], env),
        run(['get', 'app/api-key'], { ...env, AWS_TOKEN: undefined, XDG_RUNTIME_DIR: join(dir, 'empty-run') })
      ])

      assert.equal(unreachable.code, EXIT.unreachable)
      assert.match(unreachable.stderr, /nothing is listening/)
      assert.deepEqual([noId.code, fieldOfParameter.code, noToken.code], [EXIT.usage, EXIT.usage, EXIT.usage])
      assert.match(noToken.stderr, /no token: pass --token-file/)
    })
  })

  describe('store', () => {
    const read = async (secretId: string): Promise<unknown> => {
      const response = await agent.get(`/secretsmanager/get?secretId=${encodeURIComponent(secretId)}`)
      return response.status === 200 ? ((await response.json()) as { SecretString: unknown }).SecretString : response.status
    }

    it('set, list and delete round trip while the running agent serves each change without a restart', async () => {
      const store = ['--store', agent.storeFile ?? '']
      assert.equal(await read('app/api-key'), 'key-plain-9Zt')

      const first = await run(['store', 'set', 'secret', 'app/api-key', 'key-second-2Lp', ...store])
      await eventually(async () => (await read('app/api-key')) === 'key-second-2Lp', 3000, 'the agent to serve the new value')
      const second = await run(['store', 'set', 'secret', 'app/api-key', '-', ...store], {}, 'key-third-8Vn\n')
      await eventually(async () => (await read('app/api-key')) === 'key-third-8Vn', 3000, 'the agent to serve the value from stdin')
      const [previous, list] = await Promise.all([run(['get', 'app/api-key', '--stage', 'AWSPREVIOUS'], env), run(['store', 'list', ...store])])

      assert.equal(first.code, EXIT.ok, first.stderr)
      assert.equal(second.code, EXIT.ok, second.stderr)
      assert.equal(previous.stdout.toString(), 'key-second-2Lp', 'a SecretString set twice leaves the old one at AWSPREVIOUS')
      assert.equal(list.code, EXIT.ok)
      const listed = list.stdout.toString()
      assert.match(listed, /^secret +app\/api-key +SecretString +2 +AWSPREVIOUS=\S+ AWSCURRENT=\S+$/m)
      assert.match(listed, /^secret +app\/cert +SecretBinary +1 +AWSCURRENT=/m)
      assert.match(listed, /^parameter +\/app\/db-password +SecureString +1$/m)
      for (const value of ['key-plain-9Zt', 'key-second-2Lp', 'key-third-8Vn', 'pw-current-7Qx', 'pw-previous-3Kd', 'param-secure-5Rw', 'info']) {
        assert.ok(!listed.includes(value), `list shows no value (${value})`)
      }
      assert.match(await readFile(agent.storeFile ?? '', 'utf8'), /^# the team's store: keep this comment\n[^]*\/app\/level: info +# a String$/m, 'comments elsewhere are kept')

      const deleted = await run(['store', 'delete', 'secret', 'app/api-key', ...store])
      await eventually(async () => (await read('app/api-key')) === 404, 3000, 'the agent to forget the deleted secret')
      const again = await run(['store', 'delete', 'secret', 'app/api-key', ...store])

      assert.equal(deleted.code, EXIT.ok)
      assert.equal(again.code, EXIT.notFound)
    })

    it('adds parameter versions with labels and types, reading the value from stdin', async () => {
      const store = ['--store', agent.storeFile ?? '']

      const set = await run(['store', 'set', 'parameter', '/app/token', '-', '--type', 'SecureString', '--label', 'live', ...store], {}, 'param-token-6Jm\n')
      const next = await run(['store', 'set', 'parameter', '/app/token', 'param-token-7Kn', '--label', 'live', ...store])
      await eventually(async () => (await agent.get('/systemsmanager/parameters/get?name=/app/token:live&withDecryption=true')).status === 200, 3000, 'the new parameter')
      const [live, first] = await Promise.all([
        run(['get', '--parameter', '/app/token:live', '--with-decryption'], env),
        run(['get', '--parameter', '/app/token:1', '--with-decryption'], env)
      ])
      const list = await run(['store', 'list', ...store])

      assert.equal(set.code, EXIT.ok, set.stderr)
      assert.equal(next.code, EXIT.ok, next.stderr)
      assert.equal(live.stdout.toString(), 'param-token-7Kn')
      assert.equal(first.stdout.toString(), 'param-token-6Jm')
      assert.match(list.stdout.toString(), /^parameter +\/app\/token +SecureString +2 +live=2$/m)
    })

    it('stores a binary secret from a file and a JSON secret whose fields get --field reads', async () => {
      const file = join(dir, 'cert.bin')
      await writeFile(file, Buffer.from([9, 8, 0, 7]))
      const store = ['--store', agent.storeFile ?? '']

      const binary = await run(['store', 'set', 'secret', 'app/new-cert', '--binary-file', file, ...store])
      const json = await run(['store', 'set', 'secret', 'app/new-db', '--json', '{"password":"pw-json-1Qa","account":12345678901234567890,"rate":1.10}', ...store])
      await eventually(async () => (await read('app/new-db')) !== 404, 3000, 'the new secrets')
      const [bytes, field, account] = await Promise.all([
        run(['get', 'app/new-cert'], env),
        run(['get', 'app/new-db', '--field', 'password'], env),
        run(['get', 'app/new-db', '--field', 'account'], env)
      ])

      assert.deepEqual([binary.code, json.code], [0, 0])
      assert.deepEqual([...bytes.stdout], [9, 8, 0, 7])
      assert.equal(field.stdout.toString(), 'pw-json-1Qa')
      assert.equal(account.stdout.toString(), '12345678901234567890', 'numbers as typed, not through a double')
      assert.equal(await read('app/new-db'), '{"password":"pw-json-1Qa","account":12345678901234567890,"rate":1.10}')
    })

    it('leaves the file untouched, exit 2, when the value or the edit is bad', async () => {
      const store = ['--store', agent.storeFile ?? '']
      const before = await readFile(agent.storeFile ?? '')

      const results = await Promise.all([
        run(['store', 'set', 'secret', 'app/db', '--json', '{not json', ...store]),
        run(['store', 'set', 'secret', 'app/fresh', 'v', '--stage', 'AWSPENDING', ...store]),
        run(['store', 'set', 'parameter', '/app/level', 'v', '--label', '1-starts-with-a-digit', ...store])
      ])

      for (const result of results) {
        assert.equal(result.code, EXIT.usage, result.stderr)
        assert.match(result.stderr, /^secrets-agent store: .+\n$/)
      }
      assert.ok(!results[0]?.stderr.includes('{not json'), 'the rejected value is not echoed')
      assert.deepEqual(await readFile(agent.storeFile ?? ''), before)
    })

    it('makes, lists and disables local KMS keys, and the running agent uses the change at once', async () => {
      const store = ['--store', agent.storeFile ?? '']
      const encrypt = async (): Promise<number> => (await fetch(`http://127.0.0.1:${port}/kms/encrypt`, {
        method: 'POST',
        headers: { 'X-Aws-Parameters-Secrets-Token': TEST_TOKEN, 'Content-Type': 'application/json' },
        body: JSON.stringify({ KeyId: 'alias/app', Plaintext: Buffer.from('hunter2').toString('base64') })
      })).status
      assert.equal(await encrypt(), 404)

      const created = await run(['store', 'key', 'create', '--alias', 'alias/app', '--description', 'orders', ...store])
      assert.equal(created.code, EXIT.ok, created.stderr)
      const arn = created.stdout.toString().split(' ')[0] ?? ''
      assert.match(arn, /^arn:aws:kms:us-east-1:000000000000:key\/[0-9a-f-]{36}$/)
      await eventually(async () => await encrypt() === 200, 3000, 'the agent to use the new key')

      const list = (await run(['store', 'key', 'list', ...store])).stdout.toString()
      assert.ok(list.split('\n').includes(`${arn}  enabled  alias/app`), list)
      assert.match(list, /^arn:\S+ {2}enabled {2}alias\/aws\/ssm alias\/secrets-agent\/default$/m)
      assert.ok(list.trimEnd().split('\n').every((line) => /^arn:aws:kms:\S+ {2}(enabled|disabled)( {2}alias\/\S+( alias\/\S+)*)?$/.test(line)), 'ARNs, states and aliases only: no key material')

      const disabled = await run(['store', 'key', 'disable', 'alias/app', ...store])
      assert.equal(disabled.code, EXIT.ok, disabled.stderr)
      await eventually(async () => await encrypt() === 403, 3000, 'the agent to refuse the disabled key')

      const [taken, unknown, reserved] = await Promise.all([
        run(['store', 'key', 'create', '--alias', 'alias/app', ...store]),
        run(['store', 'key', 'enable', 'alias/none', ...store]),
        run(['store', 'key', 'create', '--alias', 'alias/aws/mine', ...store])
      ])
      assert.deepEqual([taken.code, unknown.code, reserved.code], [EXIT.usage, EXIT.notFound, EXIT.usage])
      for (const result of [taken, unknown, reserved]) assert.match(result.stderr, /^secrets-agent store: .+\n$/)
    })

    it('keeps every edit of edits made at once, and edits the file a symlinked store names', async () => {
      const real = join(dir, 'dotfiles', 'store.yaml')
      const link = join(dir, 'linked', 'store.yaml')
      await mkdir(join(dir, 'dotfiles'), { recursive: true })
      await mkdir(join(dir, 'linked'), { recursive: true })
      await writeFile(real, 'secrets:\n  first: one\n', { mode: 0o600 })
      await symlink(real, link)
      const store = ['--store', link]

      const edits = await Promise.all([
        ...Array.from({ length: 5 }, async (_, i) => run(['store', 'set', 'secret', `s${i}`, `v${i}`, ...store])),
        ...Array.from({ length: 3 }, async (_, i) => run(['store', 'key', 'create', '--alias', `alias/k${i}`, ...store]))
      ])
      const [secrets, keys] = await Promise.all([run(['store', 'list', ...store]), run(['store', 'key', 'list', ...store])])

      for (const edit of edits) assert.equal(edit.code, EXIT.ok, edit.stderr)
      for (let i = 0; i < 5; i++) assert.match(secrets.stdout.toString(), new RegExp(`^secret +s${i} `, 'm'))
      for (let i = 0; i < 3; i++) assert.match(keys.stdout.toString(), new RegExp(` alias/k${i}(\\s|$)`, 'm'))
      assert.ok((await lstat(link)).isSymbolicLink(), 'the link stays a link')
      assert.match(await readFile(real, 'utf8'), /^ {2}s4:$/m)
    })

    it('refuses, exit 2, an edit that would break a YAML alias, and a store path that is a directory', async () => {
      const file = join(dir, 'anchored.yaml')
      const text = 'secrets:\n  dev/a: &pw hunter2\n  dev/b: *pw\n'
      await writeFile(file, text, { mode: 0o600 })

      const [removed, unreadable] = await Promise.all([
        run(['store', 'delete', 'secret', 'dev/a', '--store', file]),
        run(['store', 'list', '--store', dir])
      ])

      assert.equal(removed.code, EXIT.usage, removed.stderr)
      assert.match(removed.stderr, /^secrets-agent store: .*anchor.*\n$/)
      assert.ok(!removed.stderr.includes('hunter2'))
      assert.equal(await readFile(file, 'utf8'), text)
      assert.equal(unreadable.code, EXIT.usage, unreadable.stderr)
    })

    it('creates a missing store file with mode 0600, using the default path', async () => {
      const configHome = join(dir, 'fresh-config')

      const [set, missing] = await Promise.all([
        run(['store', 'set', 'parameter', '/dev/flag', 'on'], { XDG_CONFIG_HOME: configHome }),
        run(['store', 'list', '--store', join(dir, 'none.yaml')])
      ])
      const list = await run(['store', 'list'], { XDG_CONFIG_HOME: configHome })

      assert.equal(set.code, EXIT.ok, set.stderr)
      assert.equal((await stat(join(configHome, 'secrets-agent', 'store.yaml'))).mode & 0o777, 0o600)
      assert.match(list.stdout.toString(), /^parameter +\/dev\/flag +String +1$/m)
      assert.equal(missing.code, EXIT.notFound)
    })
  })

  it('get and health exit 1 with one line on stderr when stdout\'s reader has gone', async () => {
    for (const args of [['get', 'app/db'], ['health']]) {
      const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
        env: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_NO_WARNINGS: '1', ...env },
        stdio: ['ignore', 'pipe', 'pipe']
      })
      // As `secrets-agent get app/db | head -c0`: the pipe's read end closed before the write.
      child.stdout?.destroy()
      let stderr = ''
      child.stderr?.on('data', (chunk: Buffer) => { stderr += chunk.toString('utf8') })
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
      const code = await new Promise((resolve) => child.on('close', (exit) => { clearTimeout(timer); resolve(exit) }))

      assert.equal(code, EXIT.failure, stderr)
      assert.match(stderr, new RegExp(`^secrets-agent ${args[0]!}: cannot write to stdout: EPIPE\n$`))
    }
  })

  it('--help describes each new command, and the main help lists them', async () => {
    const [main, ...helps] = await Promise.all([run(['--help']), ...['health', 'get', 'store'].map((c) => run([c, '--help']))])

    assert.equal(main.code, EXIT.ok)
    for (const command of ['health', 'get', 'store']) assert.match(main.stdout.toString(), new RegExp(`^ {2}${command} +\\S`, 'm'))
    for (const [i, command] of ['health', 'get', 'store'].entries()) {
      assert.equal(helps[i]?.code, EXIT.ok)
      assert.match(helps[i]?.stdout.toString() ?? '', new RegExp(`Usage: secrets-agent ${command}`))
    }
  })
})
