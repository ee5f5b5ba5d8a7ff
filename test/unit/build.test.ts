import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath, pathToFileURL } from 'node:url'
import * as esbuild from 'esbuild'

const BUILD = pathToFileURL(fileURLToPath(new URL('../../scripts/build.mjs', import.meta.url))).href

describe('scripts/build.mjs: a require loaded on first use (requireOnFirstUse)', () => {
  let dir: string
  before(() => { dir = mkdtempSync(join(tmpdir(), 'sa-build-')) })
  after(() => { rmSync(dir, { recursive: true, force: true }) })

  it('runs the required module when one of its exports is first read, not when its importer runs, and only there', async () => {
    // Imported by URL: plain JavaScript, so that tsc does not look for its types (as bench/lib/build.ts does).
    const { requireOnFirstUse } = (await import(BUILD)) as { requireOnFirstUse: (name: string, importer: string) => esbuild.Plugin }
    writeFileSync(join(dir, 'heavy.cjs'), 'globalThis.heavyRuns = (globalThis.heavyRuns ?? 0) + 1\nmodule.exports = { answer: 42, twice: (n) => 2 * n }\n')
    writeFileSync(join(dir, 'lazy-user.cjs'), "const heavy = require('./heavy.cjs')\nmodule.exports = { read: () => heavy.answer, call: (n) => heavy.twice(n) }\n")
    writeFileSync(join(dir, 'eager-user.cjs'), "const heavy = require('./heavy.cjs')\nmodule.exports = () => heavy\n")
    writeFileSync(join(dir, 'entry.mjs'), "import lazy from './lazy-user.cjs'\nexport { lazy }\nexport async function eager () { return (await import('./eager-user.cjs')).default() }\n")
    await esbuild.build({ entryPoints: [join(dir, 'entry.mjs')], outfile: join(dir, 'out.mjs'), bundle: true, format: 'esm', platform: 'node', logLevel: 'silent', plugins: [requireOnFirstUse('./heavy.cjs', 'lazy-user.cjs')] })
    const globals = globalThis as { heavyRuns?: number }

    const bundle = (await import(pathToFileURL(join(dir, 'out.mjs')).href)) as { lazy: { read: () => number, call: (n: number) => number }, eager: () => Promise<unknown> }
    assert.equal(globals.heavyRuns, undefined, 'heavy.cjs ran as its importer loaded')
    assert.equal(bundle.lazy.read(), 42)
    assert.equal(bundle.lazy.call(21), 42)
    assert.equal(globals.heavyRuns, 1)
    // Another importer gets the module itself, the same one, run once.
    assert.equal(((await bundle.eager()) as { answer: number }).answer, 42)
    assert.equal(globals.heavyRuns, 1)
  })
})
