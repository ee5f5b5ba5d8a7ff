import { createHash } from 'node:crypto'
import type { ParameterType } from '../types.js'
import { JsonNumber, jsonText, parseJsonKeepingNumbers, setOwn } from '../../json-numbers.js'

/**
 * The local store: a developer's YAML or JSON file of secrets and parameters, kept in plaintext.
 * This module turns the file's text into an in-memory model and nothing else; it reads no file
 * (the YAML parser, store-yaml.ts, is imported with the first YAML store).
 *
 * ```yaml
 * secrets:
 *   dev/example/api-key: "plain string, one AWSCURRENT version"
 *   dev/example/database:
 *     versions:
 *       - stages: [AWSCURRENT]
 *         json: { username: app, password: s3cret }   # stored as a JSON SecretString
 *       - stages: [AWSPREVIOUS]
 *         string: '{"username":"app","password":"old"}'
 *   dev/example/certificate:
 *     binary: aGVsbG8=                                # base64 SecretBinary
 * parameters:
 *   /dev/example/log-level: debug                     # a String parameter, version 1
 *   /dev/example/hosts: { type: StringList, value: "a,b" }
 *   /dev/example/db-password:
 *     type: SecureString
 *     versions:                                       # version numbers count from 1
 *       - value: old
 *       - value: new
 *         labels: [Dev]
 * ```
 */

export interface StoredSecretVersion {
  versionId: string
  stages: string[]
  secretString?: string
  secretBinary?: Uint8Array
  createdDate: Date
}

export interface StoredSecret {
  name: string
  arn: string
  versions: StoredSecretVersion[]
}

export interface StoredParameterVersion {
  version: number
  value: string
  labels: string[]
  lastModifiedDate: Date
}

export interface StoredParameter {
  name: string
  arn: string
  type: ParameterType
  dataType: string
  versions: StoredParameterVersion[]
}

export interface StoreModel {
  secrets: Map<string, StoredSecret>
  parameters: Map<string, StoredParameter>
}

export const LOCAL_ACCOUNT = '000000000000'

/** A store file that cannot be used; the message says where and why. */
export class StoreFormatError extends Error {
  override readonly name = 'StoreFormatError'
}

const PARAMETER_TYPES: readonly ParameterType[] = ['String', 'StringList', 'SecureString']
const PARAMETER_NAME = /^[A-Za-z0-9_.\-/]{1,2048}$/
const SECRET_NAME = /^[A-Za-z0-9/_+=.@-]{1,512}$/
const LABEL = /^[A-Za-z0-9_.-]{1,100}$/
/** A fixed date for versions that do not give one, so answers do not change between reloads. */
const EPOCH = new Date('2024-01-01T00:00:00.000Z')

/**
 * A JSON store's data, read as a YAML store's is: a number JSON.parse would not give back as
 * written is its text, except inside a secret's `json:` value, where it stays a number (kept as
 * written by jsonText).
 */
function parseJson (text: string): unknown {
  const root = parseJsonKeepingNumbers(text)
  // `json` opens a json: value only below a secret: not as a secret's or a parameter's name.
  const asText = (value: unknown, inJson: boolean, inSecret: boolean): unknown => {
    if (value instanceof JsonNumber) return inJson ? value : value.text
    if (Array.isArray(value)) return value.map((item) => asText(item, inJson, inSecret))
    if (value !== null && typeof value === 'object') {
      const record = value as Record<string, unknown>
      for (const key of Object.keys(record)) setOwn(record, key, asText(record[key], inJson || (inSecret && key === 'json'), inSecret))
    }
    return value
  }
  if (root === null || typeof root !== 'object' || Array.isArray(root)) return root
  const record = root as Record<string, unknown>
  for (const key of Object.keys(record)) {
    const section = record[key]
    setOwn(record, key, key === 'secrets' && section !== null && typeof section === 'object' && !Array.isArray(section)
      ? Object.fromEntries(Object.entries(section).map(([name, secret]) => [name, asText(secret, false, true)]))
      : asText(section, false, false))
  }
  return record
}

/**
 * The model of a store file's text: JSON when `fileName` ends in .json, YAML otherwise. The YAML
 * parser is loaded with the first YAML store: a JSON store's agent starts without it.
 */
