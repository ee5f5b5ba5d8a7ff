/**
 * The two AWS wire protocols as far as the fake needs them: JSON 1.1 (`X-Amz-Target`, JSON in
 * and out) and query (form POST in, XML out), plus the SigV4 `Authorization` header.
 */
import { createHash, createHmac, randomUUID, timingSafeEqual } from 'node:crypto'
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'

import { AwsError } from './errors.js'
import { isRecord } from './input.js'
import { escapeXml, STS_NAMESPACE } from './sts.js'
import type { FakeService } from './types.js'

export type Protocol = 'json' | 'query'

export interface ParsedRequest {
  readonly protocol: Protocol
  readonly service: FakeService | 'unknown'
  readonly operation: string
  readonly target: string
  readonly input: Readonly<Record<string, unknown>>
  /** Set when the body could not be read as its protocol says; answered before anything else. */
  readonly bodyError: AwsError | undefined
}

const TARGET_PREFIXES: Readonly<Record<string, FakeService>> = {
  secretsmanager: 'secretsmanager',
  AmazonSSM: 'ssm',
  TrentService: 'kms'
}

export function readBody (req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => resolve(Buffer.concat(chunks)))
    req.on('error', reject)
  })
}

export function parseRequest (headers: IncomingHttpHeaders, body: Buffer): ParsedRequest {
  const target = header(headers, 'x-amz-target')
  if (target === undefined && header(headers, 'content-type')?.startsWith('application/x-www-form-urlencoded') === true) {
    const input = Object.fromEntries(new URLSearchParams(body.toString('utf8')))
    const action = input.Action ?? ''
    return { protocol: 'query', service: 'sts', operation: action, target: `sts.${action}`, input, bodyError: undefined }
  }
  const [prefix = '', operation = ''] = (target ?? '').split('.', 2)
  const service = TARGET_PREFIXES[prefix] ?? 'unknown'
  const { input, error } = parseJsonBody(body)
  return { protocol: 'json', service, operation, target: target ?? '', input, bodyError: error }
}

function parseJsonBody (body: Buffer): { input: Record<string, unknown>, error: AwsError | undefined } {
  // The SDK sends `{}` for an operation without input; an empty body is what curl sends.
  if (body.length === 0) return { input: {}, error: undefined }
  try {
    const parsed: unknown = JSON.parse(body.toString('utf8'))
    if (isRecord(parsed)) return { input: parsed, error: undefined }
  } catch {
    // Reported below, as AWS does for any body it cannot deserialise.
  }
  return { input: {}, error: new AwsError('SerializationException', 'Start of structure or map found where not expected.') }
}

export interface Credential {
  readonly accessKeyId: string
  readonly date: string
  readonly region: string
  readonly service: string
  readonly signedHeaders: readonly string[]
  readonly signature: string
}

/**
 * Reads `AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/ssm/aws4_request,
 * SignedHeaders=host;x-amz-date, Signature=hex`. A missing or incomplete header gives the 403
 * AWS answers with instead.
 */
export function parseAuthorization (value: string | undefined): Credential | AwsError {
  if (value === undefined || value === '') {
    return new AwsError('MissingAuthenticationTokenException', 'Missing Authentication Token', 403)
  }
  const match = /^AWS4-HMAC-SHA256 (.*)$/.exec(value)
  const fields = new Map((match?.[1] ?? '').split(/,\s*/).map((part) => {
    const eq = part.indexOf('=')
    return [part.slice(0, eq).trim(), part.slice(eq + 1).trim()] as const
  }))
  const scope = fields.get('Credential')?.split('/') ?? []
  const [accessKeyId, date, region, service, terminator] = scope
  const signedHeaders = fields.get('SignedHeaders')
  const signature = fields.get('Signature')
  if (match === null || scope.length !== 5 || terminator !== 'aws4_request' || accessKeyId === undefined ||
    date === undefined || region === undefined || service === undefined || signedHeaders === undefined ||
    signature === undefined) {
    return new AwsError(
      'IncompleteSignatureException',
      `Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters and a scope of ` +
        `the form AKID/date/region/service/aws4_request. Authorization=${value}`,
      403
    )
  }
  return { accessKeyId, date, region, service, signedHeaders: signedHeaders.split(';'), signature }
}

