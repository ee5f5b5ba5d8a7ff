import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { describe, it } from 'node:test'
import { OPENAPI_FILE, openapiDocument } from '../../scripts/openapi.js'

describe('docs/openapi.json', () => {
  it('is the document the route schemas generate (regenerate with: node --import tsx scripts/openapi.ts)', async () => {
    const committed = await readFile(OPENAPI_FILE, 'utf8')
    assert.equal(committed, await openapiDocument())
  })

  it('documents every read route with its error answers', async () => {
    const doc = JSON.parse(await openapiDocument()) as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> }
    for (const path of ['/secretsmanager/get', '/secretsmanager/batch-get', '/systemsmanager/parameters/get', '/systemsmanager/parameters/get-by-path', '/ping', '/ready']) {
      assert.ok(doc.paths[path]?.get !== undefined, path)
    }
    assert.ok(doc.paths['/secretsmanager/get']?.get?.responses['404'] !== undefined)
  })
})
