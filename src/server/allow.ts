/**
 * The allow-list of DESIGN §4: glob patterns per kind of id (`[allow] secrets`, `parameters`,
 * `kms_keys`; `["*"]` by default). An id passes when a pattern matches it as the caller gave it or,
 * for an ARN, a name inside the ARN (see `namesInArn`).
 */

import { AccessDeniedError } from '../providers/errors.js'
import { Errors } from './errors.js'

/** The kinds of id the allow-list rules, as named in `AgentConfig.allow`. */
export type AllowKind = 'secrets' | 'parameters' | 'kmsKeys'

const KIND_NAMES: Record<AllowKind, string> = { secrets: 'secret', parameters: 'parameter', kmsKeys: 'KMS key' }

export type AllowRules = Partial<Readonly<Record<AllowKind, readonly string[]>>>

/**
 * True when `pattern` matches all of `value`: `*` matches any run of characters (`/` included,
 * none at all too), `?` exactly one character, everything else itself. Characters are code points.
 * Runs in O(pattern × value) at worst, with no regular expression built from the pattern.
 */
export function globMatch (pattern: string, value: string): boolean {
  const p = Array.from(pattern)
  const v = Array.from(value)
  let pi = 0
  let vi = 0
  // Where to resume after the last `*`: the pattern just past it, and the value it last stopped at.
  let starPi = -1
  let starVi = 0
  while (vi < v.length) {
    if (pi < p.length && p[pi] === '*') {
      starPi = pi
      starVi = vi
      pi += 1
    } else if (pi < p.length && (p[pi] === '?' || p[pi] === v[vi])) {
      pi += 1
      vi += 1
    } else if (starPi !== -1) {
      // Let the last `*` swallow one more character and try again from there.
      pi = starPi + 1
      starVi += 1
      vi = starVi
    } else {
      return false
    }
  }
  while (pi < p.length && p[pi] === '*') pi += 1
  return pi === p.length
}

/** The six random characters, after a dash, that end a secret's full ARN. */
const SECRET_SUFFIX = /-[A-Za-z0-9]{6}$/

/**
 * The names an ARN (`arn:partition:service:region:account:resource`) holds for a kind, besides
 * the ARN itself; none when `id` is not an ARN.
 * - kmsKeys: the resource, `key/<id>` or `alias/<name>`.
 * - secrets: the secret name (`secret:<name>-AbCdEf` without its 6-character suffix), and the
 *   name with the suffix.
 * - parameters: the name after `parameter`, with its leading `/` (`/app/x`) and, for a name
 *   without `/`, as is (`x`).
 */
export function namesInArn (kind: AllowKind, id: string): string[] {
  if (!id.startsWith('arn:')) return []
  const parts = id.split(':')
  if (parts.length < 6) return []
  const resource = parts.slice(5).join(':')
  switch (kind) {
    case 'kmsKeys':
      return [resource]
    case 'secrets': {
      if (!resource.startsWith('secret:')) return []
      const name = resource.slice('secret:'.length)
      const withoutSuffix = name.replace(SECRET_SUFFIX, '')
      return withoutSuffix === name ? [name] : [withoutSuffix, name]
    }
    case 'parameters': {
      if (!resource.startsWith('parameter/')) return []
      const name = resource.slice('parameter'.length)
      return name.indexOf('/', 1) === -1 ? [name, name.slice(1)] : [name]
    }
  }
}

/**
 * The configured patterns, per kind. A kind with no rules given allows everything (`["*"]`, the
 * default); an empty list allows nothing.
 */
export class AllowList {
  readonly #rules: Readonly<Record<AllowKind, readonly string[]>>

  constructor (rules: AllowRules = {}) {
    this.#rules = {
      secrets: [...(rules.secrets ?? ['*'])],
      parameters: [...(rules.parameters ?? ['*'])],
      kmsKeys: [...(rules.kmsKeys ?? ['*'])]
    }
  }

  /** True when some pattern of `kind` matches the id as given or a name inside it (for an ARN). */
  allows (kind: AllowKind, id: string): boolean {
    if (this.allowsEvery(kind)) return true
    const patterns = this.#rules[kind]
    const candidates = [id, ...namesInArn(kind, id)]
    return patterns.some((pattern) => candidates.some((candidate) => globMatch(pattern, candidate)))
  }

  /**
   * Throws 403 (and logs a warning naming the id: the one place ids are logged above debug) when
   * `kind` does not allow `id`.
   */
  check (kind: AllowKind, id: string, log: { warn: (o: object, msg: string) => void }): void {
    if (this.allows(kind, id)) return
    log.warn({ kind, id }, 'refused by the allow-list')
    throw new Errors.AccessDenied(`This ${KIND_NAMES[kind]} may not be read through this agent (allow-list).`)
  }

  /**
   * After the fetch: true when the secret with ARN `arn` (the full ARN upstream answered with,
   * random suffix and all) may be read. An ARN asked for cannot tell alone:
   * `…:secret:dev/db-secret` is the full ARN of `dev/db` (its suffix `secret`) or a partial ARN of
   * `dev/db-secret`, and `…:secret:payments-3zhK6X` passes `payments-*` on its name as written,
   * though it is the full ARN of `payments`. So `allows` lets such ARNs through, and this check
   * sees which secret it was: matched on the full ARN, its partial ARN and the secret's name,
   * never on the name with its suffix.
   */
  allowsSecretArn (arn: string): boolean {
    if (this.allowsEvery('secrets')) return true
    const marker = arn.indexOf(':secret:')
    const suffixed = SECRET_SUFFIX.test(arn)
    const candidates = [arn]
    if (suffixed) candidates.push(arn.slice(0, -7))
    if (marker !== -1) candidates.push(arn.slice(marker + ':secret:'.length, suffixed ? -7 : undefined))
    return this.#rules.secrets.some((pattern) => candidates.some((candidate) => globMatch(pattern, candidate)))
  }

  /** True when `kind` allows every id (a `*` pattern, the default). */
  allowsEvery (kind: AllowKind): boolean {
    return this.#rules[kind].includes('*')
  }

  /** `allows('kmsKeys', id)`: a key id, key ARN, alias name or alias ARN. */
  kmsKey (id: string): boolean {
    return this.allows('kmsKeys', id)
  }
}

/**
 * A value the allow-list refuses, found to be so only once fetched (see `allowsSecretArn`).
 * Thrown by the reads' loaders, so it is never cached; answered 403 like any refusal.
 */
export class AllowListRefusal extends AccessDeniedError {
  constructor (readonly kind: AllowKind, readonly id: string) {
    super(`This ${KIND_NAMES[kind]} may not be read through this agent (allow-list).`)
  }
}
