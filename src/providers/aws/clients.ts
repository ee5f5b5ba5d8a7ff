import { SecretsManagerClient, type SecretsManagerClientConfig } from '@aws-sdk/client-secrets-manager'
import { STSClient } from '@aws-sdk/client-sts'
import type { NodeHttpHandler } from '@smithy/node-http-handler'
import { createHttpHandler, type TransportOptions } from './http-handler.js'

export type Credentials = SecretsManagerClientConfig['credentials']

/** What every SDK client the provider makes shares. */
export interface ClientSettings {
  /** Undefined: the SDK's chain (AWS_REGION, AWS_DEFAULT_REGION, the profile's region). */
  region: string | undefined
  /** As AWS_PROFILE, for region and other settings read from the shared config file. */
  profile: string | undefined
  credentials: Credentials
  /** One endpoint for every service; undefined lets the SDK read AWS_ENDPOINT_URL(_<SERVICE>). */
  endpoint: string | undefined
  /** Undefined lets the SDK read AWS_MAX_ATTEMPTS / AWS_RETRY_MODE and the profile. */
  maxAttempts: number | undefined
  retryMode: string | undefined
  /** `secrets-agent/<version>`, appended to the SDK's user agent (visible in CloudTrail). */
  userAgent: string
  transport: TransportOptions
}

/** The config every client constructor takes alike (the SDK types each service's apart). */
export interface CommonClientConfig {
  region?: string
  profile?: string
  endpoint?: string
  maxAttempts?: number
  retryMode?: string
  credentials: Credentials
  customUserAgent: string
  requestHandler: NodeHttpHandler
}

/** The client config for one region, with a request handler (and so a socket pool) of its own. */
function clientConfig (settings: ClientSettings, region: string | undefined): CommonClientConfig {
  return {
    ...(region === undefined ? {} : { region }),
    ...(settings.profile === undefined ? {} : { profile: settings.profile }),
    ...(settings.endpoint === undefined ? {} : { endpoint: settings.endpoint }),
    ...(settings.maxAttempts === undefined ? {} : { maxAttempts: settings.maxAttempts }),
    ...(settings.retryMode === undefined ? {} : { retryMode: settings.retryMode }),
    credentials: settings.credentials,
    customUserAgent: settings.userAgent,
    requestHandler: createHttpHandler(settings.transport)
  }
}

/** One service's clients, one per region, each made on first use with the shared settings. */
export function regionalClients<C extends RegionalClient> (settings: ClientSettings, make: (config: CommonClientConfig) => C): RegionalClients<C> {
  return new RegionalClients((region) => make(clientConfig(settings, region)), settings.region)
}

// The SSM and KMS clients are made in ssm.ts and kms.ts, which the provider loads when first
// used: their SDK packages are most of the SDK code the agent would otherwise load at start.
export const secretsManagerClients = (settings: ClientSettings): RegionalClients<SecretsManagerClient> =>
  regionalClients(settings, (config) => new SecretsManagerClient(config))

export const stsClients = (settings: ClientSettings): RegionalClients<STSClient> =>
  regionalClients(settings, (config) => new STSClient(config))

interface RegionalClient {
  destroy (): void
  config: { region: () => Promise<string> }
}

export interface RegionalClientsOptions {
  /** Clients of other regions kept at once (default 8); the least recently used goes first. */
  maxOthers?: number
  /** How long a client let go of is left to finish its calls before it is destroyed (default 60 s). */
  retireAfterMs?: number
}

/**
 * One client per region for one service, made on first use. The default client has the
 * configured (or SDK-resolved) region; an ARN naming another region gets a client of its own,
 * kept for the next call. The region comes from the caller's ARN, and any well-formed name
 * passes (a client cannot know every region), so the clients of other regions are bounded: past
 * `maxOthers`, the least recently used one is let go, and destroyed once its calls have had
 * time to finish; of those let go, at most `maxOthers` wait, and past that the oldest is
 * destroyed at once. Without the bounds, ARNs naming made-up regions would each leave a client
 * (with its sockets) behind.
 */
export class RegionalClients<C extends RegionalClient> {
  readonly #make: (region: string | undefined) => C
  readonly #configuredRegion: string | undefined
  /** By region, least recently used first. */
  readonly #others = new Map<string, C>()
  /** Clients let go of, until their timers destroy them. */
  readonly #retiring = new Map<NodeJS.Timeout, C>()
  readonly #maxOthers: number
  readonly #retireAfterMs: number
  #default: C | undefined

  constructor (make: (region: string | undefined) => C, configuredRegion: string | undefined, options: RegionalClientsOptions = {}) {
    this.#make = make
    this.#configuredRegion = configuredRegion
    this.#maxOthers = options.maxOthers ?? 8
    this.#retireAfterMs = options.retireAfterMs ?? 60_000
  }

  /** The client with the agent's own region. */
  get default (): C {
    this.#default ??= this.#make(this.#configuredRegion)
    return this.#default
  }

  /** The region the default client resolved (rejects when none is configured anywhere). */
  async defaultRegion (): Promise<string> {
    return this.default.config.region()
  }

  /** The client for `region`; the default one for undefined or the agent's own region. */
  async for (region: string | undefined): Promise<C> {
    if (region === undefined || region === this.#configuredRegion) return this.default
    const own = await this.defaultRegion().catch(() => undefined)
    return region === own ? this.default : this.#other(region)
  }

  #other (region: string): C {
    let client = this.#others.get(region)
    if (client !== undefined) {
      // Most recently used: to the end.
      this.#others.delete(region)
      this.#others.set(region, client)
      return client
    }
    client = this.#make(region)
    this.#others.set(region, client)
    if (this.#others.size > this.#maxOthers) {
      const [oldest, retired] = this.#others.entries().next().value as [string, C]
      this.#others.delete(oldest)
      const timer = setTimeout(() => {
        this.#retiring.delete(timer)
        retired.destroy()
      }, this.#retireAfterMs)
      timer.unref()
      this.#retiring.set(timer, retired)
      // Bounded too: made-up regions sent fast must not keep a minute's worth of clients alive.
      if (this.#retiring.size > this.#maxOthers) {
        const [first, oldest] = this.#retiring.entries().next().value as [NodeJS.Timeout, C]
        clearTimeout(first)
        this.#retiring.delete(first)
        oldest.destroy()
      }
    }
    return client
  }

  /** Clients of other regions held now. */
  get othersHeld (): number {
    return this.#others.size
  }

  destroy (): void {
    this.#default?.destroy()
    for (const client of this.#others.values()) client.destroy()
    for (const [timer, client] of this.#retiring) {
      clearTimeout(timer)
      client.destroy()
    }
    this.#default = undefined
    this.#others.clear()
    this.#retiring.clear()
  }
}
