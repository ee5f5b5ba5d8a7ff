import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import { FakeAws } from '../support/fake-aws.js'

/**
 * What ships is dist/ (the bin, the container's entrypoint), not src/: the other e2e tests run
 * src/ through tsx, so this one runs the build (`npm test` builds first).
 */
const DIST_CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url))

/** The port the agent logs it listens on, from its output so far; fails after 10 s. */
async function loggedPort (output: () => string): Promise<string> {
  const deadline = Date.now() + 10_000
  for (;;) {
    const port = /"port":(\d+)/.exec(output())?.[1]
    if (port !== undefined) return port
    assert.ok(Date.now() < deadline, `no port logged:\n${output()}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

describe('the built dist/cli.js', () => {
  let dir: string
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'sa-dist-')) })
  after(async () => { await rm(dir, { recursive: true, force: true }) })

  it('serves a secret from a local store, reports health, and stops with exit code 0 on SIGTERM', async () => {
    const store = join(dir, 'store.yaml')
    await writeFile(store, 'secrets:\n  built/secret: from-dist\n')
    const child = spawn(process.execPath, [DIST_CLI, 'serve', '--provider', 'local', '--store', store, '--port', '0'], {
      env: { PATH: process.env.PATH, HOME: dir, AWS_TOKEN: 'dist-token' },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let out = ''
    child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
    child.stderr.on('data', (chunk: Buffer) => { out += chunk.toString() })
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    try {
      const port = await loggedPort(() => out)
      const answer = await fetch(`http://127.0.0.1:${port}/secretsmanager/get?secretId=built/secret`, { headers: { 'X-Aws-Parameters-Secrets-Token': 'dist-token' } })
      assert.equal(answer.status, 200)
      assert.equal(((await answer.json()) as { SecretString: string }).SecretString, 'from-dist')

      // The built agent's route schemas come precompiled (scripts/precompile-schemas.ts): their
      // validators and serializers answer as fastify's own would.
      const ask = async (path: string): Promise<{ status: number, body: unknown }> => {
        const response = await fetch(`http://127.0.0.1:${port}${path}`, { headers: { 'X-Aws-Parameters-Secrets-Token': 'dist-token' } })
        return { status: response.status, body: await response.json() }
      }
      assert.deepEqual(await ask('/secretsmanager/get?secretId=built/secret&bogus=1'), { status: 400, body: { __type: 'ValidationException', message: 'Unknown query parameter "bogus".' } })
      assert.equal((await ask('/secretsmanager/get?secretId=built/secret&refreshNow=maybe')).status, 400)
      assert.deepEqual((await ask('/secretsmanager/get?secretId=no/such')).body, { __type: 'ResourceNotFoundException', message: "Secrets Manager can't find the specified secret." })
      const batch = await ask('/secretsmanager/batch-get?secretId=built/secret&secretId=no/such')
      assert.equal(batch.status, 200)
      assert.deepEqual((batch.body as { SecretValues: Array<{ SecretString: string }> }).SecretValues.map((s) => s.SecretString), ['from-dist'])
      assert.deepEqual((batch.body as { Errors: Array<{ SecretId: string }> }).Errors.map((e) => e.SecretId), ['no/such'])

      const health = spawn(process.execPath, [DIST_CLI, 'health', '--port', port], { stdio: 'ignore' })
      assert.equal(await new Promise((resolve) => health.once('exit', resolve)), 0)

      child.kill('SIGTERM')
      assert.equal(await exited, 0)
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL')
    }
  })

  it('reads from AWS writing nothing but JSON log lines: no runtime warning on stderr (Node 24 warns of url.parse outside node_modules)', async () => {
    const fake = await FakeAws.start()
    fake.putSecret({ name: 'built/aws', secretString: 'from-aws' })
    // --pending-deprecation: Node 20 too reports what Node 24 warns of at run time.
    const child = spawn(process.execPath, ['--pending-deprecation', DIST_CLI, 'serve', '--port', '0'], {
      env: {
        PATH: process.env.PATH,
        HOME: dir,
        AWS_TOKEN: 'dist-token',
        AWS_REGION: 'us-east-1',
        AWS_ACCESS_KEY_ID: 'AKIDDIST',
        AWS_SECRET_ACCESS_KEY: 'dist-secret',
        AWS_ENDPOINT_URL: fake.url,
        AWS_EC2_METADATA_DISABLED: 'true',
        AWS_CONFIG_FILE: join(dir, 'no-config'),
        AWS_SHARED_CREDENTIALS_FILE: join(dir, 'no-credentials')
      },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    try {
      const port = await loggedPort(() => stdout + stderr)
      const answer = await fetch(`http://127.0.0.1:${port}/secretsmanager/get?secretId=built/aws`, { headers: { 'X-Aws-Parameters-Secrets-Token': 'dist-token' } })
      assert.equal(answer.status, 200)
      assert.equal(((await answer.json()) as { SecretString: string }).SecretString, 'from-aws')

      child.kill('SIGTERM')
      assert.equal(await exited, 0)
      // (Node 20 hears the SDK's own NodeVersionSupportWarning: it is meant for the operator.)
      assert.doesNotMatch(stderr, /DeprecationWarning/)
      for (const line of stdout.split('\n').filter((l) => l !== '')) assert.doesNotThrow(() => JSON.parse(line), line)
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL')
      await fake.close()
    }
  })
})
