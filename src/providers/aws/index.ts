/**
 * The aws provider: Secrets Manager, Parameter Store, KMS and STS through the AWS SDK v3. The
 * only code in the agent that imports `@aws-sdk/*`.
 */
import { AwsProvider } from './provider.js'
import type { AwsProviderOptions } from './options.js'

export type { AwsProviderOptions } from './options.js'
export { AwsProvider } from './provider.js'

/**
 * Makes the provider. Nothing is sent to AWS yet: credentials are resolved and checked by
 * `checkReady()` (for `/ready`) or by the first call. Throws when `AWS_CA_BUNDLE` names a file
 * that cannot be read.
 */
export async function createAwsProvider (options: AwsProviderOptions): Promise<AwsProvider> {
  return new AwsProvider(options)
}
