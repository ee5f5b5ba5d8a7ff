import { randomInt, randomUUID } from 'node:crypto'

import type { RequestContext, Resource } from './access.js'
import { AwsError, constraintError, validationError } from './errors.js'
import type { Input } from './input.js'
import type { KeyStore } from './kms.js'
import type { PutSecretInput, PutSecretResult } from './types.js'

interface SecretVersion {
  readonly id: string
  readonly secretString: string | undefined
  readonly secretBinary: Uint8Array | undefined
  readonly stages: Set<string>
  readonly created: Date
}

interface Secret {
  readonly name: string
  readonly arn: string
  readonly created: Date
  readonly versions: Map<string, SecretVersion>
  readonly kmsKeyId: string | undefined
  lastChanged: Date
  /** Set while the secret waits out its recovery window: it exists but cannot be read. */
  deleted: Date | undefined
}

/** One version of a secret, as GetSecretValue and the SSM reference path see it. */
export interface SecretValue {
  readonly arn: string
  readonly name: string
  readonly versionId: string
  readonly secretString: string | undefined
  readonly secretBinary: Uint8Array | undefined
  readonly versionStages: readonly string[]
  readonly createdDate: Date
}

export interface VersionSelector {
  versionId?: string | undefined
  versionStage?: string | undefined
}

const CURRENT = 'AWSCURRENT'
const PREVIOUS = 'AWSPREVIOUS'
const BATCH_LIMIT = 20
const SUFFIX_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'

/** Secrets Manager: secrets with versions and staging labels. */
export class SecretStore {
  readonly #secrets = new Map<string, Secret>()

  constructor (readonly region: string, readonly accountId: string, readonly keys: KeyStore) {}

  /** Adds a version, moving its staging labels (and AWSCURRENT's predecessor to AWSPREVIOUS). */
  put (input: PutSecretInput): PutSecretResult {
    if ((input.secretString === undefined) === (input.secretBinary === undefined)) {
      throw new Error('fake Secrets Manager: give exactly one of secretString and secretBinary')
    }
    const secret = this.#secrets.get(input.name) ?? this.#create(input)
    const version: SecretVersion = {
      id: input.versionId ?? randomUUID(),
      secretString: input.secretString,
      secretBinary: input.secretBinary === undefined ? undefined : Uint8Array.from(input.secretBinary),
      stages: new Set(input.versionStages ?? [CURRENT]),
      created: input.createdDate ?? new Date()
    }
    if (secret.versions.has(version.id)) throw new Error(`fake Secrets Manager: version ${version.id} exists`)
    moveStages(secret, version)
    secret.versions.set(version.id, version)
    secret.lastChanged = version.created
    secret.deleted = undefined
    return { arn: secret.arn, versionId: version.id }
  }

  /**
   * Without `recoveryWindow` the secret is gone at once (ForceDeleteWithoutRecovery); with it,
   * it lingers and reads fail with InvalidRequestException, as during a real recovery window.
   */
  delete (name: string, options: { recoveryWindow?: boolean } = {}): void {
    const secret = this.#secrets.get(name)
    if (secret === undefined) throw new Error(`fake Secrets Manager: no secret ${name}`)
    if (options.recoveryWindow === true) secret.deleted = new Date()
    else this.#secrets.delete(name)
  }

  /** Reads one version, checking access as GetSecretValue does. */
  read (secretId: string, selector: VersionSelector, ctx: RequestContext): SecretValue {
    const secret = this.#authorized(secretId, 'secretsmanager:GetSecretValue', ctx)
    const version = selectVersion(secret, selector)
    if (secret.kmsKeyId !== undefined && !this.keys.usable(secret.kmsKeyId, 'kms:Decrypt', ctx)) {
      throw new AwsError(
        'DecryptionFailure',
        `Secrets Manager can't decrypt the protected secret text using the provided KMS key: ${this.keys.resolve(secret.kmsKeyId).arn}`
      )
    }
    return {
      arn: secret.arn,
      name: secret.name,
      versionId: version.id,
      secretString: version.secretString,
      secretBinary: version.secretBinary,
      versionStages: [...version.stages],
      createdDate: version.created
    }
  }

  /** A selector that names an existing version id picks it; any other names a staging label. */
  selectorFor (secretId: string, selector: string): VersionSelector {
    const secret = this.#find(secretId)
    return secret?.versions.has(selector) === true ? { versionId: selector } : { versionStage: selector }
  }

  handle (operation: string, input: Input, ctx: RequestContext): unknown {
    switch (operation) {
      case 'GetSecretValue': return this.#getSecretValue(input, ctx)
      case 'BatchGetSecretValue': return this.#batchGetSecretValue(input, ctx)
      case 'DescribeSecret': return this.#describeSecret(input, ctx)
      default: return undefined
    }
  }

