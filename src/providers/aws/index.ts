import type { Logger } from 'pino'
import type { Provider } from '../types.js'

export interface AwsProviderOptions {
  region: string | null
  profile: string | null
  credentialsFilePath: string | null
  secretsManagerTimeoutMillis: number
  ssmParameterStoreTimeoutMillis: number
  kmsTimeoutMillis: number
  maxConnections: number
  validateCredentials: boolean
  userAgentSuffix: string
  logger: Logger
  env?: NodeJS.ProcessEnv
}

export async function createAwsProvider (_options: AwsProviderOptions): Promise<Provider> {
  throw new Error('the aws provider is not built yet')
}