export async function parseStore (text: string, region: string, fileName = 'store'): Promise<StoreModel> {
  let doc: unknown
  const json = fileName.endsWith('.json')
  // Outside the try: a parser that cannot be loaded is not the file's fault.
  const parse = json ? parseJson : (await import('./store-yaml.js')).parseYaml
  try {
    doc = parse(text)
  } catch (error) {
    throw new StoreFormatError(`${fileName}: cannot parse: ${describeParseError(error, json)}`)
  }
  if (doc === null || doc === undefined) doc = {}
  const root = asRecord(doc, fileName)
  for (const key of Object.keys(root)) {
    if (key !== 'secrets' && key !== 'parameters') throw new StoreFormatError(`${fileName}: unknown top-level key ${JSON.stringify(key)} (expected secrets, parameters)`)
  }
  const model: StoreModel = { secrets: new Map(), parameters: new Map() }
  for (const [name, value] of Object.entries(asRecord(root.secrets ?? {}, `${fileName}: secrets`))) {
    model.secrets.set(name, parseSecret(name, value, region, `${fileName}: secrets.${name}`))
  }
  for (const [name, value] of Object.entries(asRecord(root.parameters ?? {}, `${fileName}: parameters`))) {
    model.parameters.set(name, parseParameter(name, value, region, `${fileName}: parameters.${name}`))
  }
  return model
}

function parseSecret (name: string, raw: unknown, region: string, where: string): StoredSecret {
  if (!SECRET_NAME.test(name)) throw new StoreFormatError(`${where}: a secret name is 1 to 512 of A-Z a-z 0-9 / _ + = . @ -`)
  const arn = secretArn(name, region)
  if (typeof raw === 'string' || typeof raw === 'number' || typeof raw === 'boolean') {
    return { name, arn, versions: [{ versionId: stableId(name, 0), stages: ['AWSCURRENT'], secretString: String(raw), createdDate: EPOCH }] }
  }
  const record = asRecord(raw, where)
  const versionList = record.versions === undefined ? [{ stages: ['AWSCURRENT'], ...record }] : asArray(record.versions, `${where}.versions`)
  if (record.versions !== undefined) onlyKeys(record, ['versions', 'description'], where)
  if (versionList.length === 0) throw new StoreFormatError(`${where}.versions: needs at least one version`)

  const versions = versionList.map((v, i) => parseSecretVersion(name, v, i, `${where}.versions[${i}]`))
  const seenStages = new Map<string, number>()
  const seenIds = new Set<string>()
  versions.forEach((v, i) => {
    if (seenIds.has(v.versionId)) throw new StoreFormatError(`${where}: version id ${v.versionId} appears twice`)
    seenIds.add(v.versionId)
    for (const stage of v.stages) {
      const other = seenStages.get(stage)
      if (other !== undefined) throw new StoreFormatError(`${where}: stage ${stage} is on versions ${other} and ${i}; a stage marks one version`)
      seenStages.set(stage, i)
    }
  })
  if (!seenStages.has('AWSCURRENT')) throw new StoreFormatError(`${where}: no version has the AWSCURRENT stage`)
  return { name, arn, versions }
}

function parseSecretVersion (name: string, raw: unknown, index: number, where: string): StoredSecretVersion {
  const v = asRecord(raw, where)
  onlyKeys(v, ['id', 'stages', 'string', 'json', 'binary', 'value', 'created', 'description'], where)
  const given = ['string', 'json', 'binary', 'value'].filter((k) => v[k] !== undefined)
  if (given.length !== 1) throw new StoreFormatError(`${where}: give exactly one of string, json, binary`)
  const stages = v.stages === undefined ? [] : asArray(v.stages, `${where}.stages`).map((s) => {
    if (typeof s !== 'string' || !LABEL.test(s)) throw new StoreFormatError(`${where}.stages: ${JSON.stringify(s)} is not a stage name`)
    return s
  })
  const version: StoredSecretVersion = {
    versionId: v.id === undefined ? stableId(name, index) : asString(v.id, `${where}.id`),
    stages,
    createdDate: v.created === undefined ? EPOCH : asDate(v.created, `${where}.created`)
  }
  if (v.binary !== undefined) {
    const b64 = asString(v.binary, `${where}.binary`)
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64.replace(/\s/g, ''))) throw new StoreFormatError(`${where}.binary: not base64`)
    version.secretBinary = Buffer.from(b64, 'base64')
  } else if (v.json !== undefined) {
    version.secretString = jsonText(v.json)
  } else {
    version.secretString = asString(v.string ?? v.value, `${where}.string`)
  }
  return version
}

