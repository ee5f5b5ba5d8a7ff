/**
 * A fake AWS endpoint for tests: Secrets Manager, SSM and KMS over JSON 1.1 and STS over the
 * query protocol, on 127.0.0.1, driven by the real SDK clients through their `endpoint` option.
 * State is seeded directly (not over HTTP); every request is recorded; faults are injected per call.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'

import { AccessPolicy, type AccessRule, RequestContext } from './access.js'
import { AwsError } from './errors.js'
import { faultError, FaultSet, type TerminalFault } from './faults.js'
import { Input } from './input.js'
import { KeyStore } from './kms.js'
import { SecretStore } from './secrets-manager.js'
import { ParameterStore } from './ssm.js'
import { SecurityTokenService, STS_NAMESPACE } from './sts.js'
import type {
  CreateKeyInput, FakeAwsCall, FakeAwsOptions, Fault, FaultHandle, InjectOptions, PutParameterInput,
  PutSecretInput, PutSecretResult
} from './types.js'
import {
  type Credential, header, parseAuthorization, type ParsedRequest, parseRequest, type Protocol, readBody, send, sendError,
  sendJson, sendXml, signatureMatches
} from './wire.js'

export type { AccessRule } from './access.js'
export type * from './types.js'

/**
 * What a `malformed` fault answers with 200. For JSON, the HTML a misbehaving proxy tends to
 * send. For XML it must be a document that does not parse: the SDK reads a well-formed but
 * foreign document (that same HTML, or an empty body) as a success with every field undefined.
 */
const MALFORMED_BODIES: Readonly<Record<Protocol, string>> = {
  json: '<html><body><h1>502 Bad Gateway</h1></body></html>',
  query: `<GetCallerIdentityResponse xmlns="${STS_NAMESPACE}"><GetCallerIdentityResult><Arn>`
}

/** What a `proxy` fault with `page` answers: a corporate proxy's refusal. */
const PROXY_PAGE = '<html><head><title>Access Denied</title></head><body><h1>Access Denied</h1><p>Blocked by policy.</p></body></html>'

export class FakeAws {
  readonly region: string
  readonly accountId: string
  /** The identity STS reports and AccessDenied messages name. */
  readonly callerArn: string
  /** Added before every answer, on top of any injected latency. */
  latencyMs = 0

  readonly #server: Server
  readonly #credentials: Readonly<Record<string, string>> | undefined
  readonly #calls: FakeAwsCall[] = []
  readonly #policy = new AccessPolicy()
  readonly #faults = new FaultSet()
  readonly #keys: KeyStore
  readonly #secrets: SecretStore
  readonly #parameters: ParameterStore
  readonly #sts: SecurityTokenService
  /** Aborted by close(), ending pending latencies so no timer outlives the fake. */
  readonly #closing = new AbortController()
  #url = ''

