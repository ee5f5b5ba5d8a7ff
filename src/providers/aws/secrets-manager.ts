import {
  BatchGetSecretValueCommand, GetSecretValueCommand, type GetSecretValueCommandOutput,
  type SecretsManagerClient, type SecretValueEntry
} from '@aws-sdk/client-secrets-manager'
import type { Logger } from 'pino'
import type { ProviderError } from '../errors.js'
import type { BatchGetSecretsResult, BatchSecretError, CallOptions, GetSecretInput, SecretValue } from '../types.js'
import { regionOfArn } from './arn.js'
import { callAws } from './call.js'
import type { RegionalClients } from './clients.js'
import { errorForCode, malformedAnswer } from './errors.js'

/** Secrets Manager: GetSecretValue and BatchGetSecretValue, mapped to the provider's types. */
export class SecretsManagerReader {
  constructor (
    private readonly clients: RegionalClients<SecretsManagerClient>,
    private readonly timeoutMs: number,
    private readonly logger: Pick<Logger, 'warn'>
  ) {}

  async getSecret (input: GetSecretInput, options?: CallOptions): Promise<SecretValue> {
    return callAws('secretsmanager', this.timeoutMs, options?.signal, async (abortSignal) => {
      const client = await this.clients.for(regionOfArn(input.secretId, 'secretsmanager'))
      const output = await client.send(new GetSecretValueCommand({
        SecretId: input.secretId,
        VersionId: input.versionId,
        VersionStage: input.versionStage
      }), { abortSignal })
      return toSecretValue(output)
    })
  }

  /**
   * One BatchGetSecretValue per region the ids name (ARNs of other regions go to their own),
   * each followed through NextToken. Per-secret failures come back in `errors`, with our messages.
   * Each region's call has a deadline of its own: a region whose call fails (a policy that denies
   * it, a region that does not answer in time) fails its own ids, each in `errors`, not the
   * others', is logged, and is listed in `failedCalls`; only when every region fails does the
   * call. The caller's signal ends them all.
   */
  async batchGetSecrets (secretIds: string[], options?: CallOptions): Promise<BatchGetSecretsResult> {
    const byRegion = new Map<string | undefined, string[]>()
    for (const id of secretIds) {
      const region = regionOfArn(id, 'secretsmanager')
      byRegion.set(region, [...(byRegion.get(region) ?? []), id])
    }
    const result: BatchGetSecretsResult = { values: [], errors: [] }
    const failedCalls: ProviderError[] = []
    await Promise.all([...byRegion].map(async ([region, ids]) => {
      let own: BatchGetSecretsResult
      try {
        own = await callAws('secretsmanager', this.timeoutMs, options?.signal, async (abortSignal) => {
          const client = await this.clients.for(region)
          const found: BatchGetSecretsResult = { values: [], errors: [] }
          let nextToken: string | undefined
          do {
            const page = await client.send(new BatchGetSecretValueCommand({ SecretIdList: ids, NextToken: nextToken }), { abortSignal })
            for (const entry of page.SecretValues ?? []) found.values.push(toSecretValue(entry))
            for (const error of page.Errors ?? []) found.errors.push(toBatchError(error.SecretId, error.ErrorCode))
            nextToken = page.NextToken
          } while (nextToken !== undefined && nextToken !== '')
          return found
        })
      } catch (error) {
        // The caller gone: the whole call answers that.
        if (options?.signal?.aborted === true) throw error
        const failure = error as ProviderError
        failedCalls.push(failure)
        const named = region ?? await this.clients.defaultRegion().catch(() => 'the agent\'s own')
        this.logger.warn({ region: named, type: failure.code }, 'BatchGetSecretValue failed for one region; its secrets are answered in Errors')
        result.errors.push(...ids.map((secretId) => ({ secretId, errorCode: failure.code, message: failure.message, transient: failure.transient, whole: true })))
        return
      }
      result.values.push(...own.values)
      result.errors.push(...own.errors)
    }))
    if (failedCalls.length > 0 && failedCalls.length === byRegion.size) throw failedCalls[0]
    return failedCalls.length === 0 ? result : { ...result, failedCalls }
  }
}

function toSecretValue (output: GetSecretValueCommandOutput | SecretValueEntry): SecretValue {
  const { ARN: arn, Name: name, VersionId: versionId, CreatedDate: createdDate } = output
  if (arn === undefined || name === undefined || versionId === undefined || !(createdDate instanceof Date)) {
    throw malformedAnswer('secretsmanager', 'the secret\'s ARN, Name, VersionId or CreatedDate')
  }
  if ((output.SecretString === undefined) === (output.SecretBinary === undefined)) {
    throw malformedAnswer('secretsmanager', 'exactly one of SecretString and SecretBinary')
  }
  return {
    arn,
    name,
    versionId,
    ...(output.SecretBinary !== undefined ? { secretBinary: output.SecretBinary } : { secretString: output.SecretString ?? '' }),
    versionStages: output.VersionStages ?? [],
    createdDate
  }
}

/** AWS's per-secret message can name the caller's role and the key ARN: ours replaces it. */
function toBatchError (secretId: string | undefined, code: string | undefined): BatchSecretError {
  const error = errorForCode(code ?? 'UnknownError', 'secretsmanager')
  return { secretId: secretId ?? '', errorCode: error.code, message: error.message, transient: error.transient }
}