  #getSecretValue (input: Input, ctx: RequestContext): unknown {
    const selector = { versionId: input.string('VersionId'), versionStage: input.string('VersionStage') }
    return secretValueOutput(this.read(input.requiredString('SecretId'), selector, ctx))
  }

  #batchGetSecretValue (input: Input, ctx: RequestContext): unknown {
    const ids = input.stringList('SecretIdList')
    const hasFilters = input.has('Filters')
    if (ids !== undefined && hasFilters) {
      throw new AwsError('InvalidParameterException', "Either 'SecretIdList' or 'Filters' must be provided, but not both.")
    }
    if (hasFilters) throw validationError('This fake Secrets Manager supports SecretIdList only, not Filters.')
    if (ids === undefined) throw new AwsError('InvalidParameterException', "Either 'SecretIdList' or 'Filters' must be provided.")
    if (ids.length < 1 || ids.length > BATCH_LIMIT) {
      throw constraintError('SecretIdList', `[${ids.join(', ')}]`, `Member must have length between 1 and ${BATCH_LIMIT}`)
    }
    ctx.authorize('secretsmanager:BatchGetSecretValue', { arn: '*', names: ['*'] })
    const values: unknown[] = []
    const errors: unknown[] = []
    for (const id of ids) {
      try {
        values.push(secretValueOutput(this.read(id, {}, ctx)))
      } catch (err) {
        if (!(err instanceof AwsError)) throw err
        errors.push({ SecretId: id, ErrorCode: err.code, Message: err.message })
      }
    }
    return { SecretValues: values, Errors: errors }
  }

  #describeSecret (input: Input, ctx: RequestContext): unknown {
    const secret = this.#authorized(input.requiredString('SecretId'), 'secretsmanager:DescribeSecret', ctx, true)
    const staged = [...secret.versions.values()].filter((version) => version.stages.size > 0)
    return {
      ARN: secret.arn,
      Name: secret.name,
      ...(secret.kmsKeyId === undefined ? {} : { KmsKeyId: secret.kmsKeyId }),
      CreatedDate: epochSeconds(secret.created),
      LastChangedDate: epochSeconds(secret.lastChanged),
      ...(secret.deleted === undefined ? {} : { DeletedDate: epochSeconds(secret.deleted) }),
      VersionIdsToStages: Object.fromEntries(staged.map((version) => [version.id, [...version.stages]]))
    }
  }

  /** Finds the secret, checking access first as IAM does, so a denied caller learns nothing. */
  #authorized (secretId: string, action: string, ctx: RequestContext, allowDeleted = false): Secret {
    const secret = this.#find(secretId)
    ctx.authorize(action, secret === undefined ? this.#unknownResource(secretId) : secretResource(secret))
    if (secret === undefined) {
      throw new AwsError('ResourceNotFoundException', "Secrets Manager can't find the specified secret.")
    }
    if (secret.deleted !== undefined && !allowDeleted) {
      throw new AwsError(
        'InvalidRequestException',
        "You can't perform this operation on the secret because it was marked for deletion."
      )
    }
    return secret
  }

  /** By name, full ARN, or partial ARN (the ARN without its random suffix). */
  #find (secretId: string): Secret | undefined {
    if (!secretId.startsWith('arn:')) return this.#secrets.get(secretId)
    for (const secret of this.#secrets.values()) if (secret.arn === secretId) return secret
    const prefix = this.#arnPrefix()
    return secretId.startsWith(prefix) ? this.#secrets.get(secretId.slice(prefix.length)) : undefined
  }

  #create (input: PutSecretInput): Secret {
    const created = input.createdDate ?? new Date()
    const secret: Secret = {
      name: input.name,
      arn: `${this.#arnPrefix()}${input.name}-${randomSuffix()}`,
      created,
      versions: new Map(),
      kmsKeyId: input.kmsKeyId,
      lastChanged: created,
      deleted: undefined
    }
    this.#secrets.set(input.name, secret)
    return secret
  }

  #unknownResource (secretId: string): Resource {
    return { arn: secretId.startsWith('arn:') ? secretId : `${this.#arnPrefix()}${secretId}`, names: [secretId] }
  }

  #arnPrefix (): string {
    return `arn:aws:secretsmanager:${this.region}:${this.accountId}:secret:`
  }
}

export function secretValueOutput (value: SecretValue): Record<string, unknown> {
  return {
    ARN: value.arn,
    Name: value.name,
    VersionId: value.versionId,
    ...(value.secretString === undefined ? {} : { SecretString: value.secretString }),
    ...(value.secretBinary === undefined ? {} : { SecretBinary: Buffer.from(value.secretBinary).toString('base64') }),
    VersionStages: value.versionStages,
    CreatedDate: epochSeconds(value.createdDate)
  }
}

/** JSON 1.1 sends timestamps as epoch seconds, with milliseconds as the fraction. */
export function epochSeconds (date: Date): number {
  return date.getTime() / 1000
}

function secretResource (secret: Secret): Resource {
  return { arn: secret.arn, names: [secret.name, secret.arn] }
}

function selectVersion (secret: Secret, { versionId, versionStage }: VersionSelector): SecretVersion {
  if (versionId !== undefined) {
    const version = secret.versions.get(versionId)
    if (version === undefined || (versionStage !== undefined && !version.stages.has(versionStage))) {
      throw versionNotFound(versionStage === undefined ? `VersionId: ${versionId}` : `staging label: ${versionStage}`)
    }
    return version
  }
  const stage = versionStage ?? CURRENT
  for (const version of secret.versions.values()) if (version.stages.has(stage)) return version
  throw versionNotFound(`staging label: ${stage}`)
}

function versionNotFound (what: string): AwsError {
  return new AwsError('ResourceNotFoundException', `Secrets Manager can't find the specified secret value for ${what}`)
}

/** Staging labels are unique within a secret; a new AWSCURRENT demotes the old one to AWSPREVIOUS. */
function moveStages (secret: Secret, incoming: SecretVersion): void {
  const oldCurrent = [...secret.versions.values()].find((version) => version.stages.has(CURRENT))
  if (incoming.stages.has(CURRENT) && oldCurrent !== undefined) {
    for (const version of secret.versions.values()) version.stages.delete(PREVIOUS)
    oldCurrent.stages.add(PREVIOUS)
  }
  for (const version of secret.versions.values()) {
    for (const stage of incoming.stages) version.stages.delete(stage)
  }
}

function randomSuffix (): string {
  return Array.from({ length: 6 }, () => SUFFIX_ALPHABET[randomInt(SUFFIX_ALPHABET.length)]).join('')
}
