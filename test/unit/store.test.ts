import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { parseStore, secretArn, StoreFormatError } from '../../src/providers/local/store.js'
import { defaultStoreText } from '../../src/providers/local/default-store.js'
import { addParameterVersion, addSecretVersion, openStoreDocument } from '../../src/commands/store-edit.js'
import { JsonNumber, jsonText, parseJsonKeepingNumbers } from '../../src/json-numbers.js'

const REGION = 'eu-central-1'

describe('parseStore', () => {
  it('reads the shorthand forms: a string secret and a string parameter', async () => {
    const model = await parseStore('secrets:\n  a: hello\nparameters:\n  /p: world\n', REGION)
    const secret = model.secrets.get('a')
    assert.equal(secret?.versions.length, 1)
    assert.equal(secret?.versions[0]?.secretString, 'hello')
    assert.deepEqual(secret?.versions[0]?.stages, ['AWSCURRENT'])
    const parameter = model.parameters.get('/p')
    assert.equal(parameter?.type, 'String')
    assert.equal(parameter?.versions[0]?.value, 'world')
    assert.equal(parameter?.versions[0]?.version, 1)
  })

  it('stores json: versions as JSON strings and binary: as bytes', async () => {
    const model = await parseStore('secrets:\n  j:\n    json: { user: u, port: 5 }\n  b:\n    binary: aGVsbG8=\n', REGION)
    assert.equal(model.secrets.get('j')?.versions[0]?.secretString, '{"user":"u","port":5}')
    assert.equal(Buffer.from(model.secrets.get('b')?.versions[0]?.secretBinary ?? []).toString(), 'hello')
  })

  it('gives AWS-shaped ARNs in the configured region with the local account, stable across parses', async () => {
    const text = 'secrets:\n  app/db: x\nparameters:\n  /app/p: y\n  rel: z\n'
    const first = await parseStore(text, REGION)
    const second = await parseStore(text, REGION)
    assert.match(first.secrets.get('app/db')?.arn ?? '', /^arn:aws:secretsmanager:eu-central-1:000000000000:secret:app\/db-[A-Za-z0-9]{6}$/)
    assert.equal(first.secrets.get('app/db')?.arn, second.secrets.get('app/db')?.arn)
    assert.equal(first.secrets.get('app/db')?.versions[0]?.versionId, second.secrets.get('app/db')?.versions[0]?.versionId)
    assert.equal(first.parameters.get('/app/p')?.arn, 'arn:aws:ssm:eu-central-1:000000000000:parameter/app/p')
    assert.equal(first.parameters.get('rel')?.arn, 'arn:aws:ssm:eu-central-1:000000000000:parameter/rel')
    assert.equal(secretArn('app/db', REGION), first.secrets.get('app/db')?.arn)
  })

  it('numbers parameter versions from 1 and keeps their labels', async () => {
    const model = await parseStore('parameters:\n  /p:\n    type: SecureString\n    versions:\n      - value: one\n      - value: two\n        labels: [Dev, prod]\n', REGION)
    const p = model.parameters.get('/p')
    assert.equal(p?.type, 'SecureString')
    assert.deepEqual(p?.versions.map((v) => [v.version, v.value, v.labels]), [[1, 'one', []], [2, 'two', ['Dev', 'prod']]])
  })

  it('reads the same store written as JSON', async () => {
    const model = await parseStore(JSON.stringify({ secrets: { s: 'v' }, parameters: { '/p': { type: 'StringList', value: 'a,b' } } }), REGION, 'store.json')
    assert.equal(model.secrets.get('s')?.versions[0]?.secretString, 'v')
    assert.equal(model.parameters.get('/p')?.type, 'StringList')
  })

  it('parses the example store that dev writes, with AWSCURRENT and AWSPREVIOUS versions', async () => {
    const model = await parseStore(defaultStoreText(), REGION)
    const db = model.secrets.get('dev/example/database')
    assert.deepEqual(db?.versions.map((v) => v.stages), [['AWSCURRENT'], ['AWSPREVIOUS']])
    const current = JSON.parse(db?.versions[0]?.secretString ?? '{}') as Record<string, unknown>
    assert.deepEqual(Object.keys(current).sort(), ['host', 'password', 'port', 'username'])
    assert.equal(model.parameters.get('/dev/example/log-level')?.versions[0]?.value, 'debug')
    assert.equal(model.parameters.get('/dev/example/db-password')?.type, 'SecureString')
  })

  it('serves an unquoted value that YAML would read as a number or a boolean as it is written', async () => {
    const model = await parseStore([
      'secrets:',
      '  app/pin: 0042',
      '  json: 0123',
      '  app/config:',
      '    json: { port: 0x1F, debug: True }',
      'parameters:',
      '  /app/account: 012345678901',
      '  /app/version: 1.10',
      '  /app/big: 12345678901234567890',
      '  /app/hex: 0x1F',
      '  /app/flag: True',
      '  /app/listed:',
      '    versions:',
      '      - value: 1e3',
      '  0123: named-by-digits',
      '  json: 0123',
      '  /app/obj:',
      '    value: 0x10'
    ].join('\n'), REGION)
    const value = (name: string): string | undefined => model.parameters.get(name)?.versions[0]?.value
    assert.deepEqual(
      ['/app/account', '/app/version', '/app/big', '/app/hex', '/app/flag', '/app/listed'].map(value),
      ['012345678901', '1.10', '12345678901234567890', '0x1F', 'True', '1e3'])
    assert.equal(model.secrets.get('app/pin')?.versions[0]?.secretString, '0042')
    assert.equal(model.secrets.get('json')?.versions[0]?.secretString, '0123', 'a secret named json is text too')
    assert.equal(model.secrets.get('app/config')?.versions[0]?.secretString, '{"port":31,"debug":true}', 'a json: value keeps YAML\'s types')
    assert.equal(value('0123'), 'named-by-digits')
    assert.equal(value('json'), '0123', 'a parameter named json is text')
    assert.equal(value('/app/obj'), '0x10')
  })

  it('serves the numbers of a json: value as written, where JSON can write them so', async () => {
    const model = await parseStore('secrets:\n  app/ids:\n    json: { id: 12345678901234567890, ratio: 1.10, list: [1.50, -0.0, 1e400], hex: 0x1F }\n', REGION)
    assert.equal(model.secrets.get('app/ids')?.versions[0]?.secretString, '{"id":12345678901234567890,"ratio":1.10,"list":[1.50,-0.0,1e400],"hex":31}')
  })

  it('reads a JSON store\'s numbers as written too, and a key given twice as JSON.parse does', async () => {
    const model = await parseStore(JSON.stringify({ parameters: { '/app/placeholder': 'x' }, secrets: { 'app/ids': { json: { id: 'X' } } } })
      .replace('"x"', '1.10').replace('"X"', '12345678901234567890'), REGION, 'store.json')
    const twice = await parseStore('{"parameters":{"/a":"first","/a":"second"}}', REGION, 'store.json')

    assert.equal(model.parameters.get('/app/placeholder')?.versions[0]?.value, '1.10')
    assert.equal(model.secrets.get('app/ids')?.versions[0]?.secretString, '{"id":12345678901234567890}')
    assert.equal(twice.parameters.get('/a')?.versions[0]?.value, 'second')
  })

  it('keeps the numbers of json: values and JSON stores as written when the store CLI edits another entry', async () => {
    const yaml = openStoreDocument('secrets:\n  app/ids:\n    json: { id: 12345678901234567890, ratio: 1.10 }\n', 'store.yaml')
    const json = openStoreDocument('{"parameters":{"/app/version":1.10},"secrets":{"app/ids":{"json":{"id":12345678901234567890,"note":"a \\"quoted\\" 1.10"}}}}', 'store.json')
    for (const doc of [yaml, json]) doc.set('parameter', '/app/other', 'v')

    const fromYaml = await parseStore(yaml.toString(), REGION)
    const fromJson = await parseStore(json.toString(), REGION, 'store.json')

    assert.equal(fromYaml.secrets.get('app/ids')?.versions[0]?.secretString, '{"id":12345678901234567890,"ratio":1.10}')
    assert.equal(fromJson.secrets.get('app/ids')?.versions[0]?.secretString, '{"id":12345678901234567890,"note":"a \\"quoted\\" 1.10"}')
    assert.equal(fromJson.parameters.get('/app/version')?.versions[0]?.value, '1.10')
    assert.match(json.toString(), /^ {4}"\/app\/version": 1\.10,$/m, 'written as JSON.stringify indents')
  })

  it('adds a version to a secret or parameter written as one number, keeping that number as the old version', async () => {
    const now = new Date('2026-11-30T00:00:00Z')
    for (const [text, file] of [['{"secrets":{"app/pin":1.10},"parameters":{"/app/version":1.10}}', 'store.json'], ['secrets:\n  app/pin: 8080\nparameters:\n  /app/version: 1.10\n', 'store.yaml']] as const) {
      const doc = openStoreDocument(text, file)
      const before = await parseStore(text, REGION, file)
      doc.set('secret', 'app/pin', addSecretVersion(doc.get('secret', 'app/pin'), before.secrets.get('app/pin'), { string: 'new-pin' }, 'AWSCURRENT', '4d1a2b3c-0000-4000-8000-000000000001', now))
      doc.set('parameter', '/app/version', addParameterVersion(doc.get('parameter', '/app/version'), '2.0', undefined, undefined, now))
      const after = await parseStore(doc.toString(), REGION, file)

      const pin = after.secrets.get('app/pin')?.versions ?? []
      assert.deepEqual(pin.map((v) => [v.stages, v.secretString]), [[['AWSPREVIOUS'], file === 'store.json' ? '1.10' : '8080'], [['AWSCURRENT'], 'new-pin']], file)
      assert.deepEqual(after.parameters.get('/app/version')?.versions.map((v) => v.value), ['1.10', '2.0'], file)
    }
  })

  it('keeps the numbers of a YAML json: value as written in the versions an edit of that secret keeps', async () => {
    const doc = openStoreDocument('secrets:\n  s:\n    json: { v: 1.10, e: 1e3, z: -0, i: 1e400, w: 12345678901234567890 }\n', 'store.yaml')
    const before = await parseStore(doc.toString(), REGION)
    doc.set('secret', 's', addSecretVersion(doc.get('secret', 's'), before.secrets.get('s'), { json: { n: new JsonNumber('2.50') } }, 'AWSCURRENT', '4d1a2b3c-0000-4000-8000-000000000002', new Date(0)))
    const after = await parseStore(doc.toString(), REGION)

    assert.deepEqual(after.secrets.get('s')?.versions.map((v) => v.secretString), ['{"v":1.10,"e":1e3,"z":-0,"i":1e400,"w":12345678901234567890}', '{"n":2.50}'])
  })

  it('keeps a JSON store\'s entry named __proto__ through reading and edits', async () => {
    const doc = openStoreDocument('{"secrets":{"__proto__":"proto-value","app/n":{"json":{"v":1.10}}}}', 'store.json')
    doc.set('secret', '__proto__', 'second-proto')
    doc.set('parameter', '__proto__', 'param-proto')
    const model = await parseStore(doc.toString(), REGION, 'store.json')

    assert.equal(model.secrets.get('__proto__')?.versions[0]?.secretString, 'second-proto')
    assert.equal(model.parameters.get('__proto__')?.versions.at(-1)?.value, 'param-proto')
    assert.equal(model.secrets.get('app/n')?.versions[0]?.secretString, '{"v":1.10}')
  })

  it('adds a secret named __proto__ to a store that has none, as the CLI does', async () => {
    for (const file of ['store.yaml', 'store.json']) {
      const doc = openStoreDocument(file === 'store.json' ? '{"secrets":{}}' : 'secrets: {}\n', file)
      doc.set('secret', '__proto__', addSecretVersion(doc.get('secret', '__proto__'), undefined, { string: 'fresh-proto' }, 'AWSCURRENT', '4d1a2b3c-0000-4000-8000-000000000003', new Date(0)))
      assert.equal((await parseStore(doc.toString(), REGION, file)).secrets.get('__proto__')?.versions[0]?.secretString, 'fresh-proto', file)
    }
  })

  it('writes JSON as JSON.stringify does, numbers as written aside', () => {
    const data = { a: [], b: {}, c: [1, 'two', { d: null, e: true }], f: 'x\n"y"', g: -0.5 }
    assert.equal(jsonText(data, '  '), JSON.stringify(data, null, 2))
    assert.equal(jsonText(data), JSON.stringify(data))
    assert.deepEqual(parseJsonKeepingNumbers('{"s":"1.10 \\" 2.50","n":[2.50,0.5,-0,1e3]}'), { s: '1.10 " 2.50', n: [new JsonNumber('2.50'), 0.5, new JsonNumber('-0'), new JsonNumber('1e3')] })
  })

  it('keeps values written as numbers as they were when the store CLI edits another entry', async () => {
    const text = 'parameters:\n  /app/account: 012345678901 # the account\n  /app/big: 12345678901234567890\n  0123: x\n  /app/level: 3\n'
    const doc = openStoreDocument(text, 'store.yaml')
    doc.set('parameter', '/app/new', 'v')
    const next = doc.toString()
    const model = await parseStore(next, REGION)
    const value = (name: string): string | undefined => model.parameters.get(name)?.versions[0]?.value
    assert.deepEqual(['/app/account', '/app/big', '0123', '/app/level', '/app/new'].map(value), ['012345678901', '12345678901234567890', 'x', '3', 'v'])
    assert.match(next, /^ {2}\/app\/level: 3$/m, 'a number YAML writes back the same is left as written')
    assert.match(next, /# the account/)
  })

  it('reads a secret written as a number or a boolean as its text, as a parameter', async () => {
    const model = await parseStore('secrets:\n  app/port: 8080\n  app/on: true\n', REGION)
    assert.equal(model.secrets.get('app/port')?.versions[0]?.secretString, '8080')
    assert.equal(model.secrets.get('app/on')?.versions[0]?.secretString, 'true')
  })

  it('treats an empty file as an empty store', async () => {
    const model = await parseStore('', REGION)
    assert.equal(model.secrets.size + model.parameters.size, 0)
  })

  describe('refuses, naming where and why,', () => {
    const cases: Array<[string, string, RegExp]> = [
      ['text that is not YAML', 'secrets: [unclosed', /cannot parse/],
      ['an unknown top-level key', 'secret:\n  a: b\n', /unknown top-level key "secret"/],
      ['a secret with no AWSCURRENT version', 'secrets:\n  a:\n    versions:\n      - stages: [AWSPREVIOUS]\n        string: x\n', /secrets\.a: no version has the AWSCURRENT stage/],
      ['a stage on two versions', 'secrets:\n  a:\n    versions:\n      - stages: [AWSCURRENT]\n        string: x\n      - stages: [AWSCURRENT]\n        string: y\n', /stage AWSCURRENT is on versions 0 and 1/],
      ['a version with two values', 'secrets:\n  a:\n    string: x\n    binary: eA==\n', /exactly one of string, json, binary/],
      ['binary that is not base64', 'secrets:\n  a:\n    binary: "not base64!"\n', /binary: not base64/],
      ['an unknown parameter type', 'parameters:\n  /p:\n    type: Secret\n    value: x\n', /parameters\.\/p\.type: expected one of String, StringList, SecureString/],
      ['a label on two versions', 'parameters:\n  /p:\n    versions:\n      - value: a\n        labels: [x]\n      - value: b\n        labels: [x]\n', /label x is on two versions/],
      ['a label starting with a digit', 'parameters:\n  /p:\n    versions:\n      - value: a\n        labels: ["1x"]\n', /is not a label/],
      ['a parameter name under /aws/', 'parameters:\n  /aws/x: y\n', /does not start with aws/],
      ['a parameter name with a colon', 'parameters:\n  "/a:b": y\n', /parameter name/],
      ['an unknown key in a version', 'secrets:\n  a:\n    versions:\n      - stages: [AWSCURRENT]\n        strin: x\n', /unknown key "strin"/]
    ]
    for (const [what, text, message] of cases) {
      it(what, async () => {
        await assert.rejects(async () => parseStore(text, REGION, 'store.yaml'), (error: unknown) => {
          assert.ok(error instanceof StoreFormatError)
          assert.match(error.message, message)
          return true
        })
      })
    }
  })

  it('never puts a value from the file in its error messages', async () => {
    const secretValue = 'hunter2-super-secret'
    const texts = [
      `secrets:\n  a:\n    string: ${secretValue}\n    binary: ${secretValue}\n`,
      `secrets:\n  a: ${secretValue}\n   bad: [indent\n`,
      `{"secrets": {"a": "${secretValue}"`
    ]
    for (const [i, text] of texts.entries()) {
      await assert.rejects(async () => parseStore(text, REGION, i === 2 ? 'store.json' : 'store.yaml'), (error: unknown) => {
        assert.ok(error instanceof StoreFormatError)
        assert.ok(!error.message.includes(secretValue), error.message)
        return true
      })
    }
  })
})
