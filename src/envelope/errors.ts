import { AccessDeniedError } from '../providers/errors.js'

/**
 * The allow-list refused every key that could have opened the message (or the key asked for).
 * In a module of its own, without the Encryption SDK, so the routes can name it without loading
 * the SDK at start.
 */
export class KeyNotAllowedError extends AccessDeniedError {
  /** The refused key ids, for the warning the server logs. */
  readonly keyIds: readonly string[]
  constructor (keyIds: readonly string[]) {
    super('The KMS key may not be used through this agent (allow-list).', { code: 'AccessDeniedException' })
    this.keyIds = keyIds
  }
}
