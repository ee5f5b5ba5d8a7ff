/**
 * Part of `npm run build`: compiles every route schema of the HTTP app ahead of time, so that the
 * agent does not spend its start-up compiling them (a quarter of its start-up CPU, issue 8).
 *
 *   node --import tsx scripts/precompile-schemas.ts OUTDIR
 *
 * It builds the app as src/server/app.ts does, with fastify's own compilers (@fastify/ajv-compiler
 * for validation, @fastify/fast-json-stringify-compiler for responses, the versions fastify
 * itself uses) in their standalone mode, which hands over each compiled function's source. It
 * writes one module per distinct schema and OUTDIR/index.mjs, which exports
 * `SECRETS_AGENT_SCHEMA_COMPILERS` (see src/server/schema-compilers.d.ts): compilers that look a
 * schema up by its content and compile it at run time only when it is not there (a route added
 * under a configuration this run did not build).
 *
 * It also compiles the answers the agent serialises itself (src/server/schemas.ts's
 * `answerSchemas`), with fast-json-stringify in standalone mode, into OUTDIR/serialisers.mjs: the
 * precompiled form of src/server/serialisers.ts, with the same `serialiser(schema)`, which throws
 * on a schema it does not have. scripts/build.mjs bundles index.mjs into the agent and
 * serialisers.mjs in place of src/server/serialisers.ts.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { FastifyServerOptions } from 'fastify'
import { pino } from 'pino'
import { SecretCache } from '../src/cache/secret-cache.js'
import type { Provider } from '../src/providers/types.js'
import { buildApp } from '../src/server/app.js'
import { answerSchemas } from '../src/server/schemas.js'
import { Token } from '../src/token.js'

type CompilersFactory = NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>
interface RouteSchema { schema: unknown }
type Standalone = (options: { readMode: false, storeFunction: (route: RouteSchema, code: string) => void }) => unknown

/** The lookup key of a compiled schema: the schema itself, not the route's URL (configuration can change the URL, e.g. `path_prefix`). Copied into index.mjs as it is. */
function schemaKey (schema: unknown): string {
  return JSON.stringify(schema)
}

// The compilers fastify uses: resolved from fastify, not from the top of node_modules, which
// may hold other versions (fast-json-stringify is there in the version src/server/serialisers.ts uses).
const fromFastify = createRequire(createRequire(import.meta.url).resolve('fastify'))
const AJV_COMPILER = fromFastify.resolve('@fastify/ajv-compiler')
const FJS_COMPILER = fromFastify.resolve('@fastify/fast-json-stringify-compiler')
/** The built agent's serialiser() refuses a schema not in answerSchemas: no schema compiles at its start (test/e2e/bundle.test.ts). */
export const UNKNOWN_ANSWER = 'serialiser(): the built agent has only the schemas of answerSchemas (src/server/schemas.ts) compiled'
// The fast-json-stringify src/server/serialisers.ts imports, as resolved from there.
const FAST_JSON_STRINGIFY = createRequire(resolve(import.meta.dirname, '../src/server/serialisers.ts')).resolve('fast-json-stringify')

