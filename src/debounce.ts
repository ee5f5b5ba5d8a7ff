import { performance } from 'node:perf_hooks'

/**
 * Runs a task once change events go quiet: `quietMs` after the last event, and never later than
 * `maxMs` after the first event it has not yet run for. The cap matters for a watched directory
 * that never goes quiet (a log written beside the watched file every few milliseconds): without
 * it, each event would put the task off again, for ever. An event after the task has started
 * schedules it again, so the last change is always seen.
 */
export class Debounce {
  readonly #task: () => void
  readonly #quietMs: number
  readonly #maxMs: number
  readonly #now: () => number
  #timer: NodeJS.Timeout | undefined
  /** When the pending run must start at the latest (on `#now`'s clock). */
  #due = 0

  /**
   * `now` is a monotonic clock (the default): the wall clock stepped back by NTP would move the
   * cap out by as much. Tests give a mocked `Date.now`.
   */
  constructor (task: () => void, quietMs: number, maxMs = 10 * quietMs, now: () => number = () => performance.now()) {
    this.#task = task
    this.#quietMs = quietMs
    this.#maxMs = Math.max(quietMs, maxMs)
    this.#now = now
  }

  /** A change happened: run the task once things are quiet, or at the cap. */
  poke (): void {
    const now = this.#now()
    if (this.#timer === undefined) this.#due = now + this.#maxMs
    else clearTimeout(this.#timer)
    this.#timer = setTimeout(this.#run, Math.max(0, Math.min(this.#quietMs, this.#due - now)))
    // A pending re-read never keeps the process alive.
    this.#timer.unref()
  }

  /** Forgets a pending run. */
  cancel (): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  readonly #run = (): void => {
    this.#timer = undefined
    this.#task()
  }
}
