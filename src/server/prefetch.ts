import { setTimeout as wait } from 'node:timers/promises'
import type { Logger } from 'pino'
import { backoffMs, jittered } from '../backoff.js'
import { isProviderError } from '../providers/errors.js'
import type { Reads } from './reads.js'

export interface PrefetchList {
  secrets: readonly string[]
  /** Read with decryption. */
  parameters: readonly string[]
  /** Read recursively, with decryption. */
  parameterPaths: readonly string[]
}

export interface PrefetchOptions {
  /** Longest that transient failures hold readiness. */
  timeoutMs: number
  logger: Logger
  /** First retry delay and cap (default 500 ms, 10 s). */
  backoffBaseMs?: number
  backoffMaxMs?: number
  /** Stops retrying (the agent is shutting down). */
  signal?: AbortSignal
}

export interface PrefetchResult {
  loaded: number
  /** Failed authoritatively (not found, denied, invalid): logged as errors, not retried. */
  failed: number
  /** Still failing transiently, or still loading, at the deadline. */
  timedOut: number
}

/**
 * Loads the `[prefetch]` items into the cache at start (DESIGN §3). Resolves when every item has
 * loaded or failed authoritatively, or at the timeout, which ends the transient retries and stops
 * waiting for loads still under way.
 */
export async function prefetch (reads: Reads, list: PrefetchList, options: PrefetchOptions): Promise<PrefetchResult> {
  const items: Array<{ kind: string, load: () => Promise<unknown> }> = [
    ...list.secrets.map((id) => ({ kind: 'secret', load: () => reads.secret({ secretId: id }) })),
    ...list.parameters.map((name) => ({ kind: 'parameter', load: () => reads.parameter(name, true) })),
    ...list.parameterPaths.map((path) => ({ kind: 'parameter path', load: () => reads.parametersByPath(path, true, true) }))
  ]
  const deadline = Date.now() + options.timeoutMs
  const base = options.backoffBaseMs ?? 500
  const cap = options.backoffMaxMs ?? 10_000
  const outcomes = await Promise.all(items.map(async (item, index) => {
    let lastCode: string | undefined
    /** At the deadline: still failing (a retry under way counts so) or, never failed, still loading. */
    const timedOut = (): 'timedOut' => {
      if (lastCode !== undefined) options.logger.warn({ kind: item.kind, index, code: lastCode }, 'prefetch still failing at prefetch_timeout_seconds; turning ready without it')
      else options.logger.warn({ kind: item.kind, index }, 'prefetch still loading at prefetch_timeout_seconds; turning ready without it')
      return 'timedOut'
    }
    for (let attempt = 1; ; attempt++) {
      const left = deadline - Date.now()
      if (lastCode !== undefined && (left <= 0 || options.signal?.aborted === true)) return timedOut()
      try {
        // A load still under way at the deadline (a call with no timeout, a long get-by-path
        // walk) does not hold readiness past it: it goes on, and fills the cache when it ends.
        if (await settledWithin(item.load(), left, options.signal) === LATE) return timedOut()
        return 'loaded' as const
      } catch (error) {
        if (!isProviderError(error) || !error.transient) {
          // Ids are logged at debug only; the position in the list says which one at error level.
          options.logger.error({ kind: item.kind, index, code: isProviderError(error) ? error.code : 'Error' }, 'prefetch failed; the item is not cached and does not hold readiness')
          options.logger.debug({ kind: item.kind, index, id: idOf(list, index) }, 'prefetch failure id')
          return 'failed' as const
        }
        lastCode = error.code
        // A retry that would start at the deadline is not made: the item is reported as still
        // failing, with its last code.
        const delay = jittered(backoffMs(attempt - 1, base, cap))
        await sleep(Math.max(0, Math.min(delay, deadline - Date.now())), options.signal)
      }
    }
  }))
  return {
    loaded: outcomes.filter((o) => o === 'loaded').length,
    failed: outcomes.filter((o) => o === 'failed').length,
    timedOut: outcomes.filter((o) => o === 'timedOut').length
  }
}

const LATE = Symbol('late')

/**
 * `promise`'s outcome, or LATE once `ms` have passed or `signal` aborted first (the promise goes
 * on, unheeded).
 */
async function settledWithin<T> (promise: Promise<T>, ms: number, signal?: AbortSignal): Promise<T | typeof LATE> {
  promise.catch(() => {})
  if (signal?.aborted === true) return LATE
  let timer: NodeJS.Timeout | undefined
  let onAbort: (() => void) | undefined
  const late = new Promise<typeof LATE>((resolve) => {
    timer = setTimeout(() => { resolve(LATE) }, Math.max(0, ms))
    onAbort = () => { resolve(LATE) }
    signal?.addEventListener('abort', onAbort, { once: true })
  })
  try {
    return await Promise.race([promise, late])
  } finally {
    clearTimeout(timer)
    if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort)
  }
}

function idOf (list: PrefetchList, index: number): string | undefined {
  return [...list.secrets, ...list.parameters, ...list.parameterPaths][index]
}

/** Resolves after `ms`, or at once when `signal` aborts; its abort listener goes with the timer. */
async function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  await wait(ms, undefined, signal === undefined ? {} : { signal }).catch(() => {})
}
