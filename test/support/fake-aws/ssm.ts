import type { RequestContext, Resource } from './access.js'
import { AwsError, constraintError, validationError } from './errors.js'
import type { Input } from './input.js'
import type { KeyStore } from './kms.js'
import { epochSeconds, type SecretStore, type SecretValue } from './secrets-manager.js'
import type { ParameterType, PutParameterInput } from './types.js'

interface ParameterVersion {
  readonly version: number
  readonly value: string
  /** For a SecureString: the value sealed under `alias/aws/ssm`, what SSM returns undecrypted. */
  readonly ciphertext: string | undefined
  readonly type: ParameterType
  readonly dataType: string
  readonly labels: Set<string>
  readonly modified: Date
}

interface Parameter {
  readonly name: string
  readonly arn: string
  readonly versions: ParameterVersion[]
}

/** A `Name` as GetParameter takes it: plain name or ARN, with an optional `:version` / `:label`. */
interface ParameterQuery {
  readonly name: string
  /** The selector as AWS echoes it back, colon included (`:3`, `:prod`). */
  readonly selector: string | undefined
  readonly version: number | undefined
  readonly label: string | undefined
}

const REFERENCE_PREFIX = '/aws/reference/secretsmanager/'
const PAGE_LIMIT = 10
const NAMES_LIMIT = 10

/** SSM Parameter Store: versioned, labelled parameters, and the Secrets Manager reference path. */
export class ParameterStore {
  readonly #parameters = new Map<string, Parameter>()

  constructor (
    readonly region: string,
    readonly accountId: string,
    readonly keys: KeyStore,
    readonly secrets: SecretStore
  ) {}

  /** Each put makes a new version, as PutParameter with Overwrite does; returns its number. */
  put (input: PutParameterInput): number {
    if (input.name.includes('/') && !input.name.startsWith('/')) {
      throw new Error(`fake SSM: ${input.name}: a parameter name with a slash must begin with one`)
    }
    const parameter = this.#parameters.get(input.name) ?? this.#create(input.name)
    const version = (parameter.versions.at(-1)?.version ?? 0) + 1
    parameter.versions.push({
      version,
      value: input.value,
      ciphertext: input.type === 'SecureString' ? this.#seal(parameter, input.value) : undefined,
      type: input.type,
      dataType: input.dataType ?? 'text',
      labels: new Set(),
      modified: input.lastModifiedDate ?? new Date()
    })
    if (input.labels !== undefined) this.label(input.name, version, input.labels)
    return version
  }

  /** Labels are unique within a parameter: each moves here from whichever version had it. */
  label (name: string, version: number, labels: readonly string[]): void {
    const parameter = this.#parameters.get(name)
    const target = parameter?.versions.find((candidate) => candidate.version === version)
    if (parameter === undefined || target === undefined) throw new Error(`fake SSM: no version ${version} of ${name}`)
    for (const label of labels) {
      if (/^(\d|aws|ssm)/i.test(label)) throw new Error(`fake SSM: label ${label} is not allowed by SSM`)
      for (const other of parameter.versions) other.labels.delete(label)
      target.labels.add(label)
    }
  }

