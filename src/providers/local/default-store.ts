import { randomBytes } from 'node:crypto'

/**
 * The store `secrets-agent dev` writes when none exists, so that the agent answers something
 * useful on first start. Passwords are random per machine: nothing here is a shared default.
 */
export function defaultStoreText (): string {
  const current = randomBytes(18).toString('base64url')
  const previous = randomBytes(18).toString('base64url')
  const apiKey = randomBytes(24).toString('hex')
  return `# secrets-agent local store: edit freely, the agent reloads it on save.
# Format: see "The local store" in the README.
secrets:
  dev/example/database:
    versions:
      - stages: [AWSCURRENT]
        json: { username: app, password: "${current}", host: localhost, port: 5432 }
      - stages: [AWSPREVIOUS]
        json: { username: app, password: "${previous}", host: localhost, port: 5432 }
  dev/example/api-key: "${apiKey}"

parameters:
  /dev/example/log-level: debug
  /dev/example/feature-flags:
    type: StringList
    value: "search,checkout-v2"
  /dev/example/db-password:
    type: SecureString
    versions:
      - value: "${previous}"
      - value: "${current}"
        labels: [current]
`
}
