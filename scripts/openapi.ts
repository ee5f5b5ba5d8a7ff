// Writes docs/openapi.json from the route schemas:  node --import tsx scripts/openapi.ts
// test/unit/openapi.test.ts fails when the committed file is out of date.
import { writeFile } from 'node:fs/promises'
import { pino } from 'pino'
import { SecretCache } from '../src/cache/secret-cache.js'
import type { Provider } from '../src/providers/types.js'
import { buildApp } from '../src/server/app.js'
import { Token } from '../src/token.js'

export const OPENAPI_FILE = new URL('../docs/openapi.json', import.meta.url)

/** The OpenAPI document of the HTTP API, as committed (stable key order, trailing newline). */
export async function openapiDocument (): Promise<string> {
  // No route touches the provider while the app is built; the document needs only the schemas.
  const provider = {} as unknown as Provider
  const app = buildApp({
    provider,
    cache: new SecretCache({ maxEntries: 1, maxBytes: 1, maxStaleMs: 0, staleIfError: false }),
    token: new Token('unused'),
    logger: pino({ level: 'silent' }),
    tokenHeaders: ['X-Aws-Parameters-Secrets-Token'],
    secretsTtlMs: 0,
    parametersTtlMs: 0,
    openapi: true
  })
  await app.ready()
  const document = app.swagger()
  await app.close()
  return JSON.stringify(document, null, 2) + '\n'
}

if (import.meta.url === `file://${process.argv[1] ?? ''}`) {
  await writeFile(OPENAPI_FILE, await openapiDocument())
  console.log(`wrote ${OPENAPI_FILE.pathname}`)
}
