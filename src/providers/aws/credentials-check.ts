import { GetCallerIdentityCommand, type STSClient } from '@aws-sdk/client-sts'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from 'pino'
import { backoffMs } from '../../backoff.js'
import { CredentialsError, isProviderError, type ProviderError } from '../errors.js'
import { callAws } from './call.js'
import type { RegionalClients } from './clients.js'
import { CREDENTIALS_UNAVAILABLE, REGION_MISSING, malformedAnswer, toProviderError } from './errors.js'

export interface CredentialsCheckOptions {
  clients: RegionalClients<STSClient>
  /** Off: only the region is checked (SMA's `validate_credentials = false`). */
  validateCredentials: boolean
  timeoutMs: number
  logger: Logger
  /** First and longest pause between attempts after a transient failure. */
  backoffMs?: readonly [number, number]
}

/** Not ready, with a reason `/ready` may show: our words, no ARNs. */
export class NotReadyError extends Error {
  override readonly name = 'NotReadyError'
}

/**
 * What `/ready` waits for with the aws provider: a region, and (unless turned off) credentials
 * that STS GetCallerIdentity accepts. A transient failure (throttling, 5xx, network, timeout) is
 * retried with capped backoff until it succeeds or `signal` aborts, so a network blip at start
 * does not leave the agent unready for good; an authoritative one (expired or invalid
 * credentials, no credentials at all, no region) rejects at once with the reason.
 */
export async function checkCredentials (options: CredentialsCheckOptions, signal: AbortSignal): Promise<void> {
  const [first, longest] = options.backoffMs ?? [1000, 30_000]
  for (let attempt = 0; ; attempt += 1) {
    try {
      await checkOnce(options, signal)
      return
    } catch (caught) {
      const error = isProviderError(caught) ? caught : toProviderError(caught, 'sts')
      if (signal.aborted) throw new NotReadyError('The provider was closed before its credentials were checked.', { cause: error })
      if (!retryable(error)) throw new NotReadyError(reasonFor(error), { cause: error })
      const pause = backoffMs(attempt, first, longest)
      options.logger.warn({ code: error.code, retryInMs: pause }, 'checking AWS credentials failed transiently; retrying')
      await sleep(pause, undefined, { signal, ref: false }).catch(() => {})
    }
  }
}

async function checkOnce (options: CredentialsCheckOptions, signal: AbortSignal): Promise<void> {
  const region = await options.clients.defaultRegion()
  if (!options.validateCredentials) {
    options.logger.info({ region }, 'AWS credentials not checked (validate_credentials is off)')
    return
  }
  const identity = await callAws('sts', options.timeoutMs, signal, async (abortSignal) =>
    options.clients.default.send(new GetCallerIdentityCommand({}), { abortSignal }))
  // The SDK answers a 200 with an empty or foreign XML document as a success with every field
  // undefined: an answer without the account is no proof of anything.
  if (identity.Account === undefined || identity.Account === '') throw malformedAnswer('sts', 'the account of the caller')
  // Operators want to see which role the agent runs as; the log is theirs, not the clients'.
  options.logger.info({ region, account: identity.Account, arn: identity.Arn }, 'AWS credentials checked')
}

/** Missing credentials or region are transient for a data call (serve stale), not at start. */
const SETUP_PROBLEMS: ReadonlySet<string> = new Set([CREDENTIALS_UNAVAILABLE, REGION_MISSING])

/**
 * Expired or invalid credentials are transient for a data call (cached values stay in service
 * while they are renewed) but, at start, a reason to report not ready at once.
 */
function retryable (error: ProviderError): boolean {
  return error.transient && !SETUP_PROBLEMS.has(error.code) && !(error instanceof CredentialsError)
}

function reasonFor (error: ProviderError): string {
  return SETUP_PROBLEMS.has(error.code) ? error.message : `${error.message} (${error.code})`
}
