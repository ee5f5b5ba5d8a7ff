import { randomBytes } from 'node:crypto'
import { open, rename, rm, stat } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'

/**
 * Writes a file so that readers only ever see the old or the new content: a temp file in the
 * same directory, flushed, then renamed over the target. A crash leaves at worst a stray temp file.
 */
export async function writeFileAtomic (path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const dir = dirname(path)
  const temp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`)
  const handle = await open(temp, 'wx', mode)
  try {
    await handle.writeFile(data)
    await handle.chmod(mode) // the umask may have narrowed or the file inherited nothing; be exact
    await handle.sync()
  } catch (error) {
    await handle.close()
    await rm(temp, { force: true })
    throw error
  }
  await handle.close()
  try {
    await rename(temp, path)
  } catch (error) {
    await rm(temp, { force: true })
    throw error
  }
  // Make the rename itself durable. Some filesystems refuse fsync on a directory; that is fine.
  try {
    const d = await open(dir, 'r')
    try { await d.sync() } finally { await d.close() }
  } catch { /* best effort */ }
}

/** Whether something exists at `path` (a file, a directory, anything `stat` can see). */
export async function pathExists (path: string): Promise<boolean> {
  try {
    await stat(path)
    return true
  } catch {
    return false
  }
}
