import * as crypto from 'node:crypto'
import { watch, type FSWatcher } from 'node:fs'
import { mkdir, readFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import type { Logger } from 'pino'
import { Debounce } from './debounce.js'
import { pathExists, writeFileAtomic } from './providers/local/atomic.js'

/** No token could be found or made: the agent must not start. */
export class TokenError extends Error {
  override readonly name = 'TokenError'
}

export interface TokenOptions {
  /** `--token-file`: first choice. */
  tokenFile: string | null
  /** `--generate-token`: create `tokenFile` with a fresh token when it does not exist. */
  generate: boolean
  /** Mode of a generated file. */
  fileMode: number
  /** Variables to look in, in order; a value `file:///path` names a file. */
  envVariables: readonly string[]
  env: NodeJS.ProcessEnv
  logger: Logger
}

export interface TokenChoice {
  /** Where the token came from, for logs (never the token). */
  source: string
  /** The file that holds it, when it is a file; re-read when it changes. */
  file: string | null
}

/**
 * The token clients must present. Compared in constant time: both sides are hashed first, so
 * neither the content nor the length of the expected token leaks through timing.
 */
export class Token {
  #digest: Buffer
  #watcher: FSWatcher | undefined
  readonly #changed = new Debounce(() => { void this.reload() }, 50)
  readonly choice: TokenChoice
  readonly #logger: Logger | undefined

  constructor (value: string, choice: TokenChoice = { source: 'given', file: null }, logger?: Logger) {
    this.#digest = digest(value)
    this.choice = choice
    this.#logger = logger
  }

  /** True when `candidate` is the token. */
  matches (candidate: string): boolean {
    return crypto.timingSafeEqual(digest(candidate), this.#digest)
  }

  /**
   * Re-reads the token file when its directory changes, so a rotated token takes effect without
   * a restart. Any change there counts, not only one naming the file: a Kubernetes Secret volume
   * rotates by swapping a `..data` symlink that the file's own symlink points through, and the
   * events name only `..data`. Reading a small file again is cheap, and a token that did not
   * change is kept as it is.
   */
  watchFile (): void {
    const file = this.choice.file
    if (file === null || this.#watcher !== undefined) return
    // Read 50 ms after the changes stop, and 500 ms after the first at the latest: a directory
    // that never goes quiet (other files written there all the time) must not put it off for ever.
    try {
      this.#watcher = watch(dirname(file), { persistent: false }, () => { this.#changed.poke() })
    } catch (error) {
      // Out of inotify watches or instances (EMFILE, ENOSPC), say: the token read at start serves.
      this.#logger?.warn({ tokenFile: file, err: { code: (error as NodeJS.ErrnoException).code, message: (error as Error).message } }, 'cannot watch the token file; a rotated token takes effect at the next restart')
      return
    }
    this.#watcher.on('error', () => { /* the directory went away; keep the token we have */ })
  }

  /** Reads the token file again; an empty or unreadable file keeps the current token. */
  async reload (): Promise<void> {
    const file = this.choice.file
    if (file === null) return
    try {
      const value = (await readFile(file, 'utf8')).trim()
      if (value === '') throw new Error('empty')
      const next = digest(value)
      if (!crypto.timingSafeEqual(next, this.#digest)) {
        this.#digest = next
        this.#logger?.info({ tokenFile: file }, 'token file changed; the new token is in effect')
      }
    } catch {
      this.#logger?.warn({ tokenFile: file }, 'token file unreadable or empty; the previous token stays in effect')
    }
  }

  close (): void {
    this.#watcher?.close()
    this.#changed.cancel()
  }
}

/**
 * sha256 of a string's UTF-8, once per request: crypto.hash (Node 20.12 and later) makes no Hash
 * object, whose native backing cost the agent 2.4 µs a request (docs/bench/findings.md); older
 * Node takes createHash's way.
 */
const digest: (value: string) => Buffer = typeof crypto.hash === 'function'
  ? (value) => crypto.hash('sha256', value, 'buffer')
  : (value) => crypto.createHash('sha256').update(value, 'utf8').digest()

/** A fresh 256-bit token, base64url. */
export function generateTokenValue (): string {
  return crypto.randomBytes(32).toString('base64url')
}

/**
 * The file a token variable's value names when it is `file://PATH`, else undefined (the value is
 * the token). PATH is the rest as written (relative to the working directory unless it starts
 * with `/`), as the Secrets Manager Agent reads it: not a URL, so `%`, `#` and `?` are themselves.
 */
export function namedFile (variable: string, value: string): string | undefined {
  if (!value.startsWith('file://')) return undefined
  const file = value.slice('file://'.length)
  if (file === '') throw new TokenError(`${variable} is file:// with no path after it`)
  return file
}

/** Finds the token as DESIGN §4 says: `--token-file`, then the listed variables. */
export async function loadToken (options: TokenOptions): Promise<Token> {
  if (options.tokenFile !== null) {
    if (options.generate && !(await pathExists(options.tokenFile))) {
      await mkdir(dirname(options.tokenFile), { recursive: true, mode: 0o750 })
      await writeFileAtomic(options.tokenFile, generateTokenValue() + '\n', options.fileMode)
      options.logger.info({ tokenFile: options.tokenFile, mode: options.fileMode.toString(8) }, 'generated a token file')
    }
    const value = await readTokenFile(options.tokenFile)
    return new Token(value, { source: `--token-file ${options.tokenFile}`, file: options.tokenFile }, options.logger)
  }
  if (options.generate) throw new TokenError('--generate-token needs --token-file to say where the token goes')
  for (const name of options.envVariables) {
    const raw = options.env[name]?.trim()
    if (raw === undefined || raw === '') continue
    const file = namedFile(name, raw)
    if (file !== undefined) {
      return new Token(await readTokenFile(file), { source: `${name} (file ${file})`, file }, options.logger)
    }
    return new Token(raw, { source: name, file: null }, options.logger)
  }
  throw new TokenError(`no token: pass --token-file PATH (with --generate-token to create it), or set one of ${options.envVariables.join(', ')}`)
}

/**
 * The token of `secrets-agent dev`: `--token-file`, else AWS_TOKEN, else a generated one in a
 * file only this user can read. Never AWS_SESSION_TOKEN: on a laptop that is an AWS credential.
 */
export async function loadDevToken (options: Omit<TokenOptions, 'envVariables' | 'generate' | 'fileMode'> & Partial<Pick<TokenOptions, 'generate' | 'fileMode'>>): Promise<Token> {
  if (options.tokenFile !== null || (options.env.AWS_TOKEN ?? '').trim() !== '') {
    // `--generate-token` makes `--token-file` where it is missing, as for serve.
    return loadToken({ ...options, generate: options.generate ?? false, fileMode: options.fileMode ?? 0o600, envVariables: ['AWS_TOKEN'] })
  }
  const file = devTokenPath(options.env)
  if (!(await pathExists(file))) {
    await mkdir(dirname(file), { recursive: true, mode: 0o700 })
    await writeFileAtomic(file, generateTokenValue() + '\n', 0o600)
  }
  return new Token(await readTokenFile(file), { source: `generated file ${file}`, file }, options.logger)
}

export function devTokenPath (env: NodeJS.ProcessEnv): string {
  const runtime = env.XDG_RUNTIME_DIR
  if (runtime !== undefined && runtime !== '') return join(runtime, 'secrets-agent', 'token')
  return join(env.HOME ?? homedir(), '.cache', 'secrets-agent', 'token')
}

async function readTokenFile (file: string): Promise<string> {
  let value: string
  try {
    value = (await readFile(file, 'utf8')).trim()
  } catch (error) {
    throw new TokenError(`cannot read the token file ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`)
  }
  if (value === '') throw new TokenError(`the token file ${file} is empty`)
  return value
}