/** Recomputes the SigV4 signature from the request as received and compares it. */
export function signatureMatches (
  req: IncomingMessage, body: Buffer, credential: Credential, secretAccessKey: string
): boolean {
  const amzDate = header(req.headers, 'x-amz-date') ?? ''
  const url = new URL(req.url ?? '/', 'http://fake')
  const canonicalRequest = [
    req.method ?? 'POST',
    url.pathname,
    canonicalQuery(url.searchParams),
    ...credential.signedHeaders.map((name) => `${name}:${(header(req.headers, name) ?? '').trim().replace(/\s+/g, ' ')}`),
    '',
    credential.signedHeaders.join(';'),
    header(req.headers, 'x-amz-content-sha256') ?? sha256Hex(body)
  ].join('\n')
  const scope = `${credential.date}/${credential.region}/${credential.service}/aws4_request`
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256Hex(canonicalRequest)].join('\n')
  let key: Buffer = hmac(`AWS4${secretAccessKey}`, credential.date)
  for (const part of [credential.region, credential.service, 'aws4_request']) key = hmac(key, part)
  const expected = Buffer.from(hmac(key, stringToSign).toString('hex'))
  const given = Buffer.from(credential.signature)
  return amzDate.startsWith(credential.date) && expected.length === given.length && timingSafeEqual(expected, given)
}

function canonicalQuery (params: URLSearchParams): string {
  const encode = (text: string): string =>
    encodeURIComponent(text).replace(/[!'()*]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`)
  return [...params].map(([key, value]) => `${encode(key)}=${encode(value)}`).sort().join('&')
}

function sha256Hex (data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}

function hmac (key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data).digest()
}

export function header (headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name]
  return Array.isArray(value) ? value.join(', ') : value
}

export function sendJson (res: ServerResponse, body: unknown): void {
  send(res, 200, 'application/x-amz-json-1.1', JSON.stringify(body))
}

export function sendXml (res: ServerResponse, xml: string): void {
  send(res, 200, 'text/xml', xml)
}

export function sendError (res: ServerResponse, protocol: Protocol, err: AwsError): void {
  if (protocol === 'json') {
    const body = err.message === '' ? { __type: err.code } : { __type: err.code, message: err.message }
    send(res, err.status, 'application/x-amz-json-1.1', JSON.stringify(body))
    return
  }
  const xml = [
    `<ErrorResponse xmlns="${STS_NAMESPACE}">`,
    `<Error><Type>${err.status < 500 ? 'Sender' : 'Receiver'}</Type>`,
    `<Code>${escapeXml(queryCode(err.code))}</Code>`,
    `<Message>${escapeXml(err.message)}</Message></Error>`,
    `<RequestId>${randomUUID()}</RequestId>`,
    '</ErrorResponse>'
  ].join('')
  send(res, err.status, 'text/xml', xml)
}

/** The query protocol names the common errors without the `Exception` suffix JSON services use. */
const QUERY_CODES: Readonly<Record<string, string>> = {
  MissingAuthenticationTokenException: 'MissingAuthenticationToken',
  IncompleteSignatureException: 'IncompleteSignature',
  UnrecognizedClientException: 'InvalidClientTokenId',
  ExpiredTokenException: 'ExpiredToken',
  ThrottlingException: 'Throttling',
  InvalidSignatureException: 'SignatureDoesNotMatch'
}

function queryCode (code: string): string {
  return QUERY_CODES[code] ?? code
}

export function send (res: ServerResponse, status: number, contentType: string, body: string, asAws = true): void {
  // A client that gave up (abort, timeout) has already closed the socket: nothing to answer.
  if (res.destroyed || res.writableEnded) return
  res.writeHead(status, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(body),
    // AWS names every answer; something else on the way (a proxy) does not.
    ...(asAws ? { 'x-amzn-requestid': randomUUID() } : {})
  })
  res.end(body)
}
