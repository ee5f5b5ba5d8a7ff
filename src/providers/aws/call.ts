import { eitherSignal } from '../../abort.js'
import { CancelledError, UpstreamTimeoutError, type ProviderError } from '../errors.js'
import { SERVICE_NAMES, toProviderError, type AwsService } from './errors.js'

/**
 * Runs one provider operation against AWS under a deadline: `timeoutMs` (0 = none) combined with
 * the caller's signal, handed to the SDK as its `abortSignal`. Whatever fails comes out in the
 * provider vocabulary.
 *
 * The deadline covers the whole operation (credential resolution, the SDK's retries), so the call
 * is also raced against the signal: the SDK only watches it while a request is on the wire.
 */
export async function callAws<T> (
  service: AwsService,
  timeoutMs: number,
  callerSignal: AbortSignal | undefined,
  operation: (abortSignal: AbortSignal | undefined) => Promise<T>
): Promise<T> {
  const deadline = timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : undefined
  const signal = eitherSignal(callerSignal, deadline)
  try {
    return await raceAbort(operation(signal), signal)
  } catch (error) {
    if (deadline?.aborted === true) throw timeoutError(service, `did not answer within ${timeoutMs} ms`, error)
    if (callerSignal?.aborted === true) {
      // A caller's own deadline (AbortSignal.timeout: an envelope decrypt's, a walk's) is a timeout too.
      if ((callerSignal.reason as { name?: unknown } | undefined)?.name === 'TimeoutError') throw timeoutError(service, 'did not answer in the time its caller gave', error)
      throw new CancelledError(`${SERVICE_NAMES[service]} call was cancelled before it answered.`, { cause: error })
    }
    throw toProviderError(error, service)
  }
}

function timeoutError (service: AwsService, what: string, cause: unknown): ProviderError {
  return new UpstreamTimeoutError(`${SERVICE_NAMES[service]} ${what}.`, { cause })
}

/** Rejects as soon as `signal` aborts, whatever `promise` is doing; leaves no listener behind. */
async function raceAbort<T> (promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise
  // The losing promise must not turn into an unhandled rejection later.
  promise.catch(() => {})
  if (signal.aborted) throw abortReason(signal)
  let onAbort: (() => void) | undefined
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => { reject(abortReason(signal)) }
    signal.addEventListener('abort', onAbort, { once: true })
  })
  try {
    return await Promise.race([promise, aborted])
  } finally {
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort)
  }
}

function abortReason (signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('The operation was aborted.', 'AbortError')
}
