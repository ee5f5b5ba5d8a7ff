import {
  GetParameterCommand, GetParametersByPathCommand, SSMClient, type Parameter as SsmParameter
} from '@aws-sdk/client-ssm'
import { eitherSignal } from '../../abort.js'
import { InvalidRequestError, UpstreamError, UpstreamTimeoutError } from '../errors.js'
import type { CallOptions, GetParameterInput, GetParametersByPathInput, Parameter, ParameterType } from '../types.js'
import { regionOfParameterName } from './arn.js'
import { callAws } from './call.js'
import { regionalClients, type ClientSettings, type RegionalClients } from './clients.js'
import { malformedAnswer } from './errors.js'

/** GetParametersByPath's largest page. */
const PAGE_SIZE = 10
/** A whole get-by-path walk may take this many times the Parameter Store timeout (10 minutes at the default 5 s). */
const WALK_TIMEOUTS = 120
const TYPES: ReadonlySet<string> = new Set<ParameterType>(['String', 'StringList', 'SecureString'])

/** The SSM clients, one per region, made on first use. */
export function ssmClients (settings: ClientSettings): RegionalClients<SSMClient> {
  return regionalClients(settings, (config) => new SSMClient(config))
}

/** Parameter Store: GetParameter and GetParametersByPath, mapped to the provider's types. */
export class ParameterStoreReader {
  constructor (
    private readonly clients: RegionalClients<SSMClient>,
    private readonly timeoutMs: number
  ) {}

  /** The name goes to SSM as given: it parses `:version` / `:label` selectors and ARNs itself. */
  async getParameter (input: GetParameterInput, options?: CallOptions): Promise<Parameter> {
    return callAws('ssm', this.timeoutMs, options?.signal, async (abortSignal) => {
      const client = await this.clients.for(regionOfParameterName(input.name))
      const output = await client.send(new GetParameterCommand({ Name: input.name, WithDecryption: input.withDecryption }), { abortSignal })
      if (output.Parameter === undefined) throw malformedAnswer('ssm', 'a Parameter')
      return toParameter(output.Parameter)
    })
  }

  /**
   * Follows NextToken to the end, refusing (rather than truncating) past `input.limit`. The
   * timeout bounds each page, as it bounds every other Parameter Store call: one deadline for the
   * whole walk would fail every path past a few hundred parameters however healthy SSM is. The
   * walk as a whole is bounded too: by WALK_TIMEOUTS timeouts, by twice the pages `input.limit`
   * needs (SSM may send short pages), and by an answer that repeats a NextToken. It ends at once
   * when the caller's signal aborts.
   */
  async getParametersByPath (input: GetParametersByPathInput, options?: CallOptions): Promise<Parameter[]> {
    const walk = this.timeoutMs > 0 ? AbortSignal.timeout(this.timeoutMs * WALK_TIMEOUTS) : undefined
    const signal = eitherSignal(options?.signal, walk)
    const maxPages = 2 * Math.ceil((input.limit + 1) / PAGE_SIZE)
    const tokens = new Set<string>()
    const parameters: Parameter[] = []
    let nextToken: string | undefined
    do {
      if (tokens.size >= maxPages) throw walkError(`more than ${maxPages} pages`)
      const page = await callAws('ssm', this.timeoutMs, signal, async (abortSignal) => {
        const client = await this.clients.for(undefined)
        return client.send(new GetParametersByPathCommand({
          Path: input.path,
          Recursive: input.recursive,
          WithDecryption: input.withDecryption,
          MaxResults: PAGE_SIZE,
          NextToken: nextToken
        }), { abortSignal })
      }).catch((error: unknown) => {
        if (walk?.aborted !== true) throw error
        throw new UpstreamTimeoutError(`SSM Parameter Store did not finish the path within ${this.timeoutMs * WALK_TIMEOUTS} ms.`, { cause: error })
      })
      for (const parameter of page.Parameters ?? []) parameters.push(toParameter(parameter))
      if (parameters.length > input.limit) {
        throw new InvalidRequestError(`The path holds more than ${input.limit} parameters; ask for a narrower path.`, { code: 'TooManyParameters' })
      }
      nextToken = page.NextToken
      if (nextToken !== undefined && nextToken !== '') {
        if (tokens.has(nextToken)) throw walkError('a NextToken it had already sent')
        tokens.add(nextToken)
      }
    } while (nextToken !== undefined && nextToken !== '')
    return parameters
  }
}

/** An answer that would keep a walk going for ever: not SSM's doing, and perhaps passing. */
function walkError (what: string): UpstreamError {
  return new UpstreamError(`SSM Parameter Store answered the path with ${what}; the walk was stopped.`, { code: 'UnexpectedResponse' })
}

/** SSM's answer in the Lambda extension's shape: what SSM leaves out is null. */
function toParameter (p: SsmParameter): Parameter {
  if (p.Name === undefined || p.ARN === undefined || p.Type === undefined || !TYPES.has(p.Type) ||
    typeof p.Version !== 'number' || !(p.LastModifiedDate instanceof Date)) {
    throw malformedAnswer('ssm', 'the parameter\'s Name, ARN, Type, Version or LastModifiedDate')
  }
  return {
    arn: p.ARN,
    name: p.Name,
    type: p.Type as ParameterType,
    // Absent for a binary secret read through /aws/reference/secretsmanager/.
    value: p.Value ?? null,
    version: p.Version,
    lastModifiedDate: p.LastModifiedDate,
    dataType: p.DataType ?? null,
    selector: p.Selector ?? null,
    sourceResult: p.SourceResult ?? null
  }
}