  delete (name: string): void {
    if (!this.#parameters.delete(name)) throw new Error(`fake SSM: no parameter ${name}`)
  }

  handle (operation: string, input: Input, ctx: RequestContext): unknown {
    switch (operation) {
      case 'GetParameter': return this.#getParameter(input, ctx)
      case 'GetParameters': return this.#getParameters(input, ctx)
      case 'GetParametersByPath': return this.#getParametersByPath(input, ctx)
      default: return undefined
    }
  }

  #getParameter (input: Input, ctx: RequestContext): unknown {
    const withDecryption = input.boolean('WithDecryption') ?? false
    return { Parameter: this.#read(input.requiredString('Name'), withDecryption, ctx) }
  }

  #getParameters (input: Input, ctx: RequestContext): unknown {
    const names = input.stringList('Names')
    if (names === undefined || names.length < 1 || names.length > NAMES_LIMIT) {
      throw constraintError('Names', names?.join(', '), `Member must have length between 1 and ${NAMES_LIMIT}`)
    }
    const withDecryption = input.boolean('WithDecryption') ?? false
    const found: unknown[] = []
    const invalid: string[] = []
    for (const name of names) {
      try {
        found.push(this.#read(name, withDecryption, ctx))
      } catch (err) {
        // A missing name is reported, not thrown; anything else (access denied) fails the call.
        if (!isMissing(err)) throw err
        invalid.push(name)
      }
    }
    return { Parameters: found, InvalidParameters: invalid }
  }

  #getParametersByPath (input: Input, ctx: RequestContext): unknown {
    const path = normalizePath(input.requiredString('Path'))
    if (input.has('ParameterFilters')) throw validationError('This fake SSM does not support ParameterFilters.')
    const maxResults = input.integer('MaxResults') ?? PAGE_LIMIT
    if (maxResults < 1 || maxResults > PAGE_LIMIT) {
      throw constraintError('MaxResults', maxResults, `Member must have value less than or equal to ${PAGE_LIMIT}`)
    }
    const recursive = input.boolean('Recursive') ?? false
    ctx.authorize('ssm:GetParametersByPath', { arn: this.#arnFor(path), names: [path] })
    const matches = [...this.#parameters.values()]
      .filter((parameter) => underPath(parameter.name, path, recursive))
      .sort((a, b) => (a.name < b.name ? -1 : 1))
    const start = readPageToken(input.string('NextToken'), path)
    const page = matches.slice(start, start + maxResults)
    const withDecryption = input.boolean('WithDecryption') ?? false
    const parameters = page.map((parameter) => this.#output(parameter, latest(parameter), undefined, withDecryption))
    const next = start + page.length
    return next < matches.length ? { Parameters: parameters, NextToken: pageToken(path, next) } : { Parameters: parameters }
  }

  #read (rawName: string, withDecryption: boolean, ctx: RequestContext): unknown {
    const query = this.#parseName(rawName)
    if (query.name.startsWith(REFERENCE_PREFIX)) return this.#readReference(query, withDecryption, ctx)
    const parameter = this.#parameters.get(query.name)
    ctx.authorize('ssm:GetParameter', parameter === undefined ? this.#unknownResource(query.name) : parameterResource(parameter))
    if (parameter === undefined) throw new AwsError('ParameterNotFound', `Parameter ${query.name} not found.`)
    return this.#output(parameter, selectVersion(parameter, query), query.selector, withDecryption)
  }

  /**
   * `/aws/reference/secretsmanager/<secret>[:stage-or-version-id]` reads the secret through SSM,
   * answered in the shape the Lambda extension captures show (Version 0, SourceResult, no DataType).
   */
  #readReference (query: ParameterQuery, withDecryption: boolean, ctx: RequestContext): unknown {
    if (!withDecryption) throw validationError('WithDecryption flag must be True for retrieving a Secret Manager secret.')
    ctx.authorize('ssm:GetParameter', this.#unknownResource(query.name))
    const secretId = query.name.slice(REFERENCE_PREFIX.length)
    const selector = query.selector === undefined ? {} : this.secrets.selectorFor(secretId, query.selector.slice(1))
    let secret: SecretValue
    try {
      secret = this.secrets.read(secretId, selector, ctx)
    } catch (err) {
      if (err instanceof AwsError && err.code === 'ResourceNotFoundException') {
        throw new AwsError('ParameterNotFound', `Secret ${secretId} not found.`)
      }
      throw err
    }
    return {
      Name: query.name,
      Type: 'SecureString',
      ...(secret.secretString === undefined ? {} : { Value: secret.secretString }),
      Version: 0,
      ...(query.selector === undefined ? {} : { Selector: query.selector }),
      SourceResult: sourceResult(secret),
      LastModifiedDate: epochSeconds(secret.createdDate),
      ARN: secret.arn
    }
  }

  #output (parameter: Parameter, version: ParameterVersion, selector: string | undefined, withDecryption: boolean): unknown {
    const sealed = version.ciphertext !== undefined && !withDecryption
    return {
      Name: parameter.name,
      Type: version.type,
      Value: sealed ? version.ciphertext : version.value,
      Version: version.version,
      ...(selector === undefined ? {} : { Selector: selector }),
      LastModifiedDate: epochSeconds(version.modified),
      ARN: parameter.arn,
      DataType: version.dataType
    }
  }

  #parseName (rawName: string): ParameterQuery {
    const { base, selector } = this.#splitName(rawName)
    if (selector === undefined) return { name: base, selector: undefined, version: undefined, label: undefined }
    if (/^\d+$/.test(selector)) return { name: base, selector: `:${selector}`, version: Number(selector), label: undefined }
    return { name: base, selector: `:${selector}`, version: undefined, label: selector }
  }

  /** Splits off the selector; an ARN becomes the name it stands for. */
  #splitName (rawName: string): { base: string, selector: string | undefined } {
    let name = rawName
    if (rawName.startsWith('arn:')) {
      const prefix = `arn:aws:ssm:${this.region}:${this.accountId}:parameter/`
      if (!rawName.startsWith(prefix)) throw new AwsError('ParameterNotFound', `Parameter ${rawName} not found.`)
      name = this.#nameFromArnResource(rawName.slice(prefix.length))
    }
    // In a reference to a secret by its ARN, the selector's colon is the first after the ARN's own.
    const secretArn = name.startsWith(REFERENCE_PREFIX + 'arn:') ? name.indexOf(':secret:') : -1
    const colon = name.indexOf(':', secretArn === -1 ? 0 : secretArn + ':secret:'.length)
    return colon < 0 ? { base: name, selector: undefined } : { base: name.slice(0, colon), selector: name.slice(colon + 1) }
  }

  /** An ARN drops the name's leading slash, so `parameter/x` stands for `x` or `/x`. */
  #nameFromArnResource (resource: string): string {
    // A name with a slash in it is a path, and paths always begin with one.
    if (resource.includes('/')) return `/${resource}`
    const bare = resource.replace(/:.*$/, '')
    return !this.#parameters.has(bare) && this.#parameters.has(`/${bare}`) ? `/${resource}` : resource
  }

