import assert from 'node:assert/strict'
import { afterEach, beforeEach, describe, it, mock } from 'node:test'
import { Debounce } from '../../src/debounce.js'

/** Moves the mocked clock on a millisecond at a time: a single tick runs its timers with Date.now() already at its end. */
function advance (ms: number): void {
  for (let i = 0; i < ms; i++) mock.timers.tick(1)
}

describe('Debounce', () => {
  let runs: number[]
  let debounce: Debounce
  beforeEach(() => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 })
    runs = []
    debounce = new Debounce(() => { runs.push(Date.now()) }, 50, 500, () => Date.now())
  })
  afterEach(() => { mock.timers.reset() })

  it('runs once, the quiet time after the last of a burst of events', () => {
    for (let i = 0; i < 5; i++) {
      debounce.poke()
      advance(10)
    }
    advance(100)
    assert.deepEqual(runs, [90])
  })

  it('runs at the cap when events never stop, and again at each cap while they go on', () => {
    for (let t = 0; t < 1200; t += 10) {
      debounce.poke()
      advance(10)
    }
    // Events at 0, 10, ..., 1190: capped runs at 500 and 1000 (the first event after the run
    // at 500 came at 500 too), then the quiet time after the last event.
    advance(100)
    assert.deepEqual(runs, [500, 1000, 1240])
  })

  it('runs again for an event that comes after a run has started', () => {
    debounce = new Debounce(() => {
      runs.push(Date.now())
      if (runs.length === 1) debounce.poke()
    }, 50, 500, () => Date.now())
    debounce.poke()
    advance(200)
    assert.deepEqual(runs, [50, 100])
  })

  it('forgets a pending run when cancelled', () => {
    debounce.poke()
    debounce.cancel()
    advance(1000)
    assert.deepEqual(runs, [])
  })

  it('takes a cap below the quiet time as the quiet time', () => {
    debounce = new Debounce(() => { runs.push(Date.now()) }, 50, 10, () => Date.now())
    debounce.poke()
    advance(20)
    debounce.poke()
    advance(100)
    // Capped at 50 ms after the first event, not 50 ms after the last.
    assert.deepEqual(runs, [50])
  })
})
