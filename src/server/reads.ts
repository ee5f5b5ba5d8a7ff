import type { CacheResult, Loader, SecretCache } from '../cache/secret-cache.js'
import { cacheKey } from '../cache/secret-cache.js'
import { REFERENCE_PREFIX } from '../providers/parameter-name.js'
import { isProviderError } from '../providers/errors.js'
import type { BatchGetSecretsResult, BatchSecretError, GetSecretInput, Provider, SecretValue } from '../providers/types.js'
import { AllowList, AllowListRefusal } from './allow.js'
import { parameterBody, parametersBody, secretBody } from './schemas.js'

export interface ReadTtls {
  secretsMs: number
  parametersMs: number
}

/** A Secrets Manager ARN (`arn:partition:secretsmanager:…`). */
const SECRET_ARN = /^arn:[^:]+:secretsmanager:/

/** Most parameters one get-by-path answers (DESIGN §2). */
export const PATH_LIMIT = 10_000

/**
 * Reads through the cache: each method names its cache key, and what to ask the provider on a
 * miss. Response bytes are built here, once per fetched value, so a hit serialises nothing.
 *
 * The cache keeps only those bytes, not the value they were built from: holding both would
 * double the memory of every entry, and the value is needed only by `field=` and batch-get hits,
 * which read it back from the bytes (`secretFromBody`).
 */
export class Reads {
  /** Batch calls in flight, by their sorted ids. */
  readonly #batches = new Map<string, Promise<{ result: BatchGetSecretsResult, askedAt: number }>>()

  constructor (
    private readonly provider: Provider,
    private readonly cache: SecretCache,
    private readonly ttls: ReadTtls,
    /**
     * The allow-list, as it applies to what a load brings back, whoever asks (a request or the
     * prefetch), since the cached answer serves all: the parameter names a get-by-path answer
     * may hold, and the secret an ARN turned out to name (`AllowList.allowsSecretArn`).
     */
    private readonly allow: AllowList = new AllowList()
  ) {}

  async secret (input: GetSecretInput, refreshNow = false): Promise<CacheResult<null>> {
    return this.cache.get(this.secretKey(input), this.#secretLoader(input), { ttlMs: this.ttls.secretsMs, refreshNow })
  }

  /** The cache key of `secret(input)`. */
  secretKey (input: GetSecretInput): string {
    return cacheKey('secret', input.secretId, input)
  }

  /**
   * A function answering `secret(input)` when it is a fresh hit, without waiting, and undefined
   * otherwise. Made once for an input asked for again and again (the fast path keeps one per
   * URL): the cache key, the loader and the options are made here, not on every hit.
   */
  secretHits (input: GetSecretInput): (at?: number) => CacheResult<null> | undefined {
    const key = this.secretKey(input)
    const load = this.#secretLoader(input)
    const options = { ttlMs: this.ttls.secretsMs }
    return (at) => this.cache.hit(key, load, options, at)
  }

  #secretLoader (input: GetSecretInput): Loader<null> {
    return async (signal) => {
      const value = await this.provider.getSecret(input, { signal })
      if (!this.allow.allowsSecretArn(value.arn)) throw new AllowListRefusal('secrets', input.secretId)
      return { body: secretBody(value), value: null }
    }
  }

  async parameter (name: string, withDecryption: boolean, refreshNow = false): Promise<CacheResult<null>> {
    const key = cacheKey('parameter', name, { withDecryption })
    return this.cache.get(key, async (signal) => {
      const value = await this.provider.getParameter({ name, withDecryption }, { signal })
      // A secret read through /aws/reference/secretsmanager/, named by path or by the parameter's
      // ARN: the ARN SSM answers with is the secret's.
      if (SECRET_ARN.test(value.arn) && !this.allow.allowsSecretArn(value.arn)) {
        throw new AllowListRefusal('secrets', name.startsWith(REFERENCE_PREFIX) ? name.slice(REFERENCE_PREFIX.length) : name)
      }
      return { body: parameterBody(value), value: null }
    }, { ttlMs: this.ttls.parametersMs, refreshNow })
  }

  /** Only the names the allow-list allows: the cached answer holds nothing else. */
  async parametersByPath (path: string, recursive: boolean, withDecryption: boolean, refreshNow = false): Promise<CacheResult<null>> {
    const key = cacheKey('path', path, { withDecryption, recursive })
    return this.cache.get(key, async (signal) => {
      const value = (await this.provider.getParametersByPath({ path, recursive, withDecryption, limit: PATH_LIMIT }, { signal })).filter((p) => this.allow.allows('parameters', p.name))
      return { body: parametersBody(value), value: null }
    }, { ttlMs: this.ttls.parametersMs, refreshNow })
  }

