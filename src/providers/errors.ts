/**
 * The one error vocabulary every provider speaks. Providers translate whatever their backend
 * says into these classes; the server maps each class to an HTTP status (src/server/errors.ts)
 * and the cache decides from `transient` whether a stale value may still be served.
 *
 * Messages are written by us, never copied from upstream: an AWS message can name ARNs, account
 * ids and roles that the caller did not send. The upstream error travels as `cause`, for logs.
 */

export interface ProviderErrorOptions {
  /** AWS-style code sent to the client as `__type`; defaults per class. */
  code?: string
  cause?: unknown
}

export abstract class ProviderError extends Error {
  /** AWS-style error code, sent to clients as `__type`. */
  readonly code: string
  /**
   * True for failures that say nothing about the value itself (throttling, 5xx, network,
   * timeouts): a cached value may be served stale through them. False for authoritative
   * answers (not found, access denied), which must stop a value being served.
   */
  abstract readonly transient: boolean

  constructor (message: string, defaultCode: string, options: ProviderErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = options.code ?? defaultCode
  }
}

/** The secret, version, parameter, label or key does not exist. */
export class NotFoundError extends ProviderError {
  override readonly name = 'NotFoundError'
  readonly transient = false
  constructor (message = 'The requested resource was not found.', options?: ProviderErrorOptions) {
    super(message, 'ResourceNotFoundException', options)
  }
}

/** The caller's credentials may not read this, or the KMS key is disabled or refuses use. */
export class AccessDeniedError extends ProviderError {
  override readonly name = 'AccessDeniedError'
  readonly transient = false
  constructor (message = 'Access to the requested resource is denied.', options?: ProviderErrorOptions) {
    super(message, 'AccessDeniedException', options)
  }
}

/**
 * The agent's own AWS credentials are expired or invalid. It says nothing about the value (the
 * credential chain renews them, or an operator does), so it is transient: cached values keep
 * being served stale rather than every secret being dropped at once. Answered 403 when nothing
 * is cached.
 */
export class CredentialsError extends ProviderError {
  override readonly name = 'CredentialsError'
  readonly transient = true
  constructor (message = "The agent's AWS credentials are invalid or expired.", options?: ProviderErrorOptions) {
    super(message, 'ExpiredTokenException', options)
  }
}

/** The request itself is wrong (AWS validation errors, a malformed ciphertext, a bad path). */
export class InvalidRequestError extends ProviderError {
  override readonly name = 'InvalidRequestError'
  readonly transient = false
  constructor (message: string, options?: ProviderErrorOptions) {
    super(message, 'ValidationException', options)
  }
}

/** KMS's words for a ciphertext it cannot open, shared by every place that refuses one. */
export const INVALID_CIPHERTEXT_MESSAGE = 'The ciphertext is invalid, was altered, or does not match the encryption context.'

/** A ciphertext KMS would refuse, as KMS's `InvalidCiphertextException`. */
export function invalidCiphertext (options?: Omit<ProviderErrorOptions, 'code'>): InvalidRequestError {
  return new InvalidRequestError(INVALID_CIPHERTEXT_MESSAGE, { ...options, code: 'InvalidCiphertextException' })
}

/** Upstream throttled the call. */
export class ThrottledError extends ProviderError {
  override readonly name = 'ThrottledError'
  readonly transient = true
  /** Seconds after which a retry may succeed, when upstream said so. */
  readonly retryAfterSeconds: number
  constructor (message = 'The upstream service throttled the request.', options?: ProviderErrorOptions & { retryAfterSeconds?: number }) {
    super(message, 'ThrottlingException', options)
    this.retryAfterSeconds = options?.retryAfterSeconds ?? 1
  }
}

/** Upstream failed: a 5xx, a network failure, an answer that could not be understood. */
export class UpstreamError extends ProviderError {
  override readonly name = 'UpstreamError'
  readonly transient = true
  constructor (message = 'The upstream service failed to answer.', options?: ProviderErrorOptions) {
    super(message, 'ServiceUnavailableException', options)
  }
}

/** Upstream did not answer within the configured timeout. */
export class UpstreamTimeoutError extends ProviderError {
  override readonly name: string = 'UpstreamTimeoutError'
  readonly transient = true
  constructor (message = 'The upstream service did not answer in time.', options?: ProviderErrorOptions) {
    super(message, 'UpstreamTimeoutException', options)
  }
}

/**
 * The call was ended by its caller before upstream answered (the agent stopping, the cache
 * dropping the value it was for, a client gone): answered as a timeout, counted apart from one.
 */
export class CancelledError extends UpstreamTimeoutError {
  override readonly name: string = 'CancelledError'
}

export function isProviderError (error: unknown): error is ProviderError {
  return error instanceof ProviderError
}
