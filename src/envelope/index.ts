/**
 * Envelope encryption (DESIGN §5): AWS Encryption SDK messages over the keyrings providers hand
 * out, with data-key caching. Imports only `@aws-crypto/*` from outside the agent. The KMS keyring
 * for the aws provider is in ./kms-keyring.ts, imported by that provider.
 */
export {
  DEFAULT_DATA_KEY_CACHING, Envelope, envelopeSettings, checkEncryptionContext,
  type DataKeyCaching, type EnvelopeDecryptInput, type EnvelopeDecryptResult, type EnvelopeEncryptInput,
  type EnvelopeEncryptResult, type EnvelopeOptions
} from './envelope.js'
export { KeyNotAllowedError, keyIdOf, keyIdsOf, KMS_PROVIDER_ID, MessageKeyring } from './message-keyring.js'
