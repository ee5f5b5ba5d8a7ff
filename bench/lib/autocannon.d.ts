/** The part of autocannon's API the benchmarks use (the package ships no types). */
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events'

  export interface Options {
    url: string
    connections?: number
    duration?: number
    amount?: number
    overallRate?: number
    connectionRate?: number
    pipelining?: number
    timeout?: number
    headers?: Record<string, string>
    method?: string
  }

  export interface Result {
    requests: { total: number, average: number }
    latency: Record<string, number>
    errors: number
    timeouts: number
    non2xx: number
    '2xx': number
    duration: number
    start: Date
    finish: Date
  }

  export interface Instance extends EventEmitter {
    stop (): void
  }

  function autocannon (options: Options, callback: (error: Error | null, result: Result) => void): Instance
  export default autocannon
}
