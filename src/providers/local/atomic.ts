import { randomBytes } from 'node:crypto'
import { open, realpath, rename, rm, stat } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { backoffMs } from '../../backoff.js'

/**
 * Writes a file so that readers only ever see the old or the new content: a temp file in the
 * same directory, flushed, then renamed over the target. A crash leaves at worst a stray temp file.
 * A symlink is followed: the file it names is replaced, and the link stays.
 */
export async function writeFileAtomic (given: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const path = await realFile(given)
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

/** The file `path` names, symlinks followed; `path` itself when nothing is there yet. */
export async function realFile (path: string): Promise<string> {
  try {
    return await realpath(path)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return path
    throw error
  }
}

/** How long one edit may hold a lock; a lock older than this was left by a process that died. */
const STALE_LOCK_MS = 10_000
/** How long to wait for another process's edit before giving up. */
const LOCK_WAIT_MS = 5_000

/** Another process holds the lock on a file for longer than an edit takes. */
export class FileLockedError extends Error {
  override readonly name = 'FileLockedError'
  constructor (readonly lockFile: string) {
    super(`${lockFile} is held by another edit; if none is running, remove it.`)
  }
}

/**
 * Runs `task` (read, change, write) while holding `<file>.lock`, so that edits from several
 * processes (store CLI runs, say) take turns instead of the last rename silently undoing the
 * others. The lock is a file made with O_EXCL; one older than an edit can take (its holder
 * died) is taken over. Waits up to 5 s for another holder, then throws `FileLockedError`.
 */
export async function withFileLock<T> (file: string, task: () => Promise<T>): Promise<T> {
  const lockFile = `${await realFile(file)}.lock`
  const waitUntil = Date.now() + LOCK_WAIT_MS
  for (let attempt = 0; ; attempt += 1) {
    try {
      await (await open(lockFile, 'wx', 0o600)).close()
      break
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    }
    const held = await stat(lockFile).then((s) => Date.now() - s.mtimeMs, () => 0)
    if (held > STALE_LOCK_MS) {
      await rm(lockFile, { force: true })
      continue
    }
    if (Date.now() >= waitUntil) throw new FileLockedError(lockFile)
    await sleep(backoffMs(attempt, 10, 160))
  }
  try {
    return await task()
  } finally {
    await rm(lockFile, { force: true })
  }
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
