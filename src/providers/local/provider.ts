import { createHash } from 'node:crypto'
import { watch, type FSWatcher } from 'node:fs'
import { lstat, readFile, realpath } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'
import type { KeyringNode } from '@aws-crypto/client-node'
import type { Logger } from 'pino'
import { InvalidRequestError, NotFoundError, isProviderError } from '../errors.js'
import { REFERENCE_PREFIX, splitSelector } from '../parameter-name.js'
import type {
  BatchGetSecretsResult, CallOptions, DecryptInput, DecryptResult, EncryptInput, EncryptResult,
  GenerateDataKeyInput, GenerateDataKeyResult, GetParameterInput, GetParametersByPathInput,
  GetSecretInput, Parameter, Provider, SecretValue
} from '../types.js'
import { Debounce } from '../../debounce.js'
import { LocalKms } from './kms.js'
import { parseStore, StoreFormatError, type StoreModel, type StoredParameter, type StoredSecret } from './store.js'

export interface LocalProviderOptions {
  storeFile: string
  /** Default: `<store name>.keys.json` beside the store. */
  keyFile?: string
  region: string
  logger: Logger
  /** Re-read the store when it changes on disk (default true). */
  watch?: boolean
  /**
   * Quiet time after the last change event before re-reading (default 50 ms); ten times it after
   * the first event at the latest.
   */
  debounceMs?: number
}


export function defaultKeyFile (storeFile: string): string {
  const base = basename(storeFile).replace(/\.(ya?ml|json)$/i, '')
  return join(dirname(storeFile), `${base}.keys.json`)
}

/**
 * Answers from the local store file and the local KMS key file. The model is swapped as a whole
 * on reload, so every request sees either the old store or the new one, never a mix.
 */
export class LocalProvider implements Provider {
  readonly kind = 'local'
  readonly kms: LocalKms
  #model: StoreModel
  readonly #options: Required<Pick<LocalProviderOptions, 'storeFile' | 'region' | 'debounceMs'>> & { logger: Logger }
  readonly #listeners = new Set<() => void>()
  #watcher: FSWatcher | undefined
  readonly #storeChanged: Debounce
  readonly #keysChanged: Debounce
  #reloading: Promise<void> = Promise.resolve()
  /** The loaded store text's digest: an event that changed nothing reloads nothing. */
  #digest = ''
  /** The digest of the last text that did not parse: refused once, and logged once. */
  #refused: string | undefined
  /** When the store path is a symlink: the file it names, and a watch on that file's directory. */
  #target: string | undefined
  #targetWatcher: FSWatcher | undefined

  private constructor (model: StoreModel, kms: LocalKms, options: LocalProviderOptions) {
    this.#model = model
    this.kms = kms
    this.#options = { storeFile: options.storeFile, region: options.region, debounceMs: options.debounceMs ?? 50, logger: options.logger }
    this.#storeChanged = new Debounce(() => { void this.reload() }, this.#options.debounceMs)
    this.#keysChanged = new Debounce(() => { void this.#reloadKeys() }, this.#options.debounceMs)
  }

  static async open (options: LocalProviderOptions): Promise<LocalProvider> {
    const text = await readStoreText(options.storeFile)
    const model = await parseStore(text, options.region, options.storeFile)
    const digest = digestOf(text)
    const kms = await LocalKms.open({ keyFile: options.keyFile ?? defaultKeyFile(options.storeFile), region: options.region })
    const provider = new LocalProvider(model, kms, options)
    provider.#digest = digest
    if (options.watch !== false) {
      provider.#startWatching()
      await provider.#watchTarget()
    }
    return provider
  }

