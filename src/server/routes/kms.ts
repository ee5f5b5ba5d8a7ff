import type { FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify'
import type { Envelope } from '../../envelope/envelope.js'
import { KeyNotAllowedError } from '../../envelope/errors.js'
import { AccessDeniedError, InvalidRequestError, NotFoundError, invalidCiphertext } from '../../providers/errors.js'
import type { EncryptionContext, Provider } from '../../providers/types.js'
import { AllowList } from '../allow.js'
import { Errors } from '../errors.js'
import { JSON_TYPE } from '../limits.js'
import { errorResponses } from '../schemas.js'
import { checkId, idSchema } from './common.js'

/** Default body limit of `/envelope/*` (`envelope_max_body_bytes`). `/kms/*` keep the app's 64 KiB. */
export const ENVELOPE_BODY_LIMIT = 1024 * 1024
/** KMS's own limits: Encrypt takes 1 to 4096 bytes; its ciphertexts are at most 6144 bytes. */
const MAX_KMS_PLAINTEXT = 4096
const MAX_KMS_CIPHERTEXT = 6144

export interface KmsRoutesOptions {
  provider: Provider
  /** The `[allow] kms_keys` patterns; every key when absent. */
  allow?: AllowList | undefined
  /** Envelope encryption; by default one over `provider` with the settings' defaults. */
  /**
   * The envelope encryption, or a function making it: the Encryption SDK is large, so the agent
   * loads it on the first /envelope request rather than at start. Over `provider` when absent.
   */
  envelope?: Envelope | (() => Promise<Envelope>) | undefined
  /** Body limit of `/envelope/*` in bytes; default 1 MiB. */
  envelopeMaxBodyBytes?: number | undefined
}

/** A UTF-16 surrogate without its other half (a `u` regexp sees a pair as one code point). */
const LONE_SURROGATE = /\p{Cs}/u

/** Standard base64 with padding, as KMS's JSON API sends blobs. */
const base64 = { type: 'string', pattern: '^[A-Za-z0-9+/]*={0,2}$', description: 'base64' }
const encryptionContext = {
  type: 'object',
  additionalProperties: { type: 'string' },
  description: 'Pairs bound to the ciphertext as additional authenticated data'
}
const keyId = { ...idSchema, description: 'Key id, key ARN, alias name (alias/...) or alias ARN' }

const response = (properties: Record<string, object>): object => ({
  type: 'object',
  properties,
  required: Object.keys(properties)
})
const string = { type: 'string' }
const kmsErrors = errorResponses(400, 401, 403, 404, 413, 415, 429, 502, 503, 504)

interface EncryptBody { KeyId: string, Plaintext: string, EncryptionContext?: EncryptionContext }
interface DecryptBody { CiphertextBlob: string, EncryptionContext?: EncryptionContext, KeyId?: string }
interface GenerateDataKeyBody { KeyId: string, KeySpec?: 'AES_256' | 'AES_128', NumberOfBytes?: number, EncryptionContext?: EncryptionContext }
interface EnvelopeEncryptBody { KeyId?: string, Plaintext: string, EncryptionContext?: EncryptionContext }
interface EnvelopeDecryptBody { Ciphertext: string, EncryptionContext?: EncryptionContext }

/**
 * `POST /kms/encrypt`, `/kms/decrypt`, `/kms/generate-data-key` (KMS's own API shapes: PascalCase
 * JSON, base64 blobs) and `POST /envelope/encrypt`, `/envelope/decrypt` (AWS Encryption SDK
 * messages). Every key passes the `[allow] kms_keys` patterns first; a refusal is a 403 and a
 * warning naming the key. Plaintexts and data keys are never logged, and the Buffers that held
 * them are zeroed once the answer is built (the base64 strings cannot be).
 */
export const kmsRoutes: FastifyPluginCallback<KmsRoutesOptions> = (app, options, done) => {
  const { provider } = options
  const allow = options.allow ?? new AllowList()
  let envelopeReady: Promise<Envelope> | undefined
  const envelope = async (): Promise<Envelope> => {
    const given = options.envelope
    envelopeReady ??= typeof given === 'function'
      ? given()
      : given !== undefined
        ? Promise.resolve(given)
        : import('../../envelope/envelope.js').then(({ Envelope }) => new Envelope({ provider, allowKey: (id) => allow.kmsKey(id) }))
    return envelopeReady
  }
  const envelopeBodyLimit = options.envelopeMaxBodyBytes ?? ENVELOPE_BODY_LIMIT
  if (!Number.isInteger(envelopeBodyLimit) || envelopeBodyLimit < 1) {
    done(new TypeError('kmsRoutes: envelopeMaxBodyBytes must be a positive whole number of bytes.'))
    return
  }

  // Bodies here are JSON only: without fastify's text/plain parser, any other type is a 415.
  app.removeContentTypeParser('text/plain')

  // A context is bound to the ciphertext as UTF-8, where every lone surrogate (`"\ud800"` in
  // JSON) becomes U+FFFD: two different contexts would open the same ciphertext, and an envelope
  // message would fail its own round trip. KMS answers such a string 400; so does the agent.
  app.addHook('preHandler', (request, _reply, done) => {
    const context = (request.body as { EncryptionContext?: EncryptionContext } | undefined)?.EncryptionContext
    if (context !== undefined && Object.entries(context).some(([key, value]) => LONE_SURROGATE.test(key) || LONE_SURROGATE.test(value))) {
      done(new Errors.Validation('EncryptionContext keys and values must be valid Unicode (a lone surrogate is not).'))
      return
    }
    done()
  })

  const checkKey = (request: FastifyRequest, id: string): void => {
    if (!allow.kmsKey(id)) refuse(request, [id])
  }

  app.post<{ Body: EncryptBody }>('/kms/encrypt', {
    schema: {
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['KeyId', 'Plaintext'],
        properties: { KeyId: keyId, Plaintext: base64, EncryptionContext: encryptionContext }
      },
      response: { 200: response({ CiphertextBlob: string, KeyId: string, EncryptionAlgorithm: string }), ...kmsErrors }
    }
  }, async (request, reply) => {
    const { KeyId, EncryptionContext } = request.body
    checkKey(request, checkId(KeyId, 'KeyId'))
    const plaintext = decodeBase64(request.body.Plaintext, 'Plaintext')
    try {
      if (plaintext.length < 1 || plaintext.length > MAX_KMS_PLAINTEXT) {
        throw new Errors.Validation(`Plaintext must be between 1 and ${MAX_KMS_PLAINTEXT} bytes long once decoded.`)
      }
      const result = await provider.encrypt({ keyId: KeyId, plaintext, ...(EncryptionContext === undefined ? {} : { encryptionContext: EncryptionContext }) })
      return reply.type(JSON_TYPE).send({
        CiphertextBlob: toBase64(result.ciphertextBlob),
        KeyId: result.keyId,
        EncryptionAlgorithm: result.encryptionAlgorithm
      })
    } finally {
      plaintext.fill(0)
    }
  })

  app.post<{ Body: DecryptBody }>('/kms/decrypt', {
    schema: {
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['CiphertextBlob'],
        properties: { CiphertextBlob: base64, EncryptionContext: encryptionContext, KeyId: keyId }
      },
      response: { 200: response({ Plaintext: string, KeyId: string, EncryptionAlgorithm: string }), ...kmsErrors }
    }
  }, async (request, reply) => {
    const { KeyId, EncryptionContext } = request.body
    // With a KeyId, the provider checks the ciphertext was made under it, so that id is the one to
    // allow. Without one, the key comes out of the ciphertext: its ARN must be allowed (below).
    if (KeyId !== undefined) checkKey(request, checkId(KeyId, 'KeyId'))
    const ciphertextBlob = decodeBase64(request.body.CiphertextBlob, 'CiphertextBlob')
    if (ciphertextBlob.length < 1 || ciphertextBlob.length > MAX_KMS_CIPHERTEXT) {
      throw new Errors.Validation(`CiphertextBlob must be between 1 and ${MAX_KMS_CIPHERTEXT} bytes long once decoded.`)
    }
    // Without a KeyId and with keys refused, the key is known only once KMS has opened the
    // ciphertext. So a refusal, and whatever KMS says of the key (disabled, not found, denied),
    // answers as an invalid ciphertext does: anything else would tell the caller something of a
    // ciphertext made under a key it may not use. A KeyId gets the precise answers.
    const keyHidden = KeyId === undefined && !allow.allowsEvery('kmsKeys')
    const result = await provider.decrypt({
      ciphertextBlob,
      ...(EncryptionContext === undefined ? {} : { encryptionContext: EncryptionContext }),
      ...(KeyId === undefined ? {} : { keyId: KeyId })
    }).catch((error: unknown) => {
      if (!keyHidden || !saysOfTheKey(error)) throw error
      // The operator still hears what KMS said: a missing grant or a disabled key as app.ts's
      // handler tells it, a key not found (deleted, or another account's) at info.
      const said = { route: request.routeOptions.url, type: error.code }
      if (error instanceof AccessDeniedError) request.log.warn(said, 'upstream refused access')
      else request.log.info(said, 'KMS did not open the ciphertext; answered as an invalid one')
      throw invalidCiphertext({ cause: error })
    })
    const plaintext = result.plaintext
    try {
      if (keyHidden && !allow.kmsKey(result.keyId)) {
        logRefusal(request, [result.keyId])
        throw invalidCiphertext()
      }
      return reply.type(JSON_TYPE).send({
        Plaintext: toBase64(plaintext),
        KeyId: result.keyId,
        EncryptionAlgorithm: result.encryptionAlgorithm
      })
    } finally {
      plaintext.fill(0)
    }
  })

  app.post<{ Body: GenerateDataKeyBody }>('/kms/generate-data-key', {
    schema: {
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['KeyId'],
        properties: {
          KeyId: keyId,
          KeySpec: { type: 'string', enum: ['AES_256', 'AES_128'] },
          NumberOfBytes: { type: 'integer', minimum: 1, maximum: 1024 },
          EncryptionContext: encryptionContext
        }
      },
      response: { 200: response({ CiphertextBlob: string, Plaintext: string, KeyId: string }), ...kmsErrors }
    }
  }, async (request, reply) => {
    const { KeyId, KeySpec, NumberOfBytes, EncryptionContext } = request.body
    checkKey(request, checkId(KeyId, 'KeyId'))
    if (KeySpec !== undefined && NumberOfBytes !== undefined) throw new Errors.Validation('Give KeySpec or NumberOfBytes, not both.')
    const result = await provider.generateDataKey({
      keyId: KeyId,
      // KMS wants one of the two; a request naming neither gets a 256-bit key, the common case.
      ...(NumberOfBytes === undefined ? { keySpec: KeySpec ?? 'AES_256' } : { numberOfBytes: NumberOfBytes }),
      ...(EncryptionContext === undefined ? {} : { encryptionContext: EncryptionContext })
    })
    try {
      return reply.type(JSON_TYPE).send({
        CiphertextBlob: toBase64(result.ciphertextBlob),
        Plaintext: toBase64(result.plaintext),
        KeyId: result.keyId
      })
    } finally {
      result.plaintext.fill(0)
    }
  })

  app.post<{ Body: EnvelopeEncryptBody }>('/envelope/encrypt', {
    bodyLimit: envelopeBodyLimit,
    schema: {
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['Plaintext'],
        properties: { KeyId: keyId, Plaintext: base64, EncryptionContext: encryptionContext }
      },
      response: { 200: response({ Ciphertext: { type: 'string', description: 'An AWS Encryption SDK message, base64' } }), ...kmsErrors }
    }
  }, async (request, reply) => {
    const { KeyId, EncryptionContext } = request.body
    if (KeyId !== undefined) checkId(KeyId, 'KeyId')
    const plaintext = decodeBase64(request.body.Plaintext, 'Plaintext')
    try {
      const result = await refusals(request, (await envelope()).encrypt({
        plaintext,
        ...(KeyId === undefined ? {} : { keyId: KeyId }),
        ...(EncryptionContext === undefined ? {} : { encryptionContext: EncryptionContext })
      }))
      return reply.type(JSON_TYPE).send({ Ciphertext: result.ciphertext.toString('base64') })
    } finally {
      plaintext.fill(0)
    }
  })

  app.post<{ Body: EnvelopeDecryptBody }>('/envelope/decrypt', {
    bodyLimit: envelopeBodyLimit,
    schema: {
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['Ciphertext'],
        properties: { Ciphertext: base64, EncryptionContext: encryptionContext }
      },
      response: {
        200: response({
          Plaintext: string,
          EncryptionContext: { type: 'object', additionalProperties: { type: 'string' } },
          KeyIds: { type: 'array', items: string }
        }),
        ...kmsErrors
      }
    }
  }, async (request, reply) => {
    // Watched from the start: loading the Encryption SDK on first use takes a while.
    const signal = clientGone(reply)
    const { EncryptionContext } = request.body
    const ciphertext = decodeBase64(request.body.Ciphertext, 'Ciphertext')
    const result = await refusals(request, (await envelope()).decrypt({
      ciphertext,
      ...(EncryptionContext === undefined ? {} : { encryptionContext: EncryptionContext }),
      signal
    }))
    try {
      return reply.type(JSON_TYPE).send({
        Plaintext: result.plaintext.toString('base64'),
        EncryptionContext: result.encryptionContext,
        KeyIds: result.keyIds
      })
    } finally {
      result.plaintext.fill(0)
    }
  })

  done()
}

