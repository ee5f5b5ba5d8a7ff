import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'

const MODULE = JSON.stringify(new URL('../../src/tick-shape.ts', import.meta.url).href)

/**
 * Runs ten full garbage collections, each between ticks, in a child process, then prints V8's
 * view of process.nextTick (--allow-natives-syntax): the states of the inline caches that define
 * a tick object's properties.
 */
function literalCacheStates (hold: boolean): string[] {
  const script = [
    `import { holdTickShape } from ${MODULE};`,
    hold ? 'holdTickShape();' : '',
    'const tick = () => new Promise((resolve) => { process.nextTick(resolve) });',
    'for (let i = 0; i < 10; i++) { await tick(); await tick(); globalThis.gc(); }',
    'await tick();',
    '%DebugPrint(process.nextTick);'
  ].join('\n')
  let printed: string
  // The script from a file, and V8's print into a file: it writes through C's stdio, whose
  // buffer a pipe can lose at exit.
  const dir = mkdtempSync(join(tmpdir(), 'secrets-agent-tick-'))
  try {
    const file = join(dir, 'ticks.mjs')
    writeFileSync(file, script)
    const out = openSync(join(dir, 'out.txt'), 'w')
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--allow-natives-syntax', '--expose-gc', file], { stdio: ['ignore', out, 'pipe'], encoding: 'utf8', timeout: 20_000 })
    closeSync(out)
    assert.equal(child.status, 0, child.stderr)
    printed = readFileSync(join(dir, 'out.txt'), 'utf8')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  const states = [...printed.matchAll(/DefineKeyedOwnPropertyInLiteral (\w+)/g)].map((m) => m[1] ?? '')
  assert.ok(states.length >= 4, `the tick object's literal caches were not found in:\n${printed.slice(0, 2000)}`)
  return states
}

describe('holdTickShape', () => {
  it('keeps the caches that build tick objects monomorphic through full garbage collections', () => {
    assert.deepEqual(literalCacheStates(true).filter((s) => s !== 'MONOMORPHIC'), [])
  })

  it('is needed: without it, those collections leave the caches megamorphic', () => {
    assert.ok(literalCacheStates(false).includes('MEGAMORPHIC'))
  })
})
