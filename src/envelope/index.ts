/**
 * Envelope encryption (DESIGN §5): AWS Encryption SDK messages over the keyrings providers hand
 * out, with data-key caching. Imports only `@aws-crypto/*` from outside the agent. The keyrings
 * themselves come from the providers (the aws provider's KMS keyring is
 * src/providers/aws/keyring.ts); nothing here knows which provider made one.
 */
export {
  DEFAULT_DATA_KEY_CACHING, Envelope, envelopeSettings, checkEncryptionContext,
  type DataKeyCaching, type EnvelopeDecryptInput, type EnvelopeDecryptResult, type EnvelopeEncryptInput,
  type EnvelopeEncryptResult, type EnvelopeOptions
} from './envelope.js'
export { KeyNotAllowedError, keyIdOf, keyIdsOf, KMS_PROVIDER_ID, MessageKeyring } from './message-keyring.js'