/** Aborts when the connection closes before the answer is written: its client has gone. */
function clientGone (reply: FastifyReply): AbortSignal {
  const response = reply.raw
  if (response.destroyed) return AbortSignal.abort()
  const gone = new AbortController()
  response.once('close', () => { if (!response.writableEnded) gone.abort() })
  return gone.signal
}

/** Logs the refusal (the one place a key id is logged above debug) and answers 403. */
function refuse (request: FastifyRequest, keyIds: readonly string[]): never {
  logRefusal(request, keyIds)
  throw new Errors.AccessDenied('The KMS key may not be used through this agent (allow-list).')
}

/** An error KMS gives about the key or the ciphertext, as against the agent's own state or upstream's health. */
function saysOfTheKey (error: unknown): error is AccessDeniedError | NotFoundError | InvalidRequestError {
  return error instanceof AccessDeniedError || error instanceof NotFoundError || error instanceof InvalidRequestError
}

function logRefusal (request: FastifyRequest, keyIds: readonly string[]): void {
  request.log.warn({ route: request.routeOptions.url, keyIds }, 'KMS key refused by the allow-list')
}

async function refusals<T> (request: FastifyRequest, work: Promise<T>): Promise<T> {
  try {
    return await work
  } catch (error) {
    if (error instanceof KeyNotAllowedError) refuse(request, error.keyIds)
    throw error
  }
}

/**
 * Strict standard base64: the schema pattern has checked the alphabet and the padding's place;
 * here the length, which the pattern cannot (`Buffer.from` would accept anything).
 */
function decodeBase64 (value: string, field: string): Buffer {
  if (value.length % 4 !== 0) throw new Errors.Validation(`The field ${JSON.stringify(field)} is not valid base64.`)
  return Buffer.from(value, 'base64')
}

function toBase64 (bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')
}
