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
  /** How long a proxy may take to open a tunnel (default TUNNEL_TIMEOUT_MS). */
  tunnelTimeoutMs?: number
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
      const agent = new TunnelAgent(proxy, { ...agentOptions(this.#options), ...caOption(this.#options) }, this.#options.tunnelTimeoutMs ?? TUNNEL_TIMEOUT_MS)
      handler = new NodeHttpHandler(handlerOptions(this.#options, agent, agent))
      this.#proxied.set(proxy, handler)
    }
    return handler
  }
}

/** How long a proxy may take to open a tunnel (answer CONNECT) before the attempt is given up. */
export const TUNNEL_TIMEOUT_MS = 10_000

/**
 * An HttpsProxyAgent whose tunnels are given up when the proxy does not open them in time. The
 * agent holds a socket slot (`maxSockets`) from the moment it asks the proxy to CONNECT until the
 * proxy answers, and a call that times out meanwhile does not end that wait: a proxy that never
 * answered a few CONNECTs held every slot, and every later call timed out, though the proxy
 * opened new tunnels fine. A tunnel is given up by closing its connection to the proxy (through a
 * signal of its own in the options the agent makes that connection with), so none lingers.
 */
class TunnelAgent extends HttpsProxyAgent<string> {
  readonly #timeoutMs: number

  constructor (proxy: string, options: ConstructorParameters<typeof HttpsProxyAgent<string>>[1], timeoutMs: number) {
    super(proxy, options)
    this.#timeoutMs = timeoutMs
  }

  override async connect (...args: Parameters<HttpsProxyAgent<string>['connect']>): ReturnType<HttpsProxyAgent<string>['connect']> {
    const abandon = new AbortController()
    // super.connect() opens the proxy connection (net or tls.connect) with `connectOpts` before
    // it first awaits: this call's signal goes in for that moment only.
    const shared = this.connectOpts
    this.connectOpts = { ...shared, signal: abandon.signal }
    let tunnel: ReturnType<HttpsProxyAgent<string>['connect']>
    try {
      tunnel = super.connect(...args)
    } finally {
      this.connectOpts = shared
    }
    // At the deadline the proxy connection is aborted, which ends the wait for the proxy's answer.
    const timer = setTimeout(() => { abandon.abort(new ProxyTunnelTimeoutError(this.#timeoutMs)) }, this.#timeoutMs)
    timer.unref()
    try {
      return await tunnel
    } catch (error) {
      throw abandon.signal.aborted ? abandon.signal.reason : error
    } finally {
      clearTimeout(timer)
    }
  }
}

/** The proxy did not open a tunnel in time (a network failure: transient). */
class ProxyTunnelTimeoutError extends Error {
  override readonly name = 'ProxyTunnelTimeoutError'
  readonly code = 'ETIMEDOUT'
  constructor (timeoutMs: number) {
    super(`The proxy did not open a tunnel within ${timeoutMs} ms.`)
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
