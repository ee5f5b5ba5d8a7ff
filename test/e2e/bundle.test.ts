/**
 * What the built agent (dist/, `npm run build`) loads at start: parts used only by some requests
 * are chunks of their own, imported on first use, so an agent that never uses them never holds
 * their code (start-up time and memory, docs/bench/findings.md).
 */
import assert from 'node:assert/strict'
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { startCli } from '../support/cli.js'

const DIST = fileURLToPath(new URL('../../dist/', import.meta.url))
const PACKAGE_JSON = fileURLToPath(new URL('../../package.json', import.meta.url))

/** The chunks `entries` import statically, themselves included: what loading them loads. */
function loadedWith (entries: string[]): Set<string> {
  const loaded = new Set<string>()
  const pending = [...entries]
  for (let file = pending.pop(); file !== undefined; file = pending.pop()) {
    if (loaded.has(file)) continue
    loaded.add(file)
    const source = readFileSync(join(DIST, file), 'utf8')
    // esbuild's static imports, minified or not: `import{a}from"./chunk-X.js";`, `import "./chunk-X.js";`
    // (a dynamic `import("./chunk-X.js")` is not one).
    for (const match of source.matchAll(/(?:^|;)\s*import\s*(?:[^;"'()]*?from\s*)?"\.\/([^"]+\.js)"/gm)) pending.push(match[1] ?? '')
  }
  return loaded
}

/** The files bundled into a chunk, from its source map: `src/...` and `node_modules/...` paths. */
function sourcesOf (chunk: string): string[] {
  const map = JSON.parse(readFileSync(join(DIST, `${chunk}.map`), 'utf8')) as { sources: string[] }
  return map.sources.map((source) => source.replace(/^(\.\.\/)+/, ''))
}

/** The packages (`node_modules/NAME`) and source files (`src/...`) bundled into `files`. */
function contents (files: Set<string>): string[] {
  const found = new Set<string>()
  for (const file of files) {
    for (const source of sourcesOf(file)) {
      const pkg = /^node_modules\/(?:@[^/]+\/)?[^/]+/.exec(source)?.[0]
      if (pkg !== undefined) found.add(pkg)
      else if (source.startsWith('src/')) found.add(source)
    }
  }
  return [...found]
}

/** The chunk that holds a source file. */
function chunkOf (source: string): string {
  const chunk = readdirSync(DIST).filter((f) => f.endsWith('.js')).find((f) => sourcesOf(f).includes(source))
  assert.ok(chunk !== undefined, `no chunk of dist/ holds ${source}`)
  return chunk
}

describe('the built agent', () => {
  before(() => { assert.ok(existsSync(join(DIST, 'cli.js')), 'dist/ is not built: run npm run build (npm test does it first)') })

  it('loads no AWS SDK, Encryption SDK or pretty printer at start on the local store (the default)', () => {
    // The CLI imports the agent when it serves, and the agent its provider.
    const atStart = contents(loadedWith(['cli.js', chunkOf('src/agent.ts'), chunkOf('src/providers/local/provider.ts')]))
    assert.ok(atStart.includes('node_modules/fastify'), 'the reading of the bundle finds what it holds')
    for (const name of atStart) assert.doesNotMatch(name, /^node_modules\/(@aws-sdk|@smithy|@aws-crypto|pino-pretty)\b/)
  })

  it('loads Secrets Manager on the aws provider, and Parameter Store, KMS and the Encryption SDK only when first used, and no local store', () => {
    const atStart = contents(loadedWith(['cli.js', chunkOf('src/agent.ts'), chunkOf('src/providers/aws/provider.ts')]))
    assert.ok(atStart.includes('node_modules/@aws-sdk/client-secrets-manager'))
    for (const name of ['node_modules/@aws-sdk/client-ssm', 'node_modules/@aws-sdk/client-kms', 'node_modules/@aws-crypto/client-node', 'node_modules/pino-pretty', 'node_modules/yaml', 'src/providers/aws/ssm.ts', 'src/providers/aws/kms.ts', 'src/providers/local/provider.ts']) {
      assert.ok(!atStart.includes(name), `${name} is loaded at start`)
    }
  })

  it('imports node:http and node:https as CommonJS only, at start and in the client commands', () => {
    // An ESM import of a built-in makes Node read every export of it, and on Node 24 some of
    // node:http's load undici (Node's fetch): 13-17 ms of a start, for code never run. A static
    // import costs that at start; a dynamic one when it runs, which in the agent's own code is at
    // start too (the metrics listener). The AWS SDK's own dynamic import, for EC2's instance
    // metadata, runs only when credentials come from there.
    const files = new Set([
      ...loadedWith(['cli.js', chunkOf('src/agent.ts'), chunkOf('src/providers/local/provider.ts')]),
      ...loadedWith([chunkOf('src/providers/aws/provider.ts'), chunkOf('src/providers/aws/http-handler.ts'), chunkOf('src/commands/agent-client.ts'), chunkOf('src/metrics.ts')])
    ])
    assert.ok(files.size > 3)
    for (const file of files) {
      const source = readFileSync(join(DIST, file), 'utf8')
      assert.doesNotMatch(source, /\bfrom\s*"(?:node:)?https?"/, `${file} imports node:http or node:https statically as ESM`)
      if (sourcesOf(file).some((s) => s.startsWith('src/'))) {
        assert.doesNotMatch(source, /\bimport\s*\(\s*"(?:node:)?https?"\s*\)/, `${file} imports node:http or node:https dynamically as ESM`)
      }
    }
  })
})

/**
 * The CommonJS modules (`node_modules/...` paths) a copy of dist/ runs from its start to its first
 * 200 on a JSON store. esbuild wraps each bundled CommonJS module in a function its first
 * `require` calls (`__commonJS`); the copy's helper notes each module as it runs.
 */
async function modulesRunToFirst200 (): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'sa-bundle-run-'))
  try {
    cpSync(DIST, join(dir, 'dist'), { recursive: true })
    cpSync(PACKAGE_JSON, join(dir, 'package.json'))
    const HELPER = 'var __commonJS=(cb,mod)=>function __require2(){try{return mod||('
    // One chunk defines it and the others import it: patched there, it notes every module.
    const helperFiles = readdirSync(join(dir, 'dist')).filter((f) => f.endsWith('.js')).map((f) => join(dir, 'dist', f)).filter((f) => readFileSync(f, 'utf8').includes(HELPER))
    assert.equal(helperFiles.length, 1, `chunks of dist/ that define esbuild's __commonJS helper as ${HELPER}: ${helperFiles.join(', ')}`)
    for (const file of helperFiles) writeFileSync(file, readFileSync(file, 'utf8').replace(HELPER, `${HELPER}(globalThis.__modulesRun??=[]).push(__getOwnPropNames(cb)[0]),`))
    const report = "import { writeSync } from 'node:fs'; process.on('exit', () => { writeSync(2, `\\nMODULES RUN ${JSON.stringify(globalThis.__modulesRun ?? [])}\\n`) })"
    const store = join(dir, 'store.json')
    writeFileSync(store, JSON.stringify({ secrets: { 'app/db': 'from-store' } }))
    const agent = startCli(['serve', '--provider', 'local', '--store', store, '--port', '0'], { HOME: dir, AWS_TOKEN: 'bundle-token' }, {
      built: join(dir, 'dist', 'cli.js'),
      nodeArgs: ['--import', `data:text/javascript,${encodeURIComponent(report)}`]
    })
    try {
      const [, port] = await agent.waitFor(/"port":(\d+)/)
      const answer = await fetch(`http://127.0.0.1:${port}/secretsmanager/get?secretId=app/db`, { headers: { 'X-Aws-Parameters-Secrets-Token': 'bundle-token' } })
      assert.equal(answer.status, 200)
      assert.equal(((await answer.json()) as { SecretString: string }).SecretString, 'from-store')
      agent.child.kill('SIGTERM')
      assert.equal(await agent.exited(), 0)
    } finally {
      agent.kill()
    }
    const listed = /MODULES RUN (\[.*\])/.exec(agent.output())?.[1]
    assert.ok(listed !== undefined, `no list of modules run:\n${agent.output()}`)
    return JSON.parse(listed) as string[]
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

describe('the built agent, from start to its first 200 on a JSON store', () => {
  let run: string[]
  before(async () => {
    assert.ok(existsSync(join(DIST, 'cli.js')), 'dist/ is not built: run npm run build (npm test does it first)')
    run = await modulesRunToFirst200()
    assert.ok(run.includes('node_modules/fastify/fastify.js'), 'the copy notes the modules it runs')
  })

  it('compiles no schema: neither Ajv nor fast-json-stringify\'s compiler runs (they come compiled, scripts/precompile-schemas.ts)', () => {
    // The precompiled validators and serialisers use runtime helpers of both (ajv/dist/runtime/, lib/serializer.js).
    const compilers = run.filter((m) => /(^|\/)node_modules\/(ajv\/dist\/(ajv|core)\.js|(.*\/)?fast-json-stringify\/index\.js|@fastify\/ajv-compiler\/)/.test(m))
    assert.deepEqual(compilers, [])
  })

  it('runs no YAML parser', () => {
    assert.deepEqual(run.filter((m) => m.startsWith('node_modules/yaml/')), [])
  })

  it('runs no OpenTelemetry API: prom-client requires it for exemplars, which the agent does not turn on', () => {
    assert.ok(run.includes('node_modules/prom-client/lib/metrics/processCpuTotal.js'), 'prom-client\'s CPU collector runs')
    assert.deepEqual(run.filter((m) => m.startsWith('node_modules/@opentelemetry/')), [])
  })
})