  get storeFile (): string { return this.#options.storeFile }

  async getSecret (input: GetSecretInput): Promise<SecretValue> {
    const secret = this.#findSecret(input.secretId)
    const version = selectSecretVersion(secret, input.versionId, input.versionStage)
    return {
      arn: secret.arn,
      name: secret.name,
      versionId: version.versionId,
      ...(version.secretBinary !== undefined ? { secretBinary: Uint8Array.from(version.secretBinary) } : { secretString: version.secretString ?? '' }),
      versionStages: [...version.stages],
      createdDate: version.createdDate
    }
  }

  async batchGetSecrets (secretIds: string[]): Promise<BatchGetSecretsResult> {
    const result: BatchGetSecretsResult = { values: [], errors: [] }
    for (const secretId of secretIds) {
      try {
        result.values.push(await this.getSecret({ secretId }))
      } catch (error) {
        if (!isProviderError(error)) throw error
        result.errors.push({ secretId, errorCode: error.code, message: error.message, transient: error.transient })
      }
    }
    return result
  }

  async getParameter (input: GetParameterInput): Promise<Parameter> {
    const { name, selector } = splitSelector(input.name)
    if (name.startsWith(REFERENCE_PREFIX)) return this.#referenceParameter(name, selector, input.withDecryption)
    const parameter = this.#findParameter(name)
    const version = selectParameterVersion(parameter, selector)
    return this.#toParameter(parameter, version.version, version.value, version.lastModifiedDate, input.withDecryption, selector)
  }

  async getParametersByPath (input: GetParametersByPathInput): Promise<Parameter[]> {
    const path = input.path
    if (!path.startsWith('/') || path.length > 2048) throw new InvalidRequestError('The parameter path must begin with a forward slash (/).', { code: 'ValidationException' })
    if (path.split('/').length - 1 > 15) throw new InvalidRequestError('The parameter path must not be more than 15 levels deep.', { code: 'ValidationException' })
    const prefix = path.endsWith('/') ? path : path + '/'
    const matches = [...this.#model.parameters.values()]
      .filter((p) => p.name.startsWith(prefix) && (input.recursive || !p.name.slice(prefix.length).includes('/')))
      .sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
    if (matches.length > input.limit) {
      throw new InvalidRequestError(`The path holds more than ${input.limit} parameters; ask for a narrower path.`, { code: 'TooManyParameters' })
    }
    return Promise.all(matches.map(async (p) => {
      const latest = p.versions[p.versions.length - 1]!
      return this.#toParameter(p, latest.version, latest.value, latest.lastModifiedDate, input.withDecryption, null)
    }))
  }

  async encrypt (input: EncryptInput): Promise<EncryptResult> { return this.kms.encrypt(input) }
  async decrypt (input: DecryptInput): Promise<DecryptResult> { return this.kms.decrypt(input) }
  async generateDataKey (input: GenerateDataKeyInput): Promise<GenerateDataKeyResult> { return this.kms.generateDataKey(input) }
  /** A raw AES keyring over the key's material (see envelope-keyring.ts). */
  async envelopeKeyring (keyId: string): Promise<KeyringNode> {
    // The Encryption SDK is loaded when first needed, not at start.
    const { localEnvelopeKeyring } = await import('./envelope-keyring.js')
    return localEnvelopeKeyring(this.kms, keyId)
  }

  async checkReady (_options?: CallOptions): Promise<void> {
    // The store was read when the provider opened; a broken edit keeps the last good one.
  }

  onChange (listener: () => void): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  /**
   * Re-reads the store now. A file that does not parse leaves the current store in service; one
   * whose text has not changed changes nothing (a symlinked store is re-read on any event near it).
   */
  async reload (): Promise<void> {
    this.#reloading = this.#reloading.then(async () => {
      if (this.#watcher !== undefined) await this.#watchTarget()
      let model: StoreModel
      let digest: string | undefined
      try {
        const text = await readStoreText(this.#options.storeFile)
        // Text already in service, or already refused: nothing to do, nothing more to say.
        digest = digestOf(text)
        if (digest === this.#digest || digest === this.#refused) return
        model = await parseStore(text, this.#options.region, this.#options.storeFile)
      } catch (error) {
        this.#refused = digest
        this.#options.logger.error({ err: { message: (error as Error).message } }, 'local store not reloaded; the last good store stays in service')
        return
      }
      this.#model = model
      this.#digest = digest
      this.#refused = undefined
      this.#options.logger.info({ store: this.#options.storeFile }, 'local store reloaded')
      for (const listener of this.#listeners) listener()
    })
    return this.#reloading
  }

  async close (): Promise<void> {
    this.#watcher?.close()
    this.#watcher = undefined
    this.#targetWatcher?.close()
    this.#targetWatcher = undefined
    this.#storeChanged.cancel()
    this.#keysChanged.cancel()
    await this.#reloading
  }

  async #reloadKeys (): Promise<void> {
    try {
      await this.kms.reload()
      this.#options.logger.info({ keyFile: this.kms.keyFile }, 'local KMS keys reloaded')
    } catch (error) {
      this.#options.logger.error({ err: { message: (error as Error).message } }, 'local KMS keys not reloaded; the keys read before stay in service')
    }
  }

  #startWatching (): void {
    // Watch the directory, not the file: editors and our CLI replace the file by rename, which
    // would leave a watch on the old inode silent.
    // The KMS key file beside it too, when it is there: `store key` adds and disables keys.
    const name = basename(this.#options.storeFile)
    const keys = dirname(this.kms.keyFile) === dirname(resolve(this.#options.storeFile)) ? basename(this.kms.keyFile) : undefined
    try {
      this.#watcher = watch(dirname(this.#options.storeFile), { persistent: false }, (_event, filename) => {
        if (keys !== undefined && (filename === null || filename === keys)) this.#keysChanged.poke()
        // A symlinked store changes without an event of its name: Kubernetes swaps the `..data`
        // link a ConfigMap's files point through. Any event may be it; the digest tells.
        if (filename !== null && filename !== name && this.#target === undefined) return
        this.#storeChanged.poke()
      })
    } catch (error) {
      // Out of inotify watches or instances (EMFILE, ENOSPC), say: the store still serves, as read.
      this.#options.logger.warn({ err: { code: (error as NodeJS.ErrnoException).code, message: (error as Error).message } }, 'cannot watch the local store; edits are not picked up until a restart')
      return
    }
    this.#watcher.on('error', (error) => {
      this.#options.logger.warn({ err: { message: error.message } }, 'watching the local store failed; edits are no longer picked up')
    })
  }

  /**
   * For a store path that is a symlink, watches the directory of the file it names too (edits
   * there, in a dotfiles repository say, make no event beside the link); again whenever the link
   * comes to name another file.
   */
  async #watchTarget (): Promise<void> {
    const target = await linkTarget(this.#options.storeFile)
    // Closed meanwhile: no watch may outlive close().
    if (target === this.#target || this.#watcher === undefined) return
    this.#targetWatcher?.close()
    this.#targetWatcher = undefined
    this.#target = target
    if (target === undefined || dirname(target) === dirname(resolve(this.#options.storeFile))) return
    const name = basename(target)
    try {
      this.#targetWatcher = watch(dirname(target), { persistent: false }, (_event, filename) => {
        if (filename === null || filename === name) this.#storeChanged.poke()
      })
      // The directory may go (a ConfigMap's old one does); the link's own watch goes on.
      this.#targetWatcher.on('error', () => { this.#targetWatcher?.close() })
    } catch {
      this.#targetWatcher = undefined
    }
  }

  #findSecret (secretId: string): StoredSecret {
    const byName = this.#model.secrets.get(secretId)
    if (byName !== undefined) return byName
    if (secretId.startsWith('arn:')) {
      for (const secret of this.#model.secrets.values()) {
        // Secrets Manager also accepts a "partial ARN", without the random suffix.
        if (secret.arn === secretId || secret.arn.slice(0, -7) === secretId) return secret
      }
    }
    throw new NotFoundError("Secrets Manager can't find the specified secret.")
  }

  #findParameter (name: string): StoredParameter {
    const byName = this.#model.parameters.get(name)
    if (byName !== undefined) return byName
    if (name.startsWith('arn:')) {
      for (const parameter of this.#model.parameters.values()) {
        if (parameter.arn === name) return parameter
      }
    }
    throw new NotFoundError('The parameter was not found.', { code: 'ParameterNotFound' })
  }

  async #toParameter (p: StoredParameter, version: number, value: string, modified: Date, withDecryption: boolean, selector: string | null): Promise<Parameter> {
    let shown = value
    if (p.type === 'SecureString' && !withDecryption) {
      // As SSM does: without decryption a SecureString comes back encrypted under the default
      // key, with the parameter's ARN as encryption context. Never the plaintext.
      const encrypted = await this.kms.encrypt({
        keyId: this.kms.defaultKeyArn,
        plaintext: Buffer.from(value, 'utf8'),
        encryptionContext: { PARAMETER_ARN: p.arn }
      })
      shown = Buffer.from(encrypted.ciphertextBlob).toString('base64')
    }
    return {
      arn: p.arn,
      name: p.name,
      type: p.type,
      value: shown,
      version,
      lastModifiedDate: modified,
      dataType: p.dataType,
      selector,
      sourceResult: null
    }
  }

  async #referenceParameter (name: string, selector: string | null, withDecryption: boolean): Promise<Parameter> {
    if (!withDecryption) {
      throw new InvalidRequestError('WithDecryption flag must be True for retrieving a Secret Manager secret.', { code: 'ValidationException' })
    }
    const secretId = name.slice(REFERENCE_PREFIX.length)
    const secret = this.#findSecret(secretId)
    // The selector names a staging label or a version id.
    const label = selector?.slice(1)
    const isStage = label !== undefined && secret.versions.some((v) => v.stages.includes(label))
    const value = await this.getSecret({
      secretId,
      ...(label === undefined ? {} : isStage ? { versionStage: label } : { versionId: label })
    })
    const sourceResult = JSON.stringify({
      ARN: value.arn,
      name: value.name,
      versionId: value.versionId,
      ...(value.secretBinary !== undefined ? { secretBinary: Buffer.from(value.secretBinary).toString('base64') } : { secretString: value.secretString }),
      versionStages: value.versionStages,
      createdDate: value.createdDate.toISOString()
    })
    return {
      arn: value.arn,
      name,
      type: 'SecureString',
      value: value.secretString ?? null,
      version: 0,
      lastModifiedDate: value.createdDate,
      dataType: null,
      selector,
      sourceResult
    }
  }
}

async function readStoreText (path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8')
  } catch (error) {
    throw new StoreFormatError(`cannot read the local store ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`)
  }
}

