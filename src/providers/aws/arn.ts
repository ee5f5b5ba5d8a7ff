/**
 * The region an ARN names, so a call about it goes to that region's endpoint: a secret, parameter
 * or key ARN from another region is not found in the agent's own.
 */

import { REFERENCE_PREFIX } from '../parameter-name.js'

/**
 * `arn:aws:secretsmanager:eu-west-1:123456789012:secret:x` → `eu-west-1`, when the ARN belongs
 * to `service`; undefined for a plain name, another service's ARN, or an ARN without a region.
 */
export function regionOfArn (id: string | undefined, service: string): string | undefined {
  if (id === undefined || !id.startsWith('arn:')) return undefined
  const [, partition, arnService, region] = id.split(':', 4)
  if (partition === undefined || partition === '' || arnService !== service) return undefined
  // us-east-1, us-gov-west-1, us-isob-east-1, eusc-de-east-1 (the European Sovereign Cloud).
  return region !== undefined && /^[a-z]{2,4}(-[a-z]+)+-\d+$/.test(region) ? region : undefined
}

/**
 * The region a GetParameter name is about: a parameter ARN's, or for
 * `/aws/reference/secretsmanager/<secret ARN>` the secret's (SSM reads it in its own region).
 */
export function regionOfParameterName (name: string): string | undefined {
  if (name.startsWith(REFERENCE_PREFIX)) return regionOfArn(name.slice(REFERENCE_PREFIX.length), 'secretsmanager')
  return regionOfArn(name, 'ssm')
}
