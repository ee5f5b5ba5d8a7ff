/**
 * The cache hit the benches measure: one secret (a database credential of about 100 bytes) in a
 * local store, read by its id; and the agent's answer to it, captured so that the bare baselines
 * answer the same bytes (bench/servers/response.ts reads it).
 */
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { CapturedResponse } from '../servers/response.js'
import type { Answer } from './http.js'

export const HIT_SECRET_ID = 'bench/db'
export const HIT_PATH = `/secretsmanager/get?secretId=${encodeURIComponent(HIT_SECRET_ID)}`

/** Writes a local store holding the hit's secret in `dir`; its path. */
export function writeHitStore (dir: string): string {
  const store = join(dir, 'store.json')
  const value = JSON.stringify({ username: 'app', password: randomBytes(18).toString('base64url'), host: 'db.internal.example', port: 5432, dbname: 'orders' })
  writeFileSync(store, JSON.stringify({ secrets: { [HIT_SECRET_ID]: value } }))
  return store
}

/** Writes the agent's `answer` to the hit read to `file`: its body and the headers the baselines repeat. */
export function writeCapturedResponse (file: string, answer: Answer): void {
  const headers: Record<string, string> = {}
  for (const name of ['content-type', 'cache-control', 'x-cache', 'age']) {
    const value: unknown = answer.headers[name]
    if (typeof value === 'string') headers[name] = value
  }
  const captured: CapturedResponse = { headers, bodyBase64: answer.body.toString('base64') }
  writeFileSync(file, JSON.stringify(captured))
}
