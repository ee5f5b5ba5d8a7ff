/**
 * AWS errors in the provider vocabulary (../errors.ts). Every message here is ours: AWS's own
 * text names principal ARNs, account ids, roles and key ARNs the caller never sent, so it only
 * travels as the `cause`, for logs. The `code` stays AWS's, since clients written for the Lambda
 * extension compare `__type` against it.
 */
import {
  AccessDeniedError, CredentialsError, INVALID_CIPHERTEXT_MESSAGE, InvalidRequestError, NotFoundError, ThrottledError,
  UpstreamError, UpstreamTimeoutError, isProviderError, type ProviderError
} from '../errors.js'

export type AwsService = 'secretsmanager' | 'ssm' | 'kms' | 'sts'

/** Our error code when the credential chain found nothing usable (no AWS code exists for it). */
export const CREDENTIALS_UNAVAILABLE = 'CredentialsUnavailableException'
/** Our error code when no region is configured anywhere the SDK looks. */
export const REGION_MISSING = 'RegionMissingException'

/** How messages name each service. */
export const SERVICE_NAMES: Readonly<Record<AwsService, string>> = {
  secretsmanager: 'Secrets Manager',
  ssm: 'Parameter Store',
  kms: 'KMS',
  sts: 'STS'
}

type Make = (service: AwsService, code: string, cause: unknown) => ProviderError

const notFound = (message: string): Make => (_service, code, cause) => new NotFoundError(message, { code, cause })
const denied = (message: string): Make => (_service, code, cause) => new AccessDeniedError(message, { code, cause })
const invalid = (message: string): Make => (_service, code, cause) => new InvalidRequestError(message, { code, cause })

const credentialsInvalid: Make = (_service, code, cause) => new CredentialsError("The agent's AWS credentials are invalid or expired; renew them (for example `aws sso login`) or check the task or pod role.", { code, cause })

const clockSkewed: Make = (_service, code, cause) => new CredentialsError("AWS refused the request's signing time: this machine's clock is more than 5 minutes off.", { code, cause })

const accessDenied: Make = (service, code, cause) => new AccessDeniedError(
  service === 'kms'
    ? "The agent's AWS identity is not allowed to use this KMS key."
    : `The agent's AWS identity is not allowed to read this ${service === 'ssm' ? 'parameter' : 'secret'}.`,
  { code, cause }
)

const throttled: Make = (service, code, cause) => new ThrottledError(
  `${SERVICE_NAMES[service]} throttled the request; retry shortly.`,
  { code, cause, retryAfterSeconds: retryAfterOf(cause) }
)

const refused: Make = (service, code, cause) => new InvalidRequestError(
  `${SERVICE_NAMES[service]} refused the request as not valid: check the id, name, path, version, label or key given.`,
  { code, cause }
)

/**
 * The codes AWS answers with, by what they mean. Codes not listed fall back on the HTTP status
 * (see `toProviderError`).
 */
