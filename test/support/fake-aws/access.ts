import { accessDenied } from './errors.js'
import type { AccessRequest, FakeAwsCall, FakeService } from './types.js'

/** A string denies a resource by any of its names; a predicate decides per request. */
export type AccessRule = string | ((request: AccessRequest) => boolean)

/** A resource as IAM sees it: its ARN, and every name a test may deny it by. */
export interface Resource {
  readonly arn: string
  readonly names: readonly string[]
}

/**
 * The denials a test has set up. Everything not denied is allowed: the fake plays a caller whose
 * policy grants all, so a test only states the exception it wants to see.
 */
export class AccessPolicy {
  readonly #rules = new Set<(request: AccessRequest) => boolean>()

  deny (rule: AccessRule): () => void {
    const predicate = typeof rule === 'string'
      ? (request: AccessRequest) => request.names.includes(rule)
      : rule
    this.#rules.add(predicate)
    return () => { this.#rules.delete(predicate) }
  }

  clear (): void {
    this.#rules.clear()
  }

  denies (request: AccessRequest): boolean {
    for (const rule of this.#rules) if (rule(request)) return true
    return false
  }
}

/** What a handler knows about the request it serves, and how it asks for permission. */
export class RequestContext {
  constructor (
    readonly call: FakeAwsCall,
    readonly callerArn: string,
    readonly policy: AccessPolicy
  ) {}

  allowed (action: string, resource: Resource): boolean {
    return !this.policy.denies({
      service: serviceOf(action),
      action,
      arn: resource.arn,
      names: resource.names,
      call: this.call
    })
  }

  /** Throws the AccessDeniedException IAM would when a test denied the resource. */
  authorize (action: string, resource: Resource): void {
    if (!this.allowed(action, resource)) throw accessDenied(this.callerArn, action, resource.arn)
  }
}

function serviceOf (action: string): FakeService {
  const prefix = action.slice(0, action.indexOf(':'))
  if (prefix === 'secretsmanager' || prefix === 'ssm' || prefix === 'kms' || prefix === 'sts') return prefix
  throw new Error(`unknown IAM action ${action}`)
}
