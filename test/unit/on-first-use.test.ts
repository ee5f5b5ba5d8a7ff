/**
 * OnFirstUse (src/providers/aws/provider.ts): the aws provider's Parameter Store and KMS parts are
 * imported when first used, not at start.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { OnFirstUse } from '../../src/providers/aws/provider.js'

function counting<T> (part: T, failures = 0): { part: OnFirstUse<T>, loads: () => number, destroyed: () => number } {
  let loads = 0
  let destroyed = 0
  const part2 = new OnFirstUse(async () => {
    loads += 1
    await new Promise((resolve) => setImmediate(resolve))
    if (loads <= failures) throw new Error(`load ${loads} failed`)
    return { part, clients: { destroy: () => { destroyed += 1 } } }
  }, () => new Error('closed'))
  return { part: part2, loads: () => loads, destroyed: () => destroyed }
}

describe('OnFirstUse', () => {
  it('loads nothing until asked', async () => {
    const { part, loads, destroyed } = counting('reader')
    await part.destroy()
    assert.equal(loads(), 0)
    assert.equal(destroyed(), 0)
  })

  it('loads once, however many callers ask at the same time', async () => {
    const { part, loads } = counting('reader')
    const answers = await Promise.all([part.get(), part.get(), part.get()])
    assert.deepEqual(answers, ['reader', 'reader', 'reader'])
    assert.equal(await part.get(), 'reader')
    assert.equal(loads(), 1)
  })

  it('tries again after a failed load', async () => {
    const { part, loads } = counting('reader', 1)
    await assert.rejects(part.get(), /load 1 failed/)
    assert.equal(await part.get(), 'reader')
    assert.equal(loads(), 2)
  })

  it('destroys the clients of a part still loading, and the call waiting for it gets the closed error', async () => {
    const { part, destroyed } = counting('reader')
    const pending = part.get()
    await part.destroy()
    assert.equal(destroyed(), 1)
    await assert.rejects(pending, /closed/)
  })

  it('loads nothing once destroyed: later calls get the closed error', async () => {
    const { part, loads, destroyed } = counting('reader')
    assert.equal(await part.get(), 'reader')
    await part.destroy()
    await assert.rejects(part.get(), /closed/)
    assert.equal(loads(), 1)
    assert.equal(destroyed(), 1)
  })

  it('destroys nothing when the load failed', async () => {
    const { part, destroyed } = counting('reader', 1)
    await assert.rejects(part.get())
    await part.destroy()
    assert.equal(destroyed(), 0)
  })
})
