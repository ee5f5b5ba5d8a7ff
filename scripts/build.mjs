#!/usr/bin/env node
// `npm run build`: bundles src/cli.ts and everything it imports into dist/ with esbuild, so that
// starting the agent loads a few files instead of hundreds (start to first 200, issue 8).
//
//   node scripts/build.mjs                  dist/ from src/cli.ts
//   node scripts/build.mjs --outdir DIR     the same bundle elsewhere (the bench builds into its cache)
//
// - ESM with code splitting: what src/ loads with `await import()` (the AWS SDK provider, the
//   Encryption SDK, pino-pretty, the CLI's other commands) becomes its own chunk, still loaded
//   only when used.
// - Chunks sit beside cli.js, never in a subdirectory: src/version.ts reads `../package.json`
//   relative to its own module, which is then the package root for every file in the output.
// - Dependencies are bundled too: fewer files to resolve and read is most of the gain (measured
//   start to first 200: 396 ms with them left in node_modules, 227 ms bundled, 406 ms before, as
//   tsc output). CommonJS dependencies get `require` from a banner; their `__dirname` and
//   `__filename` become `import.meta.dirname` and `import.meta.filename` (Node 20.11+, the
//   engines floor). @fastify/swagger stays outside: only the OpenAPI document uses it, and it
//   reads its own package.json by path.
// - The route schemas come compiled (scripts/precompile-schemas.ts, run here with tsx): fastify
//   would otherwise compile them at every start (measured: 227 → 182 ms). So do the answers the
//   agent serialises itself: the bundle holds src/server/serialisers.ts's precompiled form, and
//   the agent runs neither fast-json-stringify's compiler nor Ajv at start.
// - Type checking is not done here: `npm run typecheck` (tsc --noEmit) does it.
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import * as esbuild from 'esbuild'

export const ROOT = fileURLToPath(new URL('..', import.meta.url))

// Each output file is its own module scope, so every chunk gets its own `require`.
const BANNER = "import { createRequire as __bundleCreateRequire } from 'node:module';\nconst require = __bundleCreateRequire(import.meta.url);"

/**
 * Bundles `entryPoints` (name → source file, relative to the repository root) into `outdir`,
 * which is emptied first. Entry points that start with a shebang keep it and are made executable.
 * @param {{ outdir?: string, entryPoints?: Record<string, string>, bundleDependencies?: boolean, precompileSchemas?: boolean, logLevel?: esbuild.LogLevel }} [options]
 * @returns {Promise<esbuild.Metafile>}
 */
export async function build (options = {}) {
  const outdir = resolve(options.outdir ?? join(ROOT, 'dist'))
  const entryPoints = options.entryPoints ?? { cli: 'src/cli.ts' }
  rmSync(outdir, { recursive: true, force: true })
  const schemas = options.precompileSchemas === false ? null : precompileSchemas()
  try {
    return await bundle(outdir, entryPoints, options, schemas)
  } finally {
    if (schemas !== null) rmSync(schemas.dir, { recursive: true, force: true })
  }
}

/**
 * The app's route schemas compiled ahead (scripts/precompile-schemas.ts, run from src/ with tsx),
 * in a temporary directory.
 */
function precompileSchemas () {
  const dir = mkdtempSync(join(tmpdir(), 'secrets-agent-schemas-'))
  const run = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts', 'precompile-schemas.ts'), dir], { cwd: ROOT, encoding: 'utf8' })
  if (run.status !== 0) {
    rmSync(dir, { recursive: true, force: true })
    throw new Error(`scripts/precompile-schemas.ts failed (${run.status ?? run.signal}):\n${run.stdout}${run.stderr}`)
  }
  return { dir, index: join(dir, 'index.mjs'), serialisers: join(dir, 'serialisers.mjs') }
}

/**
 * The bundle takes `replacement` wherever src/ imports `source` (both absolute paths; src/
 * imports `x.ts` as `x.js`).
 * @returns {esbuild.Plugin}
 */