  private constructor (options: FakeAwsOptions) {
    this.region = options.region ?? 'us-east-1'
    this.accountId = options.accountId ?? '123456789012'
    this.callerArn = options.callerArn ?? `arn:aws:sts::${this.accountId}:assumed-role/app-role/i-1`
    this.#credentials = options.credentials
    this.#keys = new KeyStore(this.region, this.accountId)
    this.#secrets = new SecretStore(this.region, this.accountId, this.#keys)
    this.#parameters = new ParameterStore(this.region, this.accountId, this.#keys, this.#secrets)
    this.#sts = new SecurityTokenService(this.accountId, this.callerArn)
    this.#server = createServer((req, res) => {
      this.#serve(req, res).catch((err: unknown) => {
        // A client that hung up mid-request is routine (aborts, close()); anything else is a bug.
        if (!req.destroyed) console.error('fake AWS: request failed', err)
        res.destroy()
      })
    })
  }

  /** Starts a fake listening on 127.0.0.1 on a free port. */
  static async start (options: FakeAwsOptions = {}): Promise<FakeAws> {
    const fake = new FakeAws(options)
    await new Promise<void>((resolve, reject) => {
      fake.#server.once('error', reject)
      fake.#server.listen(0, '127.0.0.1', resolve)
    })
    const { port } = fake.#server.address() as AddressInfo
    fake.#url = `http://127.0.0.1:${port}`
    return fake
  }

  /** `http://127.0.0.1:PORT`, for the SDK clients' `endpoint`. */
  get url (): string {
    return this.#url
  }

  /** Stops listening and ends every connection, hung ones included. Safe to call twice. */
  async close (): Promise<void> {
    if (this.#closing.signal.aborted) return
    this.#closing.abort()
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()))
    this.#server.closeAllConnections()
    await closed
  }

  // ---- Seeding -------------------------------------------------------------------------------

  /** Adds a secret version; a new AWSCURRENT moves the previous one to AWSPREVIOUS. */
  putSecret (input: PutSecretInput): PutSecretResult {
    return this.#secrets.put(input)
  }

  /** Removes the secret at once, or with `recoveryWindow` leaves it unreadable (InvalidRequestException). */
  deleteSecret (name: string, options?: { recoveryWindow?: boolean }): void {
    this.#secrets.delete(name, options)
  }

  /** Adds a parameter version (the first is 1). */
  putParameter (input: PutParameterInput): { arn: string, version: number } {
    const version = this.#parameters.put(input)
    return { arn: this.parameterArn(input.name), version }
  }

  labelParameterVersion (name: string, version: number, labels: readonly string[]): void {
    this.#parameters.label(name, version, labels)
  }

  deleteParameter (name: string): void {
    this.#parameters.delete(name)
  }

  parameterArn (name: string): string {
    return `arn:aws:ssm:${this.region}:${this.accountId}:parameter/${name.replace(/^\//, '')}`
  }

  /** Creates a symmetric key and returns its ARN. */
  createKey (input?: CreateKeyInput): string {
    return this.#keys.create(input)
  }

  /** Takes a key id, key ARN, alias name or alias ARN. */
  setKeyEnabled (keyIdOrAlias: string, enabled: boolean): void {
    this.#keys.setEnabled(keyIdOrAlias, enabled)
  }

  /**
   * Makes calls on a resource fail with AccessDeniedException: a string names it (secret or
   * parameter name or ARN, key id, key ARN, alias or alias ARN); a predicate sees the IAM action
   * too. Returns a function that lifts this denial again.
   */
  denyAccess (rule: AccessRule): () => void {
    return this.#policy.deny(rule)
  }

  /** Lifts every denial. */
  allowAll (): void {
    this.#policy.clear()
  }

  // ---- Calls ---------------------------------------------------------------------------------

  /** Every request received, in order, including refused and faulted ones. */
  get calls (): readonly FakeAwsCall[] {
    return this.#calls
  }

  count (operation?: string, filter?: (call: FakeAwsCall) => boolean): number {
    return this.#calls.filter((call) =>
      (operation === undefined || call.operation === operation) && (filter === undefined || filter(call))
    ).length
  }

  resetCalls (): void {
    this.#calls.length = 0
  }

  // ---- Faults --------------------------------------------------------------------------------

  /** Applies `fault` to matching calls, `times` times (default: until removed or cleared). */
  inject (fault: Fault, options?: InjectOptions): FaultHandle {
    return this.#faults.add(fault, options)
  }

  clearFaults (): void {
    this.#faults.clear()
  }

  // ---- Serving -------------------------------------------------------------------------------

  async #serve (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req)
    const request = parseRequest(req.headers, body)
    const credential = parseAuthorization(header(req.headers, 'authorization'))
    const call = this.#record(req, request, credential instanceof AwsError ? undefined : credential)
    try {
      if (credential instanceof AwsError) throw credential
      this.#authenticate(req, body, credential)
      if (request.bodyError !== undefined) throw request.bodyError
      const plan = this.#faults.take(call)
      await this.#delay(this.latencyMs + plan.latencyMs)
      if (this.#closing.signal.aborted) return
      if (plan.fault !== undefined) this.#fail(plan.fault, request, req, res)
      else this.#answer(request, call, res)
    } catch (err) {
      sendError(res, request.protocol, err instanceof AwsError ? err : bug(err))
    }
  }

  #record (req: IncomingMessage, request: ParsedRequest, credential: Credential | undefined): FakeAwsCall {
    const call: FakeAwsCall = {
      service: request.service,
      operation: request.operation,
      target: request.target,
      accessKeyId: credential?.accessKeyId,
      region: credential?.region,
      sessionToken: header(req.headers, 'x-amz-security-token') !== undefined,
      attempt: attemptOf(header(req.headers, 'amz-sdk-request')),
      userAgent: header(req.headers, 'user-agent'),
      amzUserAgent: header(req.headers, 'x-amz-user-agent'),
      contentType: header(req.headers, 'content-type'),
      input: request.input,
      at: new Date()
    }
    this.#calls.push(call)
    return call
  }

  /** With `credentials` configured, only those keys pass, and only with a valid signature. */
  #authenticate (req: IncomingMessage, body: Buffer, credential: Credential): void {
    if (this.#credentials === undefined) return
    const secret = this.#credentials[credential.accessKeyId]
    if (secret === undefined) {
      throw new AwsError('UnrecognizedClientException', 'The security token included in the request is invalid.')
    }
    if (!signatureMatches(req, body, credential, secret)) {
      throw new AwsError(
        'InvalidSignatureException',
        'The request signature we calculated does not match the signature you provided. ' +
          'Check your AWS Secret Access Key and signing method. Consult the service documentation for details.',
        403
      )
    }
  }

  async #delay (ms: number): Promise<void> {
    if (ms <= 0) return
    try {
      await sleep(ms, undefined, { signal: this.#closing.signal })
    } catch {
      // Aborted by close(): the caller checks and stops.
    }
  }

  #answer (request: ParsedRequest, call: FakeAwsCall, res: ServerResponse): void {
    const ctx = new RequestContext(call, this.callerArn, this.#policy)
    if (request.protocol === 'query') {
      sendXml(res, this.#sts.handle(request.operation))
      return
    }
    const output = this.#handlerFor(request)?.handle(request.operation, new Input(request.input), ctx)
    if (output === undefined) {
      throw new AwsError('UnknownOperationException', `Unknown operation ${request.target || '(no X-Amz-Target)'}`)
    }
    sendJson(res, output)
  }

  #handlerFor (request: ParsedRequest): { handle: SecretStore['handle'] } | undefined {
    switch (request.service) {
      case 'secretsmanager': return this.#secrets
      case 'ssm': return this.#parameters
      case 'kms': return this.#keys
      default: return undefined
    }
  }

  #fail (fault: TerminalFault, request: ParsedRequest, req: IncomingMessage, res: ServerResponse): void {
    switch (fault.kind) {
      case 'throttle':
      case 'error500':
      case 'expiredCredentials':
        sendError(res, request.protocol, faultError(fault.kind, request.service))
        return
      case 'awsError':
        sendError(res, request.protocol, new AwsError(fault.code, fault.message ?? `${fault.code} (injected)`, fault.status))
        return
      case 'reset':
        req.socket.destroy()
        return
      case 'malformed':
        send(res, fault.status ?? 200, request.protocol === 'json' ? 'application/x-amz-json-1.1' : 'text/xml', MALFORMED_BODIES[request.protocol])
        return
      case 'proxy':
        send(res, fault.status, 'text/html', fault.page === true ? PROXY_PAGE : '', false)
        return
      case 'answer':
        sendJson(res, fault.body)
        return
      case 'hang':
        // Never answered; close() ends the connection through closeAllConnections().
    }
  }
}

function attemptOf (value: string | undefined): number | undefined {
  const attempt = /attempt=(\d+)/.exec(value ?? '')?.[1]
  return attempt === undefined ? undefined : Number(attempt)
}

/** A fault in the fake itself: answered as AWS answers its own bugs, and logged for the test author. */
function bug (err: unknown): AwsError {
  console.error('fake AWS: unexpected error', err)
  return new AwsError('InternalFailure', `fake AWS bug: ${err instanceof Error ? err.message : String(err)}`, 500)
}
