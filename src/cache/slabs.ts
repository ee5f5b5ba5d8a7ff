/**
 * Where the cache keeps its response bytes: copied into shared 256 KiB slabs, rather than
 * held in one allocation each.
 *
 * A body built for a response is one malloc'd block among the transient blocks of the upstream
 * call that produced it (socket reads, the SDK's buffers, the parse). Those are freed and the
 * body stays, so every cached body pins the holes around it: with 10,000 cached 4 KiB secrets,
 * 13 MB of the process's heap beyond the 44 MB of bodies (docs/bench/findings.md). Copied into
 * a slab, bodies sit side by side, and the allocator gets its holes back.
 *
 * A slab lives as long as any view of it does (the cache's entries, and responses still being
 * written): the garbage collector frees it, not this class, so nothing here can free bytes in
 * use. What it must bound is waste: slabs held up by a few live bodies after the rest were
 * replaced or evicted. So, as slabs are opened, it looks at the cache's bodies from time to time
 * (amortised: after a quarter as many new slabs as there were held) and copies the bodies of
 * slabs under half full into the current one; the emptied slabs go when their last response
 * is written. After a look, every slab but the current one is at least half full.
 *
 * A stored body is a view of a slab that holds other entries' bodies too: write the view, copy
 * it, decode it, but never hand out its `.buffer` (or `byteOffset`-relative reads beyond it),
 * which would show other secrets.
 */

/** What a look needs from the cache: every entry holding a body, to read and to move it. */
export interface BodyHolder {
  body: Buffer
}

export interface SlabsOptions {
  /** Bytes a slab holds (default 256 KiB). */
  slabBytes?: number
  /** Bodies larger than this keep an allocation of their own (default a sixteenth of a slab). */
  largestShared?: number
}

export class Slabs {
  readonly #slabBytes: number
  readonly #largestShared: number
  /** Our slabs' memory, to tell a body of ours from a body in an allocation of its own. */
  readonly #ours = new WeakSet<ArrayBufferLike>()
  #slab: Buffer | null = null
  #used = 0
  /** Slabs opened since the last look, and slabs held at it. */
  #opened = 0
  #held = 0
  #moved = 0

  constructor (options: SlabsOptions = {}) {
    this.#slabBytes = options.slabBytes ?? 256 * 1024
    this.#largestShared = Math.min(options.largestShared ?? this.#slabBytes / 16, this.#slabBytes)
  }

  /**
   * `bytes` as the cache should hold them: a copy in the current slab, or `bytes` itself when
   * empty or too large to share one. Before opening a slab, it may look at `holders` (the cache's
   * bodies now) and move those in sparse slabs.
   */
  store (bytes: Buffer, holders: () => Iterable<BodyHolder>): Buffer {
    const length = bytes.length
    if (length === 0 || length > this.#largestShared) return bytes
    if (this.#slab === null || this.#used + length > this.#slab.length) {
      if (this.#opened >= Math.max(4, this.#held / 4)) this.compact(holders())
      // compact() may have opened a slab with room enough.
      if (this.#slab === null || this.#used + length > this.#slab.length) this.#open()
    }
    return this.#copy(bytes)
  }

  /**
   * Looks at every body held and copies those in slabs under half full (but the current one)
   * into the current slab. Called by `store` when due; tests call it directly.
   */
  compact (holders: Iterable<BodyHolder>): void {
    const list = [...holders]
    const live = new Map<ArrayBufferLike, number>()
    for (const holder of list) {
      const memory = holder.body.buffer
      if (this.#ours.has(memory)) live.set(memory, (live.get(memory) ?? 0) + holder.body.length)
    }
    const current = this.#slab?.buffer
    const sparse = new Set<ArrayBufferLike>()
    for (const [memory, bytes] of live) {
      if (memory !== current && bytes * 2 < this.#slabBytes) sparse.add(memory)
    }
    this.#opened = 0
    for (const holder of list) {
      if (!sparse.has(holder.body.buffer)) continue
      const length = holder.body.length
      if (this.#slab === null || this.#used + length > this.#slab.length) this.#open()
      holder.body = this.#copy(holder.body)
      this.#moved++
    }
    this.#held = live.size - sparse.size + this.#opened + (current !== undefined && !live.has(current) ? 1 : 0)
    this.#opened = 0
  }

  /** Bodies moved out of sparse slabs, in all. */
  get moved (): number {
    return this.#moved
  }

  #open (): void {
    this.#slab = Buffer.allocUnsafeSlow(this.#slabBytes)
    this.#ours.add(this.#slab.buffer)
    this.#used = 0
    this.#opened++
  }

  #copy (bytes: Buffer): Buffer {
    const slab = this.#slab as Buffer
    const start = this.#used
    bytes.copy(slab, start)
    this.#used = start + bytes.length
    return slab.subarray(start, this.#used)
  }
}
