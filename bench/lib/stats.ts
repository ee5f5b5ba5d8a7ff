/** Small statistics helpers: medians and percentiles over plain arrays. */

export function median (values: readonly number[]): number {
  return quantile([...values].sort((a, b) => a - b), 0.5)
}

/** The q-quantile (0..1) of already sorted values, nearest-rank; NaN when empty. */
export function quantile (sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[rank] ?? Number.NaN
}

export interface Percentiles {
  count: number
  p50: number
  p90: number
  p99: number
  p999: number
  max: number
  mean: number
}

/** Percentiles of `values` (sorts a copy). */
export function percentiles (values: ArrayLike<number>): Percentiles {
  const sorted = Float64Array.from(values).sort()
  let sum = 0
  for (const v of sorted) sum += v
  return {
    count: sorted.length,
    p50: quantile(sorted, 0.5),
    p90: quantile(sorted, 0.9),
    p99: quantile(sorted, 0.99),
    p999: quantile(sorted, 0.999),
    max: sorted.length === 0 ? Number.NaN : (sorted[sorted.length - 1] ?? Number.NaN),
    mean: sorted.length === 0 ? Number.NaN : sum / sorted.length
  }
}

export function round (value: number, digits = 3): number {
  const f = 10 ** digits
  return Math.round(value * f) / f
}

/** A growable Float64Array, for latency samples without boxing. */
export class Samples {
  #data = new Float64Array(1 << 16)
  #length = 0
  push (value: number): void {
    if (this.#length === this.#data.length) {
      const next = new Float64Array(this.#data.length * 2)
      next.set(this.#data)
      this.#data = next
    }
    this.#data[this.#length++] = value
  }

  get length (): number { return this.#length }
  values (): Float64Array { return this.#data.subarray(0, this.#length) }
}