const BY_CODE: Readonly<Record<string, Make>> = {
  // Not found.
  ResourceNotFoundException: notFound("Secrets Manager can't find the specified secret or secret version."),
  ParameterNotFound: notFound('The parameter was not found.'),
  ParameterVersionNotFound: notFound('The requested parameter version or label was not found.'),
  NotFoundException: notFound('The KMS key or alias was not found.'),

  // Authoritative refusals: the value must stop being served.
  AccessDeniedException: accessDenied,
  AccessDenied: accessDenied,
  KMSAccessDeniedException: denied('The KMS key that protects the value may not be used by the agent.'),
  DecryptionFailure: denied('Secrets Manager could not decrypt the secret: the KMS key that protects it is disabled or may not be used by the agent.'),
  InvalidKeyId: denied('Parameter Store could not decrypt the parameter: the KMS key that protects it is disabled or may not be used by the agent.'),
  DisabledException: denied('The KMS key is disabled.'),
  KMSDisabledException: denied('The KMS key is disabled.'),
  KMSInvalidStateException: denied('The KMS key is not in a usable state (disabled, pending deletion or pending import).'),
  KeyUnavailableException: (_service, code, cause) => new UpstreamError('The KMS key is unavailable right now; retry shortly.', { code, cause }),

  // Credential problems: 403 with a message that says so; transient, so cached values are kept.
  UnrecognizedClientException: credentialsInvalid,
  InvalidClientTokenId: credentialsInvalid,
  ExpiredTokenException: credentialsInvalid,
  ExpiredToken: credentialsInvalid,
  InvalidSignatureException: credentialsInvalid,
  SignatureDoesNotMatch: credentialsInvalid,
  IncompleteSignature: credentialsInvalid,
  IncompleteSignatureException: credentialsInvalid,
  MissingAuthenticationToken: credentialsInvalid,
  MissingAuthenticationTokenException: credentialsInvalid,
  InvalidAccessKeyId: credentialsInvalid,
  AuthFailure: credentialsInvalid,
  // The request's signing time is too far from AWS's: the machine's clock, not the secret.
  RequestExpired: clockSkewed,
  RequestTimeTooSkewed: clockSkewed,

  // Throttling: the SDK's own list (@smithy/core retry), so what it retries is what we call throttled.
  ThrottlingException: throttled,
  Throttling: throttled,
  TooManyRequestsException: throttled,
  RequestLimitExceeded: throttled,
  ThrottledException: throttled,
  RequestThrottled: throttled,
  RequestThrottledException: throttled,
  LimitExceededException: throttled,
  ProvisionedThroughputExceededException: throttled,
  SlowDown: throttled,
  BandwidthLimitExceeded: throttled,

  // The request itself is wrong.
  ValidationException: refused,
  InvalidParameterException: refused,
  InvalidParameterValue: refused,
  ParameterVersionLabelLimitExceeded: refused,
  UnsupportedParameterType: refused,
  InvalidRequestException: invalid("Secrets Manager refused the request in the secret's current state (for example, it is scheduled for deletion)."),
  InvalidCiphertextException: invalid(INVALID_CIPHERTEXT_MESSAGE),
  IncorrectKeyException: invalid('The ciphertext was not encrypted under the KMS key given in KeyId.'),
  InvalidKeyUsageException: invalid('The KMS key cannot be used for this operation or encryption algorithm.'),
  InvalidGrantTokenException: invalid('A grant token given is not valid.')
}

/** Node's codes for a connection that failed or broke: the network, not the request. */
const NETWORK_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND',
  'EAI_AGAIN', 'ECONNABORTED', 'EPROTO', 'ERR_SSL_WRONG_VERSION_NUMBER'
])

/** Node's codes for a server certificate it does not trust: a trust store problem, not AWS's. */
const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID'
])

/** What an SDK error carries besides its name, read defensively: it may be anything thrown. */
interface SdkErrorFacts {
  name: string
  code: string | undefined
  status: number | undefined
  fault: string | undefined
  throttling: boolean
  message: string
  /** The answer's x-amzn-RequestId: AWS sends one with every answer, a proxy's page has none. */
  requestId: string | undefined
}

function factsOf (error: unknown): SdkErrorFacts {
  const record = (typeof error === 'object' && error !== null ? error : {}) as Record<string, unknown>
  const metadata = record.$metadata as { httpStatusCode?: unknown, requestId?: unknown } | undefined
  const retryable = record.$retryable as { throttling?: unknown } | undefined
  return {
    name: typeof record.name === 'string' ? record.name : '',
    code: typeof record.code === 'string' ? record.code : undefined,
    status: typeof metadata?.httpStatusCode === 'number' ? metadata.httpStatusCode : undefined,
    fault: typeof record.$fault === 'string' ? record.$fault : undefined,
    throttling: retryable?.throttling === true,
    message: typeof record.message === 'string' ? record.message : '',
    requestId: typeof metadata?.requestId === 'string' && metadata.requestId !== '' ? metadata.requestId : undefined
  }
}

/**
 * Translates anything an SDK call threw into the provider vocabulary, with the original as
 * `cause`. Provider errors pass through unchanged.
 */