  #create (name: string): Parameter {
    const parameter: Parameter = { name, arn: this.#arnFor(name), versions: [] }
    this.#parameters.set(name, parameter)
    return parameter
  }

  #seal (parameter: Parameter, value: string): string {
    return this.keys.seal(this.keys.managedKey('ssm'), Buffer.from(value), { PARAMETER_ARN: parameter.arn }).toString('base64')
  }

  #unknownResource (name: string): Resource {
    return { arn: this.#arnFor(name), names: [name] }
  }

  #arnFor (name: string): string {
    return `arn:aws:ssm:${this.region}:${this.accountId}:parameter/${name.replace(/^\//, '')}`
  }
}

function isMissing (err: unknown): boolean {
  return err instanceof AwsError && (err.code === 'ParameterNotFound' || err.code === 'ParameterVersionNotFound')
}

function parameterResource (parameter: Parameter): Resource {
  return { arn: parameter.arn, names: [parameter.name, parameter.arn] }
}

function latest (parameter: Parameter): ParameterVersion {
  const version = parameter.versions.at(-1)
  if (version === undefined) throw new Error(`fake SSM: ${parameter.name} has no versions`)
  return version
}

function selectVersion (parameter: Parameter, query: ParameterQuery): ParameterVersion {
  if (query.version !== undefined) {
    const found = parameter.versions.find((candidate) => candidate.version === query.version)
    if (found !== undefined) return found
    throw new AwsError(
      'ParameterVersionNotFound',
      `Systems Manager could not find version ${query.version} of ${parameter.name}. Verify the version and try again.`
    )
  }
  if (query.label !== undefined) {
    const found = parameter.versions.find((candidate) => candidate.labels.has(query.label ?? ''))
    if (found !== undefined) return found
    throw new AwsError(
      'ParameterVersionNotFound',
      `Systems Manager could not find a version of ${parameter.name} with label ${query.label}.`
    )
  }
  return latest(parameter)
}

function normalizePath (path: string): string {
  if (!path.startsWith('/')) {
    throw validationError('The parameter doesn\'t meet the parameter name requirements. The parameter name must begin with a forward slash "/".')
  }
  return path.length > 1 ? path.replace(/\/+$/, '') : path
}

function underPath (name: string, path: string, recursive: boolean): boolean {
  const prefix = path === '/' ? '/' : `${path}/`
  if (!name.startsWith(prefix) || name.length === prefix.length) return false
  return recursive || !name.slice(prefix.length).includes('/')
}

/** Page tokens are opaque to clients; ours carry the offset and the path they belong to. */
function pageToken (path: string, offset: number): string {
  return Buffer.from(JSON.stringify({ path, offset })).toString('base64')
}

function readPageToken (token: string | undefined, path: string): number {
  if (token === undefined) return 0
  try {
    const parsed: unknown = JSON.parse(Buffer.from(token, 'base64').toString('utf8'))
    if (typeof parsed === 'object' && parsed !== null && 'path' in parsed && 'offset' in parsed &&
      parsed.path === path && typeof parsed.offset === 'number') return parsed.offset
  } catch {
    // Falls through to the error below: a token that is not ours is as invalid as a stale one.
  }
  throw new AwsError('InvalidNextToken', 'The specified token isn\'t valid.')
}

/**
 * SSM hands the secret over as its Java SDK's Gson rendering: lower-case keys, a US-style date,
 * and a binary secret as a serialised ByteBuffer (signed bytes) rather than base64.
 */
function sourceResult (secret: SecretValue): string {
  const payload = secret.secretBinary === undefined
    ? { secretString: secret.secretString }
    : { secretBinary: javaByteBuffer(secret.secretBinary) }
  return JSON.stringify({
    ARN: secret.arn,
    name: secret.name,
    versionId: secret.versionId,
    ...payload,
    versionStages: secret.versionStages,
    createdDate: javaDate(secret.createdDate)
  })
}

function javaByteBuffer (bytes: Uint8Array): unknown {
  return {
    hb: [...new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)],
    offset: 0,
    isReadOnly: false,
    bigEndian: true,
    nativeByteOrder: false,
    mark: -1,
    position: 0,
    limit: bytes.length,
    capacity: bytes.length,
    address: 16
  }
}

/** `Nov 16, 2022, 8:22:40 AM`, in UTC. ICU puts a narrow no-break space before AM; Gson did not. */
function javaDate (date: Date): string {
  return new Intl.DateTimeFormat('en-US', {
    month: 'short',
    day: 'numeric',
    year: 'numeric',
    hour: 'numeric',
    minute: '2-digit',
    second: '2-digit',
    hour12: true,
    timeZone: 'UTC'
  }).format(date).replace(/\u202f/g, ' ')
}
