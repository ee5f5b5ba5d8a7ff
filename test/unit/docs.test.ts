import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { describe, it } from 'node:test'
import { configTable } from '../../scripts/config-table.js'

describe('README', () => {
  it('lists every setting exactly as the settings table defines it', async () => {
    const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8')
    const section = readme.split('<!-- config-table:start -->\n')[1]?.split('<!-- config-table:end -->')[0]
    assert.equal(section, configTable(), 'regenerate with: node --import tsx scripts/config-table.ts')
  })
})