/** The generated code's `require('x')` made absolute, resolved as from the compiler that wrote it. */
function absoluteRequires (code: string, compiler: string): string {
  const from = createRequire(compiler)
  return code.replace(/require\((["'])([^"']+)\1\)/g, (_, _q: string, id: string) => `require(${JSON.stringify(from.resolve(id))})`)
}

/** Builds the app as the agent does, with `factory` as its schema compilers; nothing here answers a request. */
async function buildRoutes (factory: CompilersFactory): Promise<void> {
  // app.ts's Fastify options read this global (in the bundle it is the generated index.mjs).
  globalThis.SECRETS_AGENT_SCHEMA_COMPILERS = factory
  const app = buildApp({
    provider: {} as Provider,
    cache: new SecretCache({ maxEntries: 1, maxBytes: 1, maxStaleMs: 0, staleIfError: false }),
    token: new Token('precompile-schemas'),
    logger: pino({ level: 'silent' }),
    tokenHeaders: ['X-Aws-Parameters-Secrets-Token'],
    secretsTtlMs: 1000,
    parametersTtlMs: 1000
  })
  await app.ready()
  await app.close()
  globalThis.SECRETS_AGENT_SCHEMA_COMPILERS = undefined
}

async function main (): Promise<void> {
  if (process.argv[2] === undefined) throw new Error('usage: precompile-schemas.ts OUTDIR')
  const out = resolve(process.argv[2])
  rmSync(out, { recursive: true, force: true })
  mkdirSync(out, { recursive: true })

  // The answers' keys, and the copies to compile, before anything compiles: the routes share
  // their schemas.
  const answers = Object.values(answerSchemas).map((schema) => ({ key: schemaKey(schema), schema: structuredClone(schema) }))

  // First the keys, compiling nothing: a compiler may normalise a schema in place (fast-json-
  // stringify 6 sorts `type` lists), and schemas shared between routes would then differ from
  // what the built agent, which compiles nothing, looks up. Each compiler's calls come in the
  // same order twice.
  const keys = { validator: [] as string[], serializer: [] as string[] }
  await buildRoutes({
    buildValidator: () => (route: RouteSchema) => { keys.validator.push(schemaKey(route.schema)); return () => true },
    buildSerializer: () => (route: RouteSchema) => { keys.serializer.push(schemaKey(route.schema)); return () => '' }
  } as unknown as CompilersFactory)

  // Then the code, with fastify's compilers in standalone mode.
  const code = { validator: [] as string[], serializer: [] as string[] }
  const { StandaloneValidator } = fromFastify('@fastify/ajv-compiler') as { StandaloneValidator: Standalone }
  const { StandaloneSerializer } = fromFastify('@fastify/fast-json-stringify-compiler') as { StandaloneSerializer: Standalone }
  await buildRoutes({
    buildValidator: StandaloneValidator({ readMode: false, storeFunction: (_, source) => { code.validator.push(absoluteRequires(source, AJV_COMPILER)) } }),
    buildSerializer: StandaloneSerializer({ readMode: false, storeFunction: (_, source) => { code.serializer.push(absoluteRequires(source, FJS_COMPILER)) } })
  } as unknown as CompilersFactory)

  const tables = { validator: new Map<string, string>(), serializer: new Map<string, string>() }
  for (const kind of ['validator', 'serializer'] as const) {
    if (keys[kind].length === 0 || keys[kind].length !== code[kind].length) throw new Error(`${kind}s: ${keys[kind].length} schemas, ${code[kind].length} compiled: does src/server/app.ts still pass SECRETS_AGENT_SCHEMA_COMPILERS to fastify?`)
    keys[kind].forEach((key, i) => {
      if (tables[kind].has(key)) return
      const file = `${kind}-${tables[kind].size}.cjs`
      writeFileSync(join(out, file), (code[kind][i] ?? '') + '\n')
      tables[kind].set(key, file)
    })
  }
  const validators = [...tables.validator].map(([key, file]) => ({ key, file }))
  const serializers = [...tables.serializer].map(([key, file]) => ({ key, file }))

  const table = (list: Array<{ key: string }>, prefix: string): string => list.map((c, i) => `  [${JSON.stringify(c.key)}, ${prefix}${i}]`).join(',\n')
  writeFileSync(join(out, 'index.mjs'), [
    '// Generated by scripts/precompile-schemas.ts: fastify\'s compiled route schemas.',
    ...validators.map((c, i) => `import v${i} from './${c.file}'`),
    ...serializers.map((c, i) => `import s${i} from './${c.file}'`),
    `const validators = new Map([\n${table(validators, 'v')}\n])`,
    `const serializers = new Map([\n${table(serializers, 's')}\n])`,
    schemaKey.toString(),
    '// A schema not compiled here is compiled now, by the compiler fastify would use (loaded only then).',
    'export const SECRETS_AGENT_SCHEMA_COMPILERS = {',
    '  buildValidator (externalSchemas, options) {',
    '    let fallback',
    `    return (route) => validators.get(schemaKey(route.schema)) ?? (fallback ??= require(${JSON.stringify(AJV_COMPILER)})()(externalSchemas, options))(route)`,
    '  },',
    '  buildSerializer (externalSchemas, options) {',
    '    let fallback',
    `    return (route) => serializers.get(schemaKey(route.schema)) ?? (fallback ??= require(${JSON.stringify(FJS_COMPILER)})()(externalSchemas, options))(route)`,
    '  }',
    '}',
    ''
  ].join('\n'))

  // The answers, compiled as src/server/serialisers.ts compiles them: a copy of each schema.
  const fastJson = createRequire(import.meta.url)(FAST_JSON_STRINGIFY) as (schema: unknown, options: { mode: 'standalone' }) => string
  answers.forEach(({ schema }, i) => {
    writeFileSync(join(out, `answer-${i}.cjs`), absoluteRequires(fastJson(schema, { mode: 'standalone' }), FAST_JSON_STRINGIFY) + '\n')
  })
  writeFileSync(join(out, 'serialisers.mjs'), [
    '// Generated by scripts/precompile-schemas.ts: src/server/serialisers.ts, its schemas compiled ahead.',
    ...answers.map((_, i) => `import a${i} from './answer-${i}.cjs'`),
    `const compiled = new Map([\n${table(answers, 'a')}\n])`,
    schemaKey.toString(),
    'export function serialiser (schema) {',
    '  const compiledAhead = compiled.get(schemaKey(schema))',
    `  if (compiledAhead === undefined) throw new Error(${JSON.stringify(UNKNOWN_ANSWER)})`,
    '  return compiledAhead',
    '}',
    ''
  ].join('\n'))
  console.log(`precompiled ${validators.length} validators, ${serializers.length} serializers and ${answers.length} answer serialisers`)
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main()
