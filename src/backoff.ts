/**
 * The pause before retry number `attempt` (0 for the first retry): `firstMs`, doubling with each
 * attempt, never more than `capMs`.
 */
export function backoffMs (attempt: number, firstMs: number, capMs: number): number {
  return Math.min(capMs, firstMs * 2 ** Math.min(Math.max(attempt, 0), 30))
}

/** `ms` with equal jitter (from half of it to all of it), so that many retries spread out. */
export function jittered (ms: number, random: () => number = Math.random): number {
  return ms / 2 + (ms / 2) * random()
}