  /**
   * Several secrets in one upstream call, each cached under the key a single get of that id
   * would use, and served as a single get would serve it:
   * - fresh cached values come from the cache, and are refreshed ahead as a single get's are;
   * - the rest are fetched together, one call for any number of identical batches at once;
   * - an id upstream answers authoritatively (not found, access denied) leaves the cache;
   * - when upstream fails transiently, for the batch or for one id, an id with a last good value
   *   gets it (stale if error). The others are listed in `errors` with the failure's code, and
   *   when no id has a value at all, the batch answers the failure itself;
   * - an id upstream left out of its answer (neither a value nor an error) is in `errors` as
   *   `ServiceUnavailableException`, with no stale value: upstream may have answered for it under
   *   another spelling;
   * - an ARN found to name a secret the allow-list refuses (`allowsSecretArn`) is in `refused`,
   *   and not cached.
   */
  async batch (secretIds: string[], refreshNow = false): Promise<{ values: SecretValue[], errors: BatchSecretError[], refused: string[] }> {
    const ids = [...new Set(secretIds)]
    const found = new Map<string, SecretValue>()
    /** The ids to ask upstream for, with their cache keys. */
    const missing = new Map<string, string>()
    for (const id of ids) {
      const input = { secretId: id }
      const key = this.secretKey(input)
      // Else, while the key backs off after failures, its last good value: upstream is not asked
      // for it again before the backoff has passed, as for a single get.
      const hit = (refreshNow ? this.cache.peek<null>(key, true) : this.cache.hit<null>(key, this.#secretLoader(input), { ttlMs: this.ttls.secretsMs })) ??
        this.cache.backingOff<null>(key)
      if (hit === undefined) missing.set(id, key)
      else found.set(id, secretFromBody(hit.entry.body))
    }
    const errors: BatchSecretError[] = []
    const refused: string[] = []
    if (missing.size > 0) {
      let result: BatchGetSecretsResult
      let failed: unknown
      // Values and verdicts older than what the cache learnt while the call ran are not stored.
      let askedAt: number | undefined
      try {
        ({ result, askedAt } = await this.#batchGet([...missing.keys()]))
      } catch (error) {
        if (!isProviderError(error) || !error.transient) throw error
        failed = error
        result = { values: [], errors: [...missing.keys()].map((secretId) => ({ secretId, errorCode: error.code, message: error.message, transient: true })) }
      }
      for (const [id, key] of missing) {
        const value = result.values.find((v) => answersTo(v, id))
        if (value !== undefined && !this.allow.allowsSecretArn(value.arn)) {
          refused.push(id)
          continue
        }
        if (value !== undefined) {
          found.set(id, value)
          this.cache.set(key, { body: secretBody(value), value: null }, this.ttls.secretsMs, askedAt)
          continue
        }
        const failure = result.errors.find((e) => e.secretId === id)
        if (failure === undefined) {
          // Left out of upstream's answer, neither a value nor an error (or an error under another
          // spelling of the id, listed below as it came): the caller hears of it. Nothing is
          // known of the secret, so its cached value is neither dropped nor served stale.
          errors.push({ secretId: id, errorCode: 'ServiceUnavailableException', message: 'The upstream answer to the batch left this secret out.', transient: true })
          continue
        }
        // Not found or denied for this secret: it leaves the cache. A region's whole call refused
        // (no BatchGetSecretValue there, say) says nothing of the secret, and keeps it.
        if (!failure.transient && failure.whole !== true) this.cache.delete(key, askedAt)
        const stale = failure.transient ? this.cache.stale<null>(key) : undefined
        if (stale === undefined) errors.push(failure)
        else found.set(id, secretFromBody(stale.entry.body))
      }
      // Errors upstream reports under an id other than the one asked for, as they came.
      for (const failure of result.errors) if (!missing.has(failure.secretId)) errors.push(failure)
      // Nothing to answer with: the batch answers the failure, as a single get would.
      if (failed !== undefined && found.size === 0) throw failed
    }
    const values = ids.map((id) => found.get(id)).filter((v): v is SecretValue => v !== undefined)
    return { values, errors, refused }
  }

  /**
   * One BatchGetSecretValue for any number of identical batches at once. Its transient failures,
   * of the call or of an id, count once per id in the cache's backoff (not once per reader).
   */
  async #batchGet (secretIds: string[]): Promise<{ result: BatchGetSecretsResult, askedAt: number }> {
    const key = JSON.stringify([...secretIds].sort())
    let pending = this.#batches.get(key)
    if (pending === undefined) {
      const failed = (ids: string[]): void => { for (const id of ids) this.cache.failed(this.secretKey({ secretId: id })) }
      const askedAt = this.cache.time()
      pending = this.provider.batchGetSecrets(secretIds).then(
        (result) => {
          failed(result.errors.filter((e) => e.transient && secretIds.includes(e.secretId)).map((e) => e.secretId))
          return { result, askedAt }
        },
        (error: unknown) => {
          if (isProviderError(error) && error.transient) failed(secretIds)
          throw error
        }
      ).finally(() => { this.#batches.delete(key) })
      this.#batches.set(key, pending)
    }
    return pending
  }

  clear (): void {
    this.cache.clear()
  }
}

/** The secret a stored GetSecretValue body was built from. */
export function secretFromBody (body: Buffer): SecretValue {
  const b = JSON.parse(body.toString('utf8')) as {
    ARN: string, Name: string, VersionId: string, SecretString: string | null, SecretBinary: string | null, VersionStages: string[], CreatedDate: string
  }
  return {
    arn: b.ARN,
    name: b.Name,
    versionId: b.VersionId,
    ...(b.SecretBinary !== null ? { secretBinary: Buffer.from(b.SecretBinary, 'base64') } : { secretString: b.SecretString ?? '' }),
    versionStages: b.VersionStages,
    createdDate: new Date(b.CreatedDate)
  }
}

/** Whether `value` is the secret `id` asked for: by name, full ARN or partial ARN (no suffix). */
function answersTo (value: SecretValue, id: string): boolean {
  return value.name === id || value.arn === id || (id.startsWith('arn:') && value.arn.startsWith(id + '-') && value.arn.length === id.length + 7)
}
