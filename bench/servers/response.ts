/**
 * What the bare baseline servers answer: the agent's own response to the bench's cache-hit read
 * (body bytes and headers, captured from the running agent), and the same token check the agent
 * does (src/token.ts): sha256 of both sides, compared with timingSafeEqual.
 */
import * as crypto from 'node:crypto'
import { readFileSync } from 'node:fs'

export interface CapturedResponse {
  headers: Record<string, string>
  bodyBase64: string
}

export interface BaselineConfig {
  port: number
  headers: Record<string, string>
  body: Buffer
  tokenHeader: string
  /** True when `candidate` is the token, in constant time. */
  matches (candidate: string | string[] | undefined): boolean
}

export function baselineConfig (env: NodeJS.ProcessEnv = process.env): BaselineConfig {
  const file = env.BENCH_RESPONSE_FILE
  const token = env.BENCH_TOKEN
  if (file === undefined || token === undefined) throw new Error('BENCH_RESPONSE_FILE and BENCH_TOKEN must be set')
  const captured = JSON.parse(readFileSync(file, 'utf8')) as CapturedResponse
  // As src/token.ts hashes: one-shot crypto.hash where Node has it (20.12 and later).
  const digest = typeof crypto.hash === 'function'
    ? (value: string): Buffer => crypto.hash('sha256', value, 'buffer')
    : (value: string): Buffer => crypto.createHash('sha256').update(value, 'utf8').digest()
  const expected = digest(token)
  return {
    port: Number(env.BENCH_PORT ?? '0'),
    headers: captured.headers,
    body: Buffer.from(captured.bodyBase64, 'base64'),
    tokenHeader: 'x-aws-parameters-secrets-token',
    matches: (candidate) => typeof candidate === 'string' && crypto.timingSafeEqual(digest(candidate), expected)
  }
}

export const UNAUTHORIZED = JSON.stringify({ __type: 'UnauthorizedException', message: 'missing or wrong token' })
