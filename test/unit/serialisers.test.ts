import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { answerSchemas } from '../../src/server/schemas.js'
import { serialiser, type Serialiser } from '../../src/server/serialisers.js'
import { UNKNOWN_ANSWER } from '../../scripts/precompile-schemas.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

const secret = { ARN: 'arn:aws:secretsmanager:us-east-1:000000000000:secret:app/db-AbCdEf', CreatedDate: '2024-01-01T00:00:00.000Z', Name: 'app/db', VersionId: '11111111-2222-4333-a444-555555555555', VersionStages: ['AWSCURRENT', 'AWSPENDING'] }
const parameter = { ARN: 'arn:aws:ssm:us-east-1:000000000000:parameter/app/level', DataType: 'text', LastModifiedDate: '2024-01-01T00:00:00.000Z', Name: '/app/level', Selector: null, SourceResult: null, Type: 'SecureString', Value: 'line\nbreak "quoted" \\ \u0000 \u2028 é😀', Version: 3 }

/** Documents of each answer, with the values that take a serialiser's other branches: null, escapes, empty lists. */
const documents: Record<keyof typeof answerSchemas, unknown[]> = {
  secret: [
    { ...secret, SecretString: '{"password":"p\\"\u0001"}', SecretBinary: null, ResultMetadata: {} },
    { ...secret, SecretString: null, SecretBinary: 'aGVsbG8=', VersionStages: [], ResultMetadata: {} }
  ],
  parameter: [
    { Parameter: parameter, ResultMetadata: {} },
    { Parameter: { ...parameter, DataType: null, Value: null, Version: null, Selector: ':3', SourceResult: 'x' }, ResultMetadata: {} }
  ],
  parameters: [{ Parameters: [] }, { Parameters: [parameter, { ...parameter, Name: '/app/other' }] }],
  batch: [
    { SecretValues: [], Errors: [] },
    { SecretValues: [{ ...secret, SecretString: 'v', SecretBinary: null }], Errors: [{ SecretId: 'no/such', ErrorCode: 'ResourceNotFoundException', Message: "Secrets Manager can't find the specified secret." }] }
  ],
  error: [{ __type: 'ValidationException', message: 'Unknown query parameter "\u001f<>".' }]
}

describe('answer serialisers', () => {
  it('compile a copy: a schema the routes share is left as written', () => {
    // fast-json-stringify sorts a `type` list of the schema it compiles; the built agent looks
    // route schemas up by their text (scripts/precompile-schemas.ts).
    const schema = { type: 'object', properties: { a: { type: ['string', 'null'] } }, required: ['a'] }
    const written = structuredClone(schema)
    assert.equal(serialiser(schema)({ a: null }), '{"a":null}')
    assert.deepEqual(schema, written)
  })

  it('are compiled by schemas.ts alone, which the built agent loads at start: it has no others', () => {
    const importers = readdirSync(join(ROOT, 'src'), { recursive: true, encoding: 'utf8' })
      .filter((file) => file.endsWith('.ts') && /from '[./]*(server\/)?serialisers\.js'/.test(readFileSync(join(ROOT, 'src', file), 'utf8')))
    assert.deepEqual(importers, [join('server', 'schemas.ts')])
    const calls = readFileSync(join(ROOT, 'src', 'server', 'schemas.ts'), 'utf8').match(/\bserialiser\([^)]*\)/g)
    assert.deepEqual(calls, ['serialiser(schema)'], 'schemas.ts compiles each of answerSchemas, in one place')
  })

  describe('precompiled for the built agent (scripts/precompile-schemas.ts)', () => {
    let dir: string
    let precompiled: (schema: object) => Serialiser
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'sa-precompiled-'))
      const run = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts', 'precompile-schemas.ts'), dir], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 })
      assert.equal(run.status, 0, run.stdout + run.stderr)
      precompiled = ((await import(pathToFileURL(join(dir, 'serialisers.mjs')).href)) as { serialiser: (schema: object) => Serialiser }).serialiser
    })
    after(() => { rmSync(dir, { recursive: true, force: true }) })

    it('write the bytes the source writes, for every answer', () => {
      for (const [name, schema] of Object.entries(answerSchemas) as Array<[keyof typeof answerSchemas, object]>) {
        const fromSource = serialiser(schema)
        const built = precompiled(schema)
        for (const doc of documents[name]) assert.equal(built(doc), fromSource(doc), `${name}: ${JSON.stringify(doc)}`)
      }
    })

    it('refuse a schema they were not built with: the built agent compiles none as it starts', () => {
      assert.throws(() => precompiled({ type: 'object', properties: { n: { type: 'integer' } } }), { message: UNKNOWN_ANSWER })
      // An answer schema changed after the build is another schema.
      assert.throws(() => precompiled({ ...answerSchemas.error, required: ['__type'] }), { message: UNKNOWN_ANSWER })
    })
  })
})
