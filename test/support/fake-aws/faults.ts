import { AwsError } from './errors.js'
import type { FakeAwsCall, FakeService, Fault, FaultHandle, InjectOptions } from './types.js'

export type TerminalFault = Exclude<Fault, { kind: 'latency' }>

interface Entry {
  readonly fault: Fault
  readonly options: InjectOptions
  remaining: number
  hits: number
}

/** What the faults matching one call add up to: a delay, then maybe a fault instead of the answer. */
export interface FaultPlan {
  readonly latencyMs: number
  readonly fault: TerminalFault | undefined
}

/**
 * Faults injected by a test, in the order injected. Every matching latency applies (latency
 * composes with whatever answer follows); of the other kinds only the first matching one fires,
 * and only the one that fires uses up one of its `times`.
 */
export class FaultSet {
  #entries: Entry[] = []

  add (fault: Fault, options: InjectOptions = {}): FaultHandle {
    if (fault.kind === 'latency' && !(fault.ms >= 0)) throw new Error('fake AWS: latency needs ms >= 0')
    const entry: Entry = { fault, options, remaining: options.times ?? Infinity, hits: 0 }
    this.#entries.push(entry)
    return {
      get hits () { return entry.hits },
      remove: () => { this.#entries = this.#entries.filter((other) => other !== entry) }
    }
  }

  clear (): void {
    this.#entries = []
  }

  take (call: FakeAwsCall): FaultPlan {
    let latencyMs = 0
    let fault: TerminalFault | undefined
    for (const entry of this.#entries) {
      if (!matches(entry, call)) continue
      if (entry.fault.kind === 'latency') latencyMs += entry.fault.ms
      else if (fault === undefined) fault = entry.fault
      else continue
      entry.remaining -= 1
      entry.hits += 1
    }
    this.#entries = this.#entries.filter((entry) => entry.remaining > 0)
    return { latencyMs, fault }
  }
}

function matches ({ options, remaining }: Entry, call: FakeAwsCall): boolean {
  return remaining > 0 &&
    (options.operation === undefined || options.operation === call.operation) &&
    (options.service === undefined || options.service === call.service) &&
    (options.match === undefined || options.match(call))
}

/** Each service's own name for its internal error, as its API model lists it. */
const INTERNAL_ERRORS: Readonly<Record<FakeService | 'unknown', string>> = {
  secretsmanager: 'InternalServiceError',
  ssm: 'InternalServerError',
  kms: 'KMSInternalException',
  sts: 'InternalFailure',
  unknown: 'InternalFailure'
}

/** The error a fault that answers with an AWS error stands for. */
export function faultError (kind: 'throttle' | 'error500' | 'expiredCredentials', service: FakeService | 'unknown'): AwsError {
  switch (kind) {
    case 'throttle':
      return new AwsError('ThrottlingException', 'Rate exceeded')
    case 'error500':
      return new AwsError(INTERNAL_ERRORS[service], 'An internal error occurred. Try again later.', 500)
    case 'expiredCredentials':
      return new AwsError('ExpiredTokenException', 'The security token included in the request is expired')
  }
}
