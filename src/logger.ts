import { pino, type Logger, type DestinationStream } from 'pino'
import pretty from 'pino-pretty'
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
  'token',
  '*.token',
  'SecretString', '*.SecretString',
  'SecretBinary', '*.SecretBinary',
  'Plaintext', '*.Plaintext',
  'Value', '*.Value',
  'value', '*.value'
]

export interface LoggerOptions {
  level: LogLevel
  /** Human-friendly lines (dev) instead of JSON. */
  pretty?: boolean
  /** Where lines go; stdout by default. Tests pass a stream to read them. */
  destination?: DestinationStream
}

export function createLogger (options: LoggerOptions): Logger {
  const level = options.level === 'none' ? 'silent' : options.level
  const base = { level, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, base: { name: 'secrets-agent' } }
  if (options.pretty === true) {
    return pino(base, pretty({ colorize: process.stdout.isTTY, sync: true, ignore: 'pid,hostname,name', destination: options.destination ?? 1 }))
  }
  return pino(base, options.destination ?? pino.destination({ dest: 1, sync: false }))
}