export function toProviderError (error: unknown, service: AwsService): ProviderError {
  if (isProviderError(error)) return error
  const facts = factsOf(error)
  const known = BY_CODE[facts.name]
  if (known !== undefined) return known(service, facts.name, error)

  const upstream = SERVICE_NAMES[service]
  if (facts.code !== undefined && NETWORK_CODES.has(facts.code)) {
    // Checked before the name: the SDK names a reset connection `TimeoutError`.
    return new UpstreamError(`The connection to ${upstream} failed (${facts.code}).`, { code: 'NetworkingError', cause: error })
  }
  if (facts.code !== undefined && TLS_CODES.has(facts.code)) {
    return new UpstreamError(`The TLS certificate of the ${upstream} endpoint is not trusted (${facts.code}); AWS_CA_BUNDLE names the certificates to trust.`, { code: 'TlsError', cause: error })
  }
  if (facts.name === 'AbortError' || facts.name === 'TimeoutError' || facts.name === 'RequestTimeout' || facts.name === 'RequestTimeoutException') {
    return new UpstreamTimeoutError(`${upstream} did not answer in time.`, { cause: error })
  }
  if (facts.throttling || facts.status === 429) return throttled(service, facts.name || 'ThrottlingException', error)
  if (facts.name === 'CredentialsProviderError') return credentialsUnavailable(error)
  if (facts.message === 'Region is missing') {
    return new UpstreamError('No AWS region is configured: set `region`, AWS_REGION, or use a profile that has one.', { code: REGION_MISSING, cause: error })
  }
  if (facts.fault === 'server' || (facts.status !== undefined && facts.status >= 500)) {
    return new UpstreamError(`${upstream} failed to answer (HTTP ${facts.status ?? 500}).`, { code: facts.name || 'ServiceUnavailableException', cause: error })
  }
  if ((facts.status !== undefined && facts.status >= 200 && facts.status < 300) || facts.name === 'SyntaxError' || error instanceof SyntaxError) {
    // A body the SDK could not parse, whatever its status: not AWS's (its errors are JSON or
    // XML it reads), but a proxy's error page (a 403 or 407 from a corporate proxy), a captive
    // portal, a truncated answer. Transient: nothing was said about the secret, so the cache
    // keeps what it holds, where a 403 read as AWS's would drop it.
    return new UpstreamError(`${upstream} sent an answer that could not be understood.`, { code: 'UnparseableResponse', cause: error })
  }
  if (facts.status !== undefined && facts.status >= 400 && facts.requestId === undefined) {
    // A refusal that is not AWS's: no error code AWS uses, and no request id, which AWS gives
    // every answer. Something between the agent and AWS answered (an empty 403 or 407 from a
    // proxy). Transient, like an unparseable page: it says nothing of the secret.
    return new UpstreamError(`An answer came instead of ${upstream}'s (HTTP ${facts.status}), from something between the agent and AWS.`, { code: 'UnexpectedResponse', cause: error })
  }
  if (facts.status === 403) return accessDenied(service, facts.name || 'AccessDeniedException', error)
  if (facts.status !== undefined && facts.status >= 400) return refused(service, facts.name || 'ValidationException', error)
  return new UpstreamError(`The call to ${upstream} failed.`, { cause: error })
}

/**
 * Whatever the credential chain threw: no source worked, or one failed (STS refusing a web
 * identity or a role to assume, IDPCommunicationError, a container endpoint down). Transient on
 * purpose: it says nothing of the secret asked for, so the cache keeps the values it holds; read
 * as an answer about the secret, an STS 400 or 403 would drop them.
 */
export function credentialsUnavailable (cause: unknown): UpstreamError {
  const name = factsOf(cause).name
  const source = name === '' || name === 'CredentialsProviderError' ? 'no source in the chain worked' : `the credential source failed with ${name}`
  return new UpstreamError(`The agent could not obtain AWS credentials: ${source} (environment, profile or SSO session, web identity, container, instance). For an SSO profile, run \`aws sso login\`.`, { code: CREDENTIALS_UNAVAILABLE, cause })
}

/**
 * The provider error an error code stands for, as reported inside a successful answer
 * (BatchGetSecretValue's `Errors`), for its code and message.
 */
export function errorForCode (code: string, service: AwsService): ProviderError {
  const known = BY_CODE[code]
  if (known !== undefined) return known(service, code, undefined)
  return new UpstreamError(`${SERVICE_NAMES[service]} could not return this value.`, { code })
}

/** Seconds from a `Retry-After` header on the SDK's raw response, when AWS sent one. */
function retryAfterOf (error: unknown): number | undefined {
  const response = (typeof error === 'object' && error !== null ? Reflect.get(error, '$response') : undefined) as { headers?: Record<string, string> } | undefined
  const value = response?.headers?.['retry-after']
  if (value === undefined) return undefined
  const seconds = Number(value)
  return Number.isFinite(seconds) && seconds >= 0 ? seconds : undefined
}

/** The result's fields the provider needs are missing: the answer is not one we understand. */
export function malformedAnswer (service: AwsService, what: string): UpstreamError {
  return new UpstreamError(`${SERVICE_NAMES[service]} sent an answer without ${what}.`, { code: 'UnparseableResponse' })
}
