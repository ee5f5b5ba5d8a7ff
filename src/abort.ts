/** A signal that aborts when either does; either one alone when the other is absent. */
export function eitherSignal (a: AbortSignal | undefined, b: AbortSignal): AbortSignal
export function eitherSignal (a: AbortSignal | undefined, b: AbortSignal | undefined): AbortSignal | undefined
export function eitherSignal (a: AbortSignal | undefined, b: AbortSignal | undefined): AbortSignal | undefined {
  if (a === undefined) return b
  if (b === undefined) return a
  return AbortSignal.any([a, b])
}
