import type * as Http from 'node:http'
import type * as Https from 'node:https'
import { createRequire } from 'node:module'

const load = createRequire(import.meta.url)

/*
 * node:http and node:https, loaded as CommonJS modules. An ESM import of a built-in makes Node
 * build a module facade that reads every one of its exports, and on Node 24 some of node:http's
 * exports are getters that load undici (Node's fetch): 13-17 ms of the agent's start, for code
 * the agent never runs. require() reads only what is asked for.
 */

export function nodeHttp (): typeof Http {
  return load('node:http') as typeof Http
}

export function nodeHttps (): typeof Https {
  return load('node:https') as typeof Https
}
