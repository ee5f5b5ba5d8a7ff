import { isMap, isScalar, parseDocument, visit, type Document, type YAMLMap } from 'yaml'
import type { ParameterType } from '../providers/types.js'
import { JSON_NUMBER_TAG, JsonNumber, jsonText, parseJsonKeepingNumbers, setOwn } from '../json-numbers.js'
import { StoreFormatError, type StoreModel, type StoredSecret } from '../providers/local/store.js'
import { keepWrittenText } from '../providers/local/store-yaml.js'

/**
 * Edits of the local store file, as `secrets-agent store` makes them. Pure: text in, text out;
 * the caller validates the result with parseStore and writes it atomically. YAML files keep
 * their comments and layout outside the entry that changes; JSON files are rewritten whole.
 */

export type EntryKind = 'secret' | 'parameter'

const SECTION: Record<EntryKind, 'secrets' | 'parameters'> = { secret: 'secrets', parameter: 'parameters' }

/** The store file being edited, YAML or JSON. Entries come and go as plain values. */
export interface StoreDocument {
  get (kind: EntryKind, name: string): unknown
  set (kind: EntryKind, name: string, value: unknown): void
  /** False when there was no such entry. */
  delete (kind: EntryKind, name: string): boolean
  toString (): string
}

export function openStoreDocument (text: string, fileName: string): StoreDocument {
  return fileName.endsWith('.json') ? new JsonStore(text, fileName) : new YamlStore(text, fileName)
}

class YamlStore implements StoreDocument {
  readonly #doc: Document
  constructor (text: string, fileName: string) {
    // A json: value's numbers are written back as they were: whole ones read as BigInt, others
    // (1.10, 1e400) kept as JsonNumbers by keepWrittenText, and written by JSON_NUMBER_TAG.
    this.#doc = parseDocument(text, { intAsBigInt: true, customTags: [JSON_NUMBER_TAG] })
    const error = this.#doc.errors[0]
    if (error !== undefined) {
      // Position and code only: the parser's message quotes the source, which holds secrets.
      const at = error.linePos?.[0]
      throw new StoreFormatError(`${fileName}: cannot parse: not valid YAML (${error.code})${at === undefined ? '' : ` at line ${at.line}, column ${at.col}`}`)
    }
    keepWrittenText(this.#doc, { jsonNumbers: true })
  }

  get (kind: EntryKind, name: string): unknown {
    const root = this.#doc.toJS() as Record<string, Record<string, unknown> | null> | null
    return ownEntry(root?.[SECTION[kind]], name)
  }

  set (kind: EntryKind, name: string, value: unknown): void {
    const node = this.#doc.createNode(value)
    // Short lists of scalars (stages, labels) read best on one line, as the README writes them.
    visit(node, { Seq (_key, seq) { if (seq.items.every((item) => isScalar(item))) seq.flow = true } })
    const map = this.#section(kind, true)
    if (map === undefined) return
    const pair = map.items.find((p) => keyName(p.key) === name)
    if (pair !== undefined) pair.value = node
    else map.add(this.#doc.createPair(name, node))
  }

  delete (kind: EntryKind, name: string): boolean {
    const map = this.#section(kind, false)
    if (map === undefined) return false
    const index = map.items.findIndex((p) => keyName(p.key) === name)
    if (index === -1) return false
    map.items.splice(index, 1)
    return true
  }

  toString (): string {
    try {
      return this.#doc.toString()
    } catch (error) {
      // The one way a parsed document fails to print: the edit removed an anchor (&name) that
      // another entry still refers to (*name).
      const detail = error instanceof Error && /alias/i.test(error.message) ? 'it would remove a YAML anchor (&name) that another entry refers to (*name)' : 'it could not be written back'
      throw new StoreFormatError(`the edit was not made: ${detail}; edit the file by hand.`)
    }
  }

  /** The `secrets:` or `parameters:` mapping; made (block style) when `create` and absent or empty. */
  #section (kind: EntryKind, create: boolean): YAMLMap | undefined {
    const key = SECTION[kind]
    const existing = this.#doc.get(key, true)
    if (isMap(existing)) {
      // `secrets: {}` would otherwise grow into one long flow line.
      if (create && existing.flow === true && existing.items.length === 0) existing.flow = false
      return existing
    }
    if (!create) return undefined
    const map = this.#doc.createNode({}) as YAMLMap
    map.flow = false
    this.#doc.set(key, map)
    return map
  }
}

function keyName (key: unknown): string {
  return String(isScalar(key) ? key.value : key)
}

class JsonStore implements StoreDocument {
  readonly #root: Record<string, Record<string, unknown>>
  constructor (text: string, fileName: string) {
    let root: unknown
    try {
      // Numbers as written: an edit of one entry must not round another's through a double.
      root = text.trim() === '' ? {} : parseJsonKeepingNumbers(text)
    } catch (error) {
      throw new StoreFormatError(`${fileName}: cannot parse: ${jsonProblem(error)}`)
    }
    if (root === null || typeof root !== 'object' || Array.isArray(root)) throw new StoreFormatError(`${fileName}: expected a mapping`)
    this.#root = root as Record<string, Record<string, unknown>>
  }

