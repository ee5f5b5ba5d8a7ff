import { pino, type Logger, type DestinationStream } from 'pino'
import type { LogLevel } from './config/index.js'

/**
 * Header and body fields that can hold a token, secret or plaintext. The agent never logs
 * requests or values wholesale, so these are a second line of defence, not the first.
 */
export const REDACT_PATHS = [
  'req.headers["x-aws-parameters-secrets-token"]',
  'req.headers["x-vault-token"]',
  'req.headers.authorization',
  'headers["x-aws-parameters-secrets-token"]',
  'headers["x-vault-token"]',
  'headers.authorization',
  // Top-level paths only: a wildcard (`*.value`) makes pino walk every object of every line,
  // which on the access log costs more than the request it records.
  'token',
  'SecretString',
  'SecretBinary',
  'Plaintext',
  'Value',
  'value'
]

export interface LoggerOptions {
  level: LogLevel
  /** Human-friendly lines (dev) instead of JSON: a pino-pretty stream (loaded only for dev). */
  pretty?: DestinationStream
  /** Where lines go; stdout by default. Tests pass a stream to read them. */
  destination?: DestinationStream
}

export function createLogger (options: LoggerOptions): Logger {
  const level = options.level === 'none' ? 'silent' : options.level
  const base = { level, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, base: { name: 'secrets-agent' } }
  if (options.pretty !== undefined) return pino(base, options.pretty)
  if (options.destination !== undefined) return pino(base, options.destination)
  // Lines are gathered into writes of 4 KiB (one write per access-log line would cost more than
  // the request itself), and flushed at least every 200 ms so a quiet agent's lines still show.
  // When stdout stalls (a log shipper that stopped reading), lines past 16 MiB of backlog are
  // dropped rather than held: the agent's memory stays bounded.
  const destination = pino.destination({ dest: 1, sync: false, minLength: 4096, maxLength: 16 * 1024 * 1024 })
  setInterval(() => { try { destination.flush() } catch { /* not open yet, or closed */ } }, 200).unref()
  return pino(base, destination)
}

/** The stream of `dev`'s human-friendly lines; pino-pretty is loaded only here. */
export async function prettyStream (): Promise<DestinationStream> {
  const { default: pretty } = await import('pino-pretty')
  return pretty({ colorize: process.stdout.isTTY, sync: true, ignore: 'pid,hostname,name', destination: 1 })
}
