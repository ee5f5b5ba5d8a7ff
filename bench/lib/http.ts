/** A minimal HTTP client for the benches' own requests (not the load: that is wrk and autocannon). */
import { Agent, request, type IncomingHttpHeaders } from 'node:http'

export interface Answer {
  status: number
  headers: IncomingHttpHeaders
  body: Buffer
  /** Time from sending to the last byte, ms. */
  ms: number
}

/** GET `url`; rejects on a network error or after `timeoutMs`. */
export async function get (url: string, headers: Record<string, string> = {}, options: { agent?: Agent | false, timeoutMs?: number, method?: string, body?: string } = {}): Promise<Answer> {
  const started = performance.now()
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method ?? 'GET', headers, agent: options.agent ?? false, timeout: options.timeoutMs ?? 10_000 }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), ms: performance.now() - started }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`timeout after ${options.timeoutMs ?? 10_000} ms: ${url}`)))
    req.on('error', reject)
    req.end(options.body)
  })
}

/** POST a JSON body. */
export async function postJson (url: string, body: unknown, headers: Record<string, string> = {}, agent: Agent | false = false): Promise<Answer> {
  const text = JSON.stringify(body)
  return get(url, { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) }, { agent, method: 'POST', body: text })
}

/**
 * Polls `url` until it answers 200, every `intervalMs`, for at most `timeoutMs`; resolves with
 * the time of the 200 (performance.now()). Connection refusals are expected while it starts.
 */
export async function until200 (url: string, headers: Record<string, string>, timeoutMs = 30_000, intervalMs = 2): Promise<number> {
  const deadline = performance.now() + timeoutMs
  let last = 'no answer'
  while (performance.now() < deadline) {
    try {
      const answer = await get(url, headers, { timeoutMs: 5000 })
      if (answer.status === 200) return performance.now()
      last = `${answer.status} ${answer.body.toString('utf8').slice(0, 200)}`
    } catch (error) {
      last = (error as Error).message
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
  throw new Error(`${url} did not answer 200 within ${timeoutMs} ms; last: ${last}`)
}

/** Runs `tasks` with at most `concurrency` at once. */
export async function pool<T> (count: number, concurrency: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results = new Array<T>(count)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++
      results[i] = await task(i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker))
  return results
}

export function keepAlive (maxSockets = 16): Agent {
  return new Agent({ keepAlive: true, maxSockets })
}
