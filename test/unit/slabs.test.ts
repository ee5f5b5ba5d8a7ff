import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { Slabs, type BodyHolder } from '../../src/cache/slabs.js'

const SLAB = 1024

/** A cache's view for the slabs: key → holder, plus what each body must read. */
class Model {
  readonly holders = new Map<string, BodyHolder>()
  readonly expected = new Map<string, Buffer>()
  constructor (readonly slabs: Slabs) {}
  set (key: string, bytes: Buffer): void {
    const body = this.slabs.store(bytes, () => this.holders.values())
    this.holders.set(key, { body })
    this.expected.set(key, Buffer.from(bytes))
  }

  delete (key: string): void {
    this.holders.delete(key)
    this.expected.delete(key)
  }

  /** Live bytes per slab the held bodies are in (bodies of their own left out). */
  slabUse (): Map<ArrayBufferLike, number> {
    const use = new Map<ArrayBufferLike, number>()
    for (const { body } of this.holders.values()) {
      if (body.buffer.byteLength !== SLAB) continue
      use.set(body.buffer, (use.get(body.buffer) ?? 0) + body.length)
    }
    return use
  }
}

const bytesOf = (seed: number, length: number): Buffer => Buffer.from(Array.from({ length }, (_, i) => (seed * 31 + i) & 0xff))

describe('Slabs', () => {
  it('copies small bodies side by side into one slab, apart from the bytes given', () => {
    const slabs = new Slabs({ slabBytes: SLAB, largestShared: 256 })
    const a = bytesOf(1, 100)
    const b = bytesOf(2, 200)
    const storedA = slabs.store(a, () => [])
    const storedB = slabs.store(b, () => [])
    assert.deepEqual(storedA, a)
    assert.deepEqual(storedB, b)
    assert.equal(storedA.buffer, storedB.buffer)
    assert.equal(storedA.buffer.byteLength, SLAB)
    a.fill(0)
    assert.deepEqual(storedA, bytesOf(1, 100), 'the stored copy does not change with the bytes it was made from')
  })

  it('keeps empty bodies and bodies over the shared size as they are', () => {
    const slabs = new Slabs({ slabBytes: SLAB, largestShared: 256 })
    const empty = Buffer.alloc(0)
    const large = bytesOf(3, 257)
    assert.equal(slabs.store(empty, () => []), empty)
    assert.equal(slabs.store(large, () => []), large)
    assert.notEqual(slabs.store(bytesOf(4, 256), () => []).buffer, bytesOf(4, 256).buffer)
  })

  it('after a look, moves the bodies of slabs under half full and leaves at most one slab under half full', () => {
    const model = new Model(new Slabs({ slabBytes: SLAB, largestShared: 128 }))
    for (let i = 0; i < 64; i++) model.set(`k${i}`, bytesOf(i, 100))
    // Most of every slab goes: each keeps one body in ten.
    for (let i = 0; i < 64; i++) if (i % 10 !== 0) model.delete(`k${i}`)
    const before = model.slabUse().size
    model.slabs.compact(model.holders.values())
    const after = model.slabUse()
    assert.ok(after.size < before, `slabs in use: ${before} before, ${after.size} after`)
    assert.ok([...after.values()].filter((bytes) => bytes * 2 < SLAB).length <= 1)
    for (const [key, holder] of model.holders) assert.deepEqual(holder.body, model.expected.get(key))
    // Ten bodies a slab: the kept ones are k0, k10, ..., k60, and k60 is in the current slab.
    assert.equal(model.slabs.moved, 6)
  })

  it('keeps every body intact and the slabs bounded by the live bytes through any sequence of stores and deletes', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('set' as const), key: fc.integer({ min: 0, max: 40 }), length: fc.integer({ min: 0, max: 300 }), seed: fc.nat() }),
      fc.record({ kind: fc.constant('delete' as const), key: fc.integer({ min: 0, max: 40 }) }),
      fc.record({ kind: fc.constant('compact' as const) })
    )
    fc.assert(fc.property(fc.array(op, { minLength: 20, maxLength: 400 }), (ops) => {
      const model = new Model(new Slabs({ slabBytes: SLAB, largestShared: 200 }))
      for (const o of ops) {
        if (o.kind === 'set') model.set(String(o.key), bytesOf(o.seed, o.length))
        else if (o.kind === 'delete') model.delete(String(o.key))
        else model.slabs.compact(model.holders.values())
        for (const [key, holder] of model.holders) assert.deepEqual(holder.body, model.expected.get(key))
        if (o.kind === 'compact') {
          const use = [...model.slabUse().values()]
          assert.ok(use.filter((bytes) => bytes * 2 < SLAB).length <= 1, `slabs under half full after a look: ${use.join(', ')}`)
        }
      }
    }), { numRuns: 200 })
  })

  it('under steady replacement, holds at most about twice the live bytes in slabs, without being asked to look', () => {
    const model = new Model(new Slabs({ slabBytes: SLAB, largestShared: 200 }))
    const keys = 50
    let peak = 0
    for (let round = 0; round < 200; round++) {
      // Replace a random-looking tenth of the keys each round, with bodies of varying size.
      for (let i = 0; i < keys; i++) {
        if ((i * 7 + round * 13) % 10 === 0 || round === 0) model.set(`k${i}`, bytesOf(round + i, 40 + ((i * round) % 160)))
      }
      let live = 0
      for (const { body } of model.holders.values()) live += body.length
      const held = model.slabUse().size
      peak = Math.max(peak, held)
      assert.ok(held <= 2.5 * Math.ceil(live / SLAB) + 6, `round ${round}: ${held} slabs for ${live} live bytes`)
    }
    for (const [key, holder] of model.holders) assert.deepEqual(holder.body, model.expected.get(key))
    assert.ok(model.slabs.moved > 0, 'it moved bodies out of sparse slabs')
    assert.ok(peak > 1)
  })
})
