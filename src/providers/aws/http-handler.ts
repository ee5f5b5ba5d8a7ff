import { readFileSync } from 'node:fs'
import type { Agent as HttpAgent } from 'node:http'
import type { Agent as HttpsAgent } from 'node:https'
import { NodeHttpHandler, type NodeHttpHandlerOptions } from '@smithy/node-http-handler'
import { HttpsProxyAgent } from 'https-proxy-agent'
import type { Logger } from 'pino'
import { getProxyForUrl } from 'proxy-from-env'
import { nodeHttp, nodeHttps } from '../../builtins.js'
import { sdkLogger } from './sdk-logger.js'

/** How the SDK clients reach AWS: pool size and trusted CAs. */
export interface TransportOptions {
  /** Sockets open at once per client (one client per service and region). */
  maxSockets: number
  /** PEM certificates to trust instead of Node's bundled roots (`AWS_CA_BUNDLE`). */
  ca: string | undefined
  logger: Logger
}

type HandleArgs = Parameters<NodeHttpHandler['handle']>
type HandleResult = ReturnType<NodeHttpHandler['handle']>

/**
 * Reads `AWS_CA_BUNDLE`, which the JavaScript SDK does not read itself (the CLI and the Python
 * SDK do). A bundle that cannot be read stops the start: running with the wrong trust store would
 * fail every call later, less clearly.
 */
export function readCaBundle (env: NodeJS.ProcessEnv): string | undefined {
  const path = env.AWS_CA_BUNDLE
  if (path === undefined || path === '') return undefined
  try {
    return readFileSync(path, 'utf8')
  } catch (error) {
    throw new Error(`AWS_CA_BUNDLE names ${path}, which cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`, { cause: error })
  }
}

/**
 * A request handler for one SDK client. It honours `HTTPS_PROXY`/`HTTP_PROXY` and `NO_PROXY`
 * (which the SDK ignores), deciding per request from the URL: an endpoint override may point one
 * service at a host that NO_PROXY exempts.
 */
export function createHttpHandler (options: TransportOptions): NodeHttpHandler {
  return new ProxyRoutingHandler(options)
}

class ProxyRoutingHandler extends NodeHttpHandler {
  readonly #options: TransportOptions
  /** Proxy URL → the handler whose agents tunnel through it. */
  readonly #proxied = new Map<string, NodeHttpHandler>()

  constructor (options: TransportOptions) {
    super(handlerOptions(options, new (nodeHttp().Agent)(agentOptions(options)), new (nodeHttps().Agent)({ ...agentOptions(options), ...caOption(options) })))
    this.#options = options
  }

  override handle (...[request, handlerOptions]: HandleArgs): HandleResult {
    const port = request.port === undefined ? '' : `:${request.port}`
    const proxy = getProxyForUrl(`${request.protocol}//${request.hostname}${port}${request.path}`)
    if (proxy === '') return super.handle(request, handlerOptions)
    return this.#viaProxy(proxy).handle(request, handlerOptions)
  }

  override destroy (): void {
    super.destroy()
    for (const handler of this.#proxied.values()) handler.destroy()
    this.#proxied.clear()
  }

  #viaProxy (proxy: string): NodeHttpHandler {
    let handler = this.#proxied.get(proxy)
    if (handler === undefined) {
      // One agent for both schemes: it CONNECTs to the target and, for https, upgrades to TLS
      // with our `ca`. The proxy's own certificate (an https:// proxy) is checked the same way.
      const agent = new HttpsProxyAgent(proxy, { ...agentOptions(this.#options), ...caOption(this.#options) })
      handler = new NodeHttpHandler(handlerOptions(this.#options, agent, agent))
      this.#proxied.set(proxy, handler)
    }
    return handler
  }
}

function agentOptions (options: TransportOptions): { keepAlive: boolean, maxSockets: number } {
  return { keepAlive: true, maxSockets: options.maxSockets }
}

function caOption (options: TransportOptions): { ca?: string } {
  return options.ca === undefined ? {} : { ca: options.ca }
}

function handlerOptions (options: TransportOptions, httpAgent: HttpAgent, httpsAgent: HttpsAgent | HttpAgent): NodeHttpHandlerOptions {
  return {
    httpAgent,
    httpsAgent: httpsAgent as HttpsAgent,
    logger: sdkLogger(options.logger)
  }
}
