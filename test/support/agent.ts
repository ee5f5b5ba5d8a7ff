import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { startAgent, type RunningAgent } from '../../src/agent.js'
import { loadConfig, type AgentConfig } from '../../src/config/index.js'
import { Token } from '../../src/token.js'

export const TEST_TOKEN = 'test-token-0123456789abcdef'

export interface TestAgent extends RunningAgent {
  dir: string
  /** Every log line so far, parsed. */
  logs (): Array<Record<string, unknown>>
  /** Every log line so far, as written. */
  rawLogs (): string
  get (path: string, headers?: Record<string, string>): Promise<Response>
  stop (): Promise<void>
}

/**
 * Starts the whole agent (startAgent, a real listener on 127.0.0.1:0) over a temp local store,
 * capturing its logs in memory.
 */
export async function startTestAgent (options: { store?: string, config?: Partial<AgentConfig>, env?: NodeJS.ProcessEnv, logLevel?: string } = {}): Promise<TestAgent> {
  const dir = await mkdtemp(join(tmpdir(), 'sa-agent-'))
  const storeFile = join(dir, 'store.yaml')
  await writeFile(storeFile, options.store ?? 'secrets:\n  app/db: \'{"password":"pw-1"}\'\nparameters:\n  /app/level: info\n')
  const { config: defaults } = await loadConfig({ env: {}, defaults: { provider: 'local' } })
  const config: AgentConfig = { ...defaults, httpPort: 0, store: storeFile, ...options.config }
  let raw = ''
  const sink = new Writable({ write (chunk: Buffer, _encoding, callback) { raw += chunk.toString('utf8'); callback() } })
  const logger = pino({ level: options.logLevel ?? 'debug' }, sink)
  const agent = await startAgent({ config, token: new Token(TEST_TOKEN), logger, env: options.env ?? {} })
  return {
    ...agent,
    dir,
    rawLogs: () => raw,
    logs: () => raw.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>),
    get: async (path, headers = { 'X-Aws-Parameters-Secrets-Token': TEST_TOKEN }) => fetch(agent.url + path, { headers }),
    async stop () {
      await agent.close()
      await rm(dir, { recursive: true, force: true })
    }
  }
}

/** Polls until `check` is true, failing after `ms`. */
export async function eventually (check: () => boolean | Promise<boolean>, ms = 3000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}
