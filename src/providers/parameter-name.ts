/** Parameter names as every provider and the routes read them. */

/** A parameter under this path reads the secret named by the rest (as Parameter Store does). */
export const REFERENCE_PREFIX = '/aws/reference/secretsmanager/'

/**
 * Splits a GetParameter name into the name and its `:version` or `:label` selector (with its
 * colon), or null when it has none. The selector's colon is the first after the name's own: a
 * parameter ARN's (`arn:…:parameter/NAME`) and, in a reference to a secret by its ARN
 * (`/aws/reference/secretsmanager/arn:…:secret:NAME`), that ARN's.
 */
export function splitSelector (input: string): { name: string, selector: string | null } {
  // Where the path begins: 0, or the `/` after an ARN's `:parameter`.
  let start = input.startsWith('arn:') ? Math.max(input.indexOf(':parameter/') + ':parameter'.length, 0) : 0
  if (input.startsWith(REFERENCE_PREFIX + 'arn:', start)) {
    const secret = input.indexOf(':secret:', start)
    if (secret !== -1) start = secret + ':secret:'.length
  }
  const colon = input.indexOf(':', start)
  if (colon === -1) return { name: input, selector: null }
  return { name: input.slice(0, colon), selector: input.slice(colon) }
}
