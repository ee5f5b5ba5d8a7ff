import type { Logger } from 'pino'

/** The logger interface the AWS SDK's pieces take. */
export interface SdkLogger {
  trace?: (...content: unknown[]) => void
  debug: (...content: unknown[]) => void
  info: (...content: unknown[]) => void
  warn: (...content: unknown[]) => void
  error: (...content: unknown[]) => void
}

/**
 * Passes the SDK's warnings and errors (socket exhaustion, credential source conflicts) to our
 * log, and drops its debug and info lines. Only the request handler and the credential chain
 * get it: a client-level logger would log every call's input, secret ids included, at info.
 */
export function sdkLogger (logger: Logger): SdkLogger {
  const line = (content: unknown[]): { sdk: string } => ({ sdk: content.map(String).join(' ') })
  return {
    trace: () => {},
    debug: () => {},
    info: () => {},
    warn: (...content) => { logger.warn(line(content), 'AWS SDK warning') },
    error: (...content) => { logger.error(line(content), 'AWS SDK error') }
  }
}
