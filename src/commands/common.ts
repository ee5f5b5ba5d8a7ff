import { parseArgs, type ParseArgsConfig } from 'node:util'
import { EXIT } from './exit.js'

/**
 * What the client commands (health, get, store) share: argument parsing with `--help`, and
 * the one way they report a problem. Kept free of the server, the AWS SDK and pino, so that
 * `health`, which a container runs every few seconds, starts in a few tens of milliseconds.
 */

export type Values = Record<string, string | boolean | undefined>

export interface Parsed {
  values: Values
  positionals: string[]
}

/** A problem the user can fix; the command prints it on one line and exits with `code`. */
export class CommandError extends Error {
  override readonly name = 'CommandError'
  constructor (readonly code: number, message: string) {
    super(message)
  }
}

/**
 * Parses `args` strictly. For `--help` (printed) or a usage error (printed on stderr) it gives
 * back the exit code instead, which the command returns as it is.
 */
export function parseCommand (command: string, args: string[], options: ParseArgsConfig['options'], help: string, allowPositionals = false): Parsed | number {
  let parsed: Parsed
  try {
    parsed = parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals }) as Parsed
  } catch (error) {
    process.stderr.write(`secrets-agent ${command}: ${(error as Error).message}\nSee: secrets-agent ${command} --help\n`)
    return EXIT.usage
  }
  if (parsed.values.help === true) {
    process.stdout.write(help)
    return EXIT.ok
  }
  return parsed
}

/** Prints `secrets-agent <command>: <message>` on stderr and gives back the exit code. */
export function fail (command: string, code: number, message: string): number {
  process.stderr.write(`secrets-agent ${command}: ${message}\n`)
  return code
}

/** Whether writeOut has put its listener on stdout's errors. */
let stdoutErrorsHeard = false

/**
 * Writes to stdout and resolves once the bytes are handed to the OS (the CLI exits soon after).
 * A stdout that cannot take them (a pipe whose reader has gone: `... | head -c0`) rejects with a
 * CommandError, EXIT.failure: one line on stderr, not a stack trace.
 */
export function writeOut (data: string | Uint8Array): Promise<void> {
  // The write's callback reports the error; without a listener, the stream's 'error' event
  // would also throw it, uncaught.
  if (!stdoutErrorsHeard) {
    process.stdout.on('error', () => {})
    stdoutErrorsHeard = true
  }
  return new Promise((resolve, reject) => {
    process.stdout.write(data, (error) => {
      if (error === null || error === undefined) resolve()
      else reject(new CommandError(EXIT.failure, `cannot write to stdout: ${(error as NodeJS.ErrnoException).code ?? error.message}`))
    })
  })
}

/** A whole number of seconds from a flag, within bounds. */
export function seconds (raw: string | boolean | undefined, fallback: number, flag: string, max = 600): number {
  if (raw === undefined || typeof raw === 'boolean') return fallback
  const n = Number(raw)
  if (!/^\d+(\.\d+)?$/.test(raw.trim()) || !(n > 0) || n > max) throw new CommandError(EXIT.usage, `${flag} expects a number of seconds above 0 and at most ${max}; got ${JSON.stringify(raw)}`)
  return n
}