function replaceModule (source, replacement) {
  return {
    name: 'replace-module',
    setup (build) {
      build.onResolve({ filter: /\.js$/ }, (args) => {
        if (!args.path.startsWith('.') || !/[\\/]src[\\/]/.test(args.importer)) return undefined
        return resolve(args.resolveDir, args.path).replace(/\.js$/, '.ts') === source ? { path: replacement } : undefined
      })
    }
  }
}

/**
 * src/server/app.ts passes the global SECRETS_AGENT_SCHEMA_COMPILERS to fastify when it is
 * defined: in the bundle, each source file that names it imports it from the generated module
 * (the import goes last, so that line numbers stay as they are).
 * @returns {esbuild.Plugin}
 */
function defineSchemaCompilers (index) {
  const NAME = 'SECRETS_AGENT_SCHEMA_COMPILERS'
  return {
    name: 'schema-compilers',
    setup (build) {
      build.onLoad({ filter: /[\\/]src[\\/].*\.ts$/ }, (args) => {
        const source = readFileSync(args.path, 'utf8')
        if (args.path.endsWith('.d.ts') || !source.includes(NAME)) return undefined
        return { contents: `${source}\nimport { ${NAME} } from ${JSON.stringify(index)}\n`, loader: 'ts' }
      })
    }
  }
}

/**
 * `importer`'s `require(name)` loads `name` on first use of what it exports instead of when it
 * runs: the module it gets stands in for `name`'s exports and requires `name` (bundled as usual)
 * the first time one is read.
 * - prom-client's CPU collector requires @opentelemetry/api as it loads, for exemplars, which the
 *   agent does not turn on: 51 modules run at every start for nothing (start to first 200, issue 8).
 * @returns {esbuild.Plugin}
 */
export function requireOnFirstUse (name, importer) {
  const filter = new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`)
  return {
    name: 'require-on-first-use',
    setup (build) {
      build.onResolve({ filter }, (args) => args.importer.endsWith(importer) && args.kind === 'require-call'
        ? { path: name, namespace: 'on-first-use', pluginData: { resolveDir: args.resolveDir } }
        : undefined)
      build.onLoad({ filter: /.*/, namespace: 'on-first-use' }, (args) => ({
        contents: `let loaded\nmodule.exports = new Proxy({}, { get: (_, key) => (loaded ??= require(${JSON.stringify(args.path)}))[key] })\n`,
        resolveDir: args.pluginData.resolveDir,
        loader: 'js'
      }))
    }
  }
}

async function bundle (outdir, entryPoints, options, schemas) {
  const result = await esbuild.build({
    absWorkingDir: ROOT,
    entryPoints: Object.entries(entryPoints).map(([out, src]) => ({ in: src, out })),
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: options.bundleDependencies === false ? 'external' : undefined,
    // Loaded only to write the OpenAPI document, and it reads its own package.json by path.
    external: ['@fastify/swagger'],
    banner: { js: BANNER },
    define: { __dirname: 'import.meta.dirname', __filename: 'import.meta.filename' },
    plugins: [
      requireOnFirstUse('@opentelemetry/api', join('node_modules', 'prom-client', 'lib', 'metrics', 'processCpuTotal.js')),
      ...(schemas === null ? [] : [defineSchemaCompilers(schemas.index), replaceModule(join(ROOT, 'src', 'server', 'serialisers.ts'), schemas.serialisers)])
    ],
    // Beside the entry points (src/version.ts, above).
    chunkNames: '[name]-[hash]',
    sourcemap: true,
    // Whitespace only: V8 keeps every loaded module's source text, and this holds 1.8 MB less
    // with 10,000 secrets cached and starts a few ms sooner; names and syntax stay as written.
    // A stack trace's positions resolve through the .map files (node --enable-source-maps).
    minifyWhitespace: true,
    metafile: true,
    logLevel: options.logLevel ?? 'warning'
  })
  for (const name of Object.keys(entryPoints)) {
    const file = join(outdir, `${name}.js`)
    if (readFileSync(file, 'utf8').startsWith('#!')) chmodSync(file, 0o755)
  }
  return result.metafile
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({ options: { outdir: { type: 'string' } } })
  await build({ outdir: values.outdir })
}