/** What tells one store text from another, without keeping the text (it holds secrets). */
function digestOf (text: string): string {
  return createHash('sha256').update(text).digest('hex')
}

/** The file a symlink names, or undefined when `path` is not a symlink (or cannot be read). */
async function linkTarget (path: string): Promise<string | undefined> {
  try {
    return (await lstat(path)).isSymbolicLink() ? await realpath(path) : undefined
  } catch {
    return undefined
  }
}


function selectSecretVersion (secret: StoredSecret, versionId: string | undefined, versionStage: string | undefined): StoredSecret['versions'][number] {
  const stage = versionStage ?? (versionId === undefined ? 'AWSCURRENT' : undefined)
  const version = secret.versions.find((v) =>
    (versionId === undefined || v.versionId === versionId) && (stage === undefined || v.stages.includes(stage)))
  if (version === undefined) {
    throw new NotFoundError(stage !== undefined && versionId === undefined
      ? "Secrets Manager can't find the specified secret value for staging label: " + stage
      : "Secrets Manager can't find the specified secret value for VersionId: " + (versionId ?? ''))
  }
  return version
}

function selectParameterVersion (p: StoredParameter, selector: string | null): StoredParameter['versions'][number] {
  if (selector === null) return p.versions[p.versions.length - 1]!
  const token = selector.slice(1)
  const version = /^\d+$/.test(token)
    ? p.versions.find((v) => v.version === Number(token))
    : p.versions.find((v) => v.labels.includes(token))
  if (version === undefined) {
    throw new NotFoundError(/^\d+$/.test(token) ? 'The requested parameter version was not found.' : 'The requested parameter label was not found.', { code: 'ParameterVersionNotFound' })
  }
  return version
}
