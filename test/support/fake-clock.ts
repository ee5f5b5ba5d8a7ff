/**
 * A clock for the cache's `now` option: time moves only when a test says so, and `sleep()`
 * promises resolve as it passes them (so an upstream "taking 300 ms" takes no real time).
 */
export class FakeClock {
  #now = 1_000_000
  #sleepers: Array<{ at: number, resolve: () => void }> = []

  readonly now = (): number => this.#now

  sleep (ms: number): Promise<void> {
    return new Promise((resolve) => { this.#sleepers.push({ at: this.#now + ms, resolve }) })
  }

  /** Moves time forward, waking sleepers in order and letting their continuations run. */
  async advance (ms: number): Promise<void> {
    const target = this.#now + ms
    for (;;) {
      this.#sleepers.sort((a, b) => a.at - b.at)
      const next = this.#sleepers[0]
      if (next === undefined || next.at > target) break
      this.#sleepers.shift()
      this.#now = Math.max(this.#now, next.at)
      next.resolve()
      await settle()
    }
    this.#now = target
    await settle()
  }
}

/** Lets pending promise chains run to completion (a few macrotask turns). */
export async function settle (): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve))
}