function parseParameter (name: string, raw: unknown, region: string, where: string): StoredParameter {
  if (!PARAMETER_NAME.test(name) || name.toLowerCase().startsWith('/aws/') || name.toLowerCase().startsWith('aws')) {
    throw new StoreFormatError(`${where}: a parameter name is 1 to 2048 of A-Z a-z 0-9 _ . - / and does not start with aws`)
  }
  const arn = parameterArn(name, region)
  if (typeof raw === 'string' || typeof raw === 'number' || typeof raw === 'boolean') {
    return { name, arn, type: 'String', dataType: 'text', versions: [{ version: 1, value: String(raw), labels: [], lastModifiedDate: EPOCH }] }
  }
  const record = asRecord(raw, where)
  onlyKeys(record, ['type', 'value', 'labels', 'modified', 'versions', 'description', 'dataType'], where)
  const type = record.type ?? 'String'
  if (typeof type !== 'string' || !PARAMETER_TYPES.includes(type as ParameterType)) {
    throw new StoreFormatError(`${where}.type: expected one of ${PARAMETER_TYPES.join(', ')}`)
  }
  const list = record.versions === undefined
    ? [{ value: record.value, labels: record.labels, modified: record.modified }]
    : asArray(record.versions, `${where}.versions`)
  if (list.length === 0) throw new StoreFormatError(`${where}.versions: needs at least one version`)
  const seenLabels = new Set<string>()
  const versions = list.map((item, i): StoredParameterVersion => {
    const at = `${where}.versions[${i}]`
    const v = asRecord(item, at)
    onlyKeys(v, ['value', 'labels', 'modified'], at)
    if (v.value === undefined) throw new StoreFormatError(`${at}.value: missing`)
    const labels = v.labels === undefined ? [] : asArray(v.labels, `${at}.labels`).map((l) => {
      if (typeof l !== 'string' || !LABEL.test(l) || /^\d/.test(l) || /^aws|^ssm/i.test(l)) {
        throw new StoreFormatError(`${at}.labels: ${JSON.stringify(l)} is not a label (letters, digits, . _ -; not starting with a digit, aws or ssm)`)
      }
      if (seenLabels.has(l)) throw new StoreFormatError(`${where}: label ${l} is on two versions`)
      seenLabels.add(l)
      return l
    })
    const value = typeof v.value === 'number' || typeof v.value === 'boolean' ? String(v.value) : asString(v.value, `${at}.value`)
    return { version: i + 1, value, labels, lastModifiedDate: v.modified === undefined ? EPOCH : asDate(v.modified, `${at}.modified`) }
  })
  const dataType = record.dataType === undefined ? 'text' : asString(record.dataType, `${where}.dataType`)
  return { name, arn, type: type as ParameterType, dataType, versions }
}

/**
 * Where and what kind of parse error, never the parser's own text: YAML and JSON parsers quote
 * the surrounding source (or an alias name) in their messages, and that source holds secrets.
 */
function describeParseError (error: unknown, json: boolean): string {
  if (json) return 'not valid JSON'
  const e = error as { code?: unknown, linePos?: Array<{ line: number, col: number }> }
  const at = e.linePos?.[0]
  const code = typeof e.code === 'string' ? ` (${e.code})` : ''
  return at === undefined ? `not valid YAML${code}` : `not valid YAML${code} at line ${at.line}, column ${at.col}`
}

export function secretArn (name: string, region: string): string {
  // Secrets Manager appends six random characters; ours are derived from the name, so ARNs
  // stay the same across restarts and reloads.
  const suffix = createHash('sha256').update(name).digest('base64url').replace(/[-_]/g, 'x').slice(0, 6)
  return `arn:aws:secretsmanager:${region}:${LOCAL_ACCOUNT}:secret:${name}-${suffix}`
}

export function parameterArn (name: string, region: string): string {
  return `arn:aws:ssm:${region}:${LOCAL_ACCOUNT}:parameter${name.startsWith('/') ? '' : '/'}${name}`
}

/** A UUID-shaped version id derived from the secret name and position: stable across reloads. */
function stableId (name: string, index: number): string {
  const h = createHash('sha256').update(`${name}\0${index}`).digest('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`
}

function asRecord (value: unknown, where: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new StoreFormatError(`${where}: expected a mapping`)
  return value as Record<string, unknown>
}

function asArray (value: unknown, where: string): unknown[] {
  if (!Array.isArray(value)) throw new StoreFormatError(`${where}: expected a list`)
  return value
}

function asString (value: unknown, where: string): string {
  if (typeof value !== 'string') throw new StoreFormatError(`${where}: expected a string`)
  return value
}

function asDate (value: unknown, where: string): Date {
  const date = value instanceof Date ? value : typeof value === 'string' ? new Date(value) : new Date(NaN)
  if (Number.isNaN(date.getTime())) throw new StoreFormatError(`${where}: expected an ISO 8601 date`)
  return date
}

function onlyKeys (record: Record<string, unknown>, allowed: string[], where: string): void {
  for (const key of Object.keys(record)) {
    if (!allowed.includes(key)) throw new StoreFormatError(`${where}: unknown key ${JSON.stringify(key)} (expected ${allowed.join(', ')})`)
  }
}
