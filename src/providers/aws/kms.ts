import { DecryptCommand, EncryptCommand, GenerateDataKeyCommand, KMSClient } from '@aws-sdk/client-kms'
import type {
  CallOptions, DecryptInput, DecryptResult, EncryptInput, EncryptResult, GenerateDataKeyInput,
  GenerateDataKeyResult
} from '../types.js'
import { regionOfArn } from './arn.js'
import { callAws } from './call.js'
import { regionalClients, type ClientSettings, type RegionalClients } from './clients.js'
import { malformedAnswer } from './errors.js'

/** The KMS clients, one per region, made on first use. */
export function kmsClients (settings: ClientSettings): RegionalClients<KMSClient> {
  return regionalClients(settings, (config) => new KMSClient(config))
}

/** KMS: Encrypt, Decrypt and GenerateDataKey, with symmetric keys. */
export class KmsOperations {
  constructor (
    private readonly clients: RegionalClients<KMSClient>,
    private readonly timeoutMs: number
  ) {}

  async encrypt (input: EncryptInput, options?: CallOptions): Promise<EncryptResult> {
    return callAws('kms', this.timeoutMs, options?.signal, async (abortSignal) => {
      const client = await this.clients.for(regionOfArn(input.keyId, 'kms'))
      const output = await client.send(new EncryptCommand({
        KeyId: input.keyId,
        Plaintext: input.plaintext,
        EncryptionContext: input.encryptionContext
      }), { abortSignal })
      if (output.CiphertextBlob === undefined || output.KeyId === undefined) throw malformedAnswer('kms', 'CiphertextBlob or KeyId')
      return { ciphertextBlob: output.CiphertextBlob, keyId: output.KeyId, encryptionAlgorithm: output.EncryptionAlgorithm ?? 'SYMMETRIC_DEFAULT' }
    })
  }

  /** Without a key id the ciphertext names its key, but not its region: the agent's own is asked. */
  async decrypt (input: DecryptInput, options?: CallOptions): Promise<DecryptResult> {
    return callAws('kms', this.timeoutMs, options?.signal, async (abortSignal) => {
      const client = await this.clients.for(regionOfArn(input.keyId, 'kms'))
      const output = await client.send(new DecryptCommand({
        CiphertextBlob: input.ciphertextBlob,
        EncryptionContext: input.encryptionContext,
        KeyId: input.keyId
      }), { abortSignal })
      if (output.Plaintext === undefined || output.KeyId === undefined) throw malformedAnswer('kms', 'Plaintext or KeyId')
      return { plaintext: output.Plaintext, keyId: output.KeyId, encryptionAlgorithm: output.EncryptionAlgorithm ?? 'SYMMETRIC_DEFAULT' }
    })
  }

  async generateDataKey (input: GenerateDataKeyInput, options?: CallOptions): Promise<GenerateDataKeyResult> {
    return callAws('kms', this.timeoutMs, options?.signal, async (abortSignal) => {
      const client = await this.clients.for(regionOfArn(input.keyId, 'kms'))
      const output = await client.send(new GenerateDataKeyCommand({
        KeyId: input.keyId,
        KeySpec: input.keySpec,
        NumberOfBytes: input.numberOfBytes,
        EncryptionContext: input.encryptionContext
      }), { abortSignal })
      if (output.CiphertextBlob === undefined || output.Plaintext === undefined || output.KeyId === undefined) {
        throw malformedAnswer('kms', 'CiphertextBlob, Plaintext or KeyId')
      }
      return { ciphertextBlob: output.CiphertextBlob, plaintext: output.Plaintext, keyId: output.KeyId }
    })
  }
}