  get (kind: EntryKind, name: string): unknown {
    return ownEntry(this.#root[SECTION[kind]], name)
  }

  set (kind: EntryKind, name: string, value: unknown): void {
    const section = this.#root[SECTION[kind]] ?? {}
    // As an own property: a secret may be named __proto__.
    setOwn(section, name, value)
    this.#root[SECTION[kind]] = section
  }

  delete (kind: EntryKind, name: string): boolean {
    const section = this.#root[SECTION[kind]]
    if (section === undefined || section === null || !Object.prototype.hasOwnProperty.call(section, name)) return false
    delete section[name]
    return true
  }

  toString (): string {
    return jsonText(this.#root, '  ') + '\n'
  }
}

/**
 * Why JSON.parse failed, without the excerpt of the text V8 puts in some messages
 * (`Unexpected token 'p', ..."a": pw-leak"...`): the text is a store of secrets.
 */
export function jsonProblem (error: unknown): string {
  const position = /at position (\d+)/.exec((error as Error).message)?.[1]
  return position === undefined ? 'not valid JSON' : `not valid JSON at position ${position}`
}

/** A new secret value: exactly one of the three. */
export type SecretContent = { string: string } | { json: unknown } | { binary: Uint8Array }

type Raw = Record<string, unknown>

/**
 * The secret's entry with a new version added, as Secrets Manager's PutSecretValue does: the
 * new version takes `stage`; for AWSCURRENT, the version that had it moves to AWSPREVIOUS (and
 * the old AWSPREVIOUS loses that label). A version left without any stage is dropped, as
 * Secrets Manager deprecates it. Existing versions get their ids written out, since an id the
 * store derives from a version's position would change when versions come and go.
 */
export function addSecretVersion (raw: unknown, current: StoredSecret | undefined, content: SecretContent, stage: string, versionId: string, now: Date): Raw {
  const { extra, versions } = secretVersions(raw)
  const kept = versions.map((v, i) => {
    const { id, stages, ...rest } = v
    const moved = moveStages(asStrings(stages), stage)
    return { id: id ?? current?.versions[i]?.versionId, stages: moved, ...rest }
  }).filter((v) => v.stages.length > 0)
  const added = 'binary' in content ? { binary: Buffer.from(content.binary).toString('base64') } : content
  return { ...extra, versions: [...kept, { id: versionId, stages: [stage], created: now.toISOString(), ...added }] }
}

function moveStages (stages: string[], stage: string): string[] {
  if (stage !== 'AWSCURRENT') return stages.filter((s) => s !== stage)
  return stages.filter((s) => s !== 'AWSPREVIOUS').map((s) => s === 'AWSCURRENT' ? 'AWSPREVIOUS' : s)
}

/** Any of the store's three ways to write a secret, as one list of versions. */
function secretVersions (raw: unknown): { extra: Raw, versions: Raw[] } {
  if (raw === undefined) return { extra: {}, versions: [] }
  const text = scalarText(raw)
  if (text !== undefined) return { extra: {}, versions: [{ stages: ['AWSCURRENT'], string: text }] }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return { extra: {}, versions: [] }
  const record = raw as Raw
  if (Array.isArray(record.versions)) {
    const { versions, ...extra } = record
    return { extra, versions: (versions as unknown[]).map((v) => ({ ...(v as Raw) })) }
  }
  // One version written inline: `{ binary: ... }`, `{ json: ... }`, `{ string: ..., stages: [...] }`.
  return { extra: {}, versions: [{ stages: ['AWSCURRENT'], ...record }] }
}

/**
 * The parameter's entry with a new version holding `value` (versions number from 1 in order, so
 * none is ever removed). `type` changes the parameter's type; `label` moves to the new version.
 */
export function addParameterVersion (raw: unknown, value: string, type: ParameterType | undefined, label: string | undefined, now: Date): Raw {
  let record: Raw
  if (raw === undefined) record = { versions: [] }
  else if (raw === null || typeof raw !== 'object' || Array.isArray(raw) || raw instanceof JsonNumber) record = { versions: [{ value: raw }] }
  else if (Array.isArray((raw as Raw).versions)) record = { ...(raw as Raw) }
  else {
    const { value: old, labels, modified, ...rest } = raw as Raw
    record = { ...rest, versions: [{ value: old, ...(labels === undefined ? {} : { labels }), ...(modified === undefined ? {} : { modified }) }] }
  }
  const versions = (record.versions as Raw[]).map((v) => {
    if (label === undefined || v.labels === undefined) return { ...v }
    const { labels, ...rest } = v
    const left = asStrings(labels).filter((l) => l !== label)
    return left.length > 0 ? { ...rest, labels: left } : rest
  })
  versions.push({ value, ...(label === undefined ? {} : { labels: [label] }), modified: now.toISOString() })
  const { type: oldType, versions: _old, ...rest } = record
  return { type: type ?? oldType ?? 'String', ...rest, versions }
}

/** `section[name]` when the section itself holds it: `__proto__` names an entry, not Object.prototype. */
function ownEntry (section: Record<string, unknown> | null | undefined, name: string): unknown {
  return section !== null && section !== undefined && Object.prototype.hasOwnProperty.call(section, name) ? section[name] : undefined
}

/** A secret written as one scalar (`name: value`), as the store serves it: its text. */
function scalarText (raw: unknown): string | undefined {
  if (typeof raw === 'string') return raw
  if (typeof raw === 'number' || typeof raw === 'boolean' || typeof raw === 'bigint') return String(raw)
  return raw instanceof JsonNumber ? raw.text : undefined
}

function asStrings (value: unknown): string[] {
  return Array.isArray(value) ? value.filter((s): s is string => typeof s === 'string') : []
}

/** One line per entry: names, types, versions, stages and labels. Never a value. */
export function listEntries (model: StoreModel): string[] {
  const rows: string[][] = [['KIND', 'NAME', 'TYPE', 'VERSIONS', 'STAGES / LABELS']]
  for (const secret of model.secrets.values()) {
    const currentVersion = secret.versions.find((v) => v.stages.includes('AWSCURRENT'))
    const stages = secret.versions.flatMap((v) => v.stages.map((s) => `${s}=${v.versionId.slice(0, 8)}`))
    rows.push(['secret', secret.name, currentVersion?.secretBinary !== undefined ? 'SecretBinary' : 'SecretString', String(secret.versions.length), stages.join(' ')])
  }
  for (const parameter of model.parameters.values()) {
    const labels = parameter.versions.flatMap((v) => v.labels.map((l) => `${l}=${v.version}`))
    rows.push(['parameter', parameter.name, parameter.type, String(parameter.versions.length), labels.join(' ')])
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  return rows.map((r) => r.map((cell, i) => i === r.length - 1 ? cell : cell.padEnd(widths[i]!)).join('  ').trimEnd())
}
