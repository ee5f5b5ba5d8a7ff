/**
 * Public types of the fake AWS server: what a test seeds, what it injects, and what it reads back
 * about the calls the code under test made.
 */

/** The services the fake answers, named as in the SigV4 credential scope. */
export type FakeService = 'secretsmanager' | 'ssm' | 'kms' | 'sts'

/** One request that reached the fake, whether it was answered, refused or faulted. */
export interface FakeAwsCall {
  readonly service: FakeService | 'unknown'
  /** Operation name, e.g. `GetSecretValue`; empty when the request named none. */
  readonly operation: string
  /** `X-Amz-Target` for JSON 1.1; `<service>.<Action>` for the query protocol. */
  readonly target: string
  /** Access key id from the SigV4 `Credential=`; undefined for an unsigned request. */
  readonly accessKeyId: string | undefined
  /** Region from the SigV4 credential scope: the region the client signed for. */
  readonly region: string | undefined
  /** Whether the request carried `X-Amz-Security-Token` (temporary credentials). */
  readonly sessionToken: boolean
  /** From `amz-sdk-request: attempt=N; max=M`: which try of the SDK's retry loop this was. */
  readonly attempt: number | undefined
  readonly userAgent: string | undefined
  readonly amzUserAgent: string | undefined
  readonly contentType: string | undefined
  /** Parsed request body: the JSON object, or the form fields of a query request. */
  readonly input: Readonly<Record<string, unknown>>
  readonly at: Date
}

export type FaultKind = Fault['kind']

export type Fault =
  | { readonly kind: 'latency', readonly ms: number }
  | { readonly kind: 'throttle' }
  | { readonly kind: 'error500' }
  | { readonly kind: 'reset' }
  /** A body the SDK cannot parse (a proxy's HTML page), with `status` (default 200). */
  | { readonly kind: 'malformed', readonly status?: number }
  /**
   * A proxy's own answer: `status`, none of AWS's headers (no request id), and an empty body, or
   * with `page` an HTML one.
   */
  | { readonly kind: 'proxy', readonly status: number, readonly page?: boolean }
  | { readonly kind: 'expiredCredentials' }
  /** An AWS error of the test's choosing: its code (`__type`), HTTP status and message. */
  | { readonly kind: 'awsError', readonly code: string, readonly status: number, readonly message?: string }
  /** A well-formed answer of the test's own (JSON services), 200, with AWS's headers. */
  | { readonly kind: 'answer', readonly body: unknown }
  | { readonly kind: 'hang' }

export interface InjectOptions {
  /** Only calls of this operation (e.g. `GetSecretValue`); any operation when absent. */
  operation?: string
  /** Only calls to this service. */
  service?: FakeService
  /** How many calls the fault hits before it retires; default Infinity. */
  times?: number
  match?: (call: FakeAwsCall) => boolean
}

/** What `inject` hands back: how often the fault fired, and a way to retire it early. */
export interface FaultHandle {
  readonly hits: number
  remove (): void
}

/** What a denial predicate sees: the IAM action and every name the resource goes by. */
export interface AccessRequest {
  readonly service: FakeService
  /** IAM action, e.g. `secretsmanager:GetSecretValue`. */
  readonly action: string
  /** The resource ARN (for a resource that does not exist: the id as asked). */
  readonly arn: string
  /** Names the resource goes by: name and ARN; for KMS also key id, aliases and alias ARNs. */
  readonly names: readonly string[]
  readonly call: FakeAwsCall
}

export interface PutSecretInput {
  name: string
  secretString?: string
  secretBinary?: Uint8Array
  /** Default: a random UUID. */
  versionId?: string
  /** Default `['AWSCURRENT']`. Labels move to this version from any other version. */
  versionStages?: string[]
  createdDate?: Date
  /** A customer KMS key (id, ARN or alias): reads fail with DecryptionFailure while it is unusable. */
  kmsKeyId?: string
}

export interface PutSecretResult {
  arn: string
  versionId: string
}

export type ParameterType = 'String' | 'StringList' | 'SecureString'

export interface PutParameterInput {
  name: string
  value: string
  type: ParameterType
  /** Labels for the new version; each moves here from any older version. */
  labels?: string[]
  /** Default `text`. */
  dataType?: string
  lastModifiedDate?: Date
}

export interface CreateKeyInput {
  /** `alias/NAME` or just `NAME`. */
  alias?: string
  /** Default true. */
  enabled?: boolean
  description?: string
}

export interface FakeAwsOptions {
  /** Default `us-east-1`; used in every ARN the fake makes. */
  region?: string
  /** Default `123456789012`. */
  accountId?: string
  /** The identity STS reports and AccessDenied messages name. */
  callerArn?: string
  /**
   * Access key id → secret access key. When given, only these keys are accepted and every
   * signature is verified (SignatureDoesNotMatch otherwise); when absent, any signed request is.
   */
  credentials?: Readonly<Record<string, string>>
}
