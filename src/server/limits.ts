/** Limits of DESIGN §4, in one place. */
export const JSON_TYPE = 'application/json; charset=utf-8'
export const MAX_URL_BYTES = 64 * 1024
export const MAX_HEADER_BYTES = 16 * 1024
export const MAX_ID_BYTES = 2048
export const KMS_BODY_LIMIT = 64 * 1024
