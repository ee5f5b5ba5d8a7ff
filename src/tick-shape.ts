import { executionAsyncResource } from 'node:async_hooks'

/** The tick object held, once holdTickShape has run. */
const held: object[] = []

/**
 * Keeps one of `process.nextTick`'s tick objects alive for as long as the process runs.
 *
 * Node builds each tick object as an object literal with computed symbol keys, and V8 holds the
 * hidden classes (maps) that literal goes through only weakly. A tick object lives a moment, so a
 * full garbage collection that finds none alive drops those maps, and the next tick object makes
 * new ones. After a few such collections the inline caches that define its properties give up
 * (megamorphic), and from then on every tick (about 15 a request, in Node's HTTP and stream
 * code) defines its properties in V8's runtime. A cached read then costs about 30 % more CPU,
 * for the rest of the process's life.
 *
 * A bare server runs almost no full collections and never shows it; the agent, a larger heap with
 * a capped old generation, did in 7 of 8 starts (docs/bench/findings.md). One tick object held
 * keeps its maps, and so the caches, as they are. Node 20 and Node 24 both behave this way
 * (test/unit/tick-shape.test.ts).
 */
export function holdTickShape (): void {
  if (held.length > 0) return
  // Inside a tick's callback, the execution resource is that tick's object.
  process.nextTick(() => {
    if (held.length === 0) held.push(executionAsyncResource())
  })
}
