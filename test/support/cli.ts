import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

export const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url))
const ROOT = fileURLToPath(new URL('../..', import.meta.url))

export interface CliProcess {
  child: ChildProcess
  /** Everything written to stdout and stderr so far. */
  output (): string
  /** Resolves with the first match of `pattern` in the output; rejects after `ms`. */
  waitFor (pattern: RegExp, ms?: number): Promise<RegExpMatchArray>
  /** Resolves with the exit code (or signal name) once the process ends; kills it after `ms`. */
  exited (ms?: number): Promise<number | string>
  kill (): void
}

export interface CliStart {
  /** A built cli.js to run instead of src/cli.ts (through tsx). */
  built?: string
  /** Node flags before the script. */
  nodeArgs?: string[]
}

/** Runs the CLI as its own process, from source or `options.built`, with only the given environment (plus PATH and HOME). */
export function startCli (args: string[], env: NodeJS.ProcessEnv = {}, options: CliStart = {}): CliProcess {
  const script = options.built === undefined ? ['--import', 'tsx', CLI] : [options.built]
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), ...script, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, AWS_EC2_METADATA_DISABLED: 'true', NODE_NO_WARNINGS: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  const waiters = new Set<() => void>()
  const append = (chunk: Buffer): void => {
    out += chunk.toString('utf8')
    for (const w of waiters) w()
  }
  child.stdout?.on('data', append)
  child.stderr?.on('data', append)
  const exit = new Promise<number | string>((resolve) => {
    child.on('exit', (code, signal) => { resolve(code ?? signal ?? 'unknown') })
  })

  return {
    child,
    output: () => out,
    waitFor (pattern, ms = 10_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const match = out.match(pattern)
          if (match !== null) { cleanup(); resolve(match) }
        }
        const timer = setTimeout(() => { cleanup(); reject(new Error(`timed out waiting for ${String(pattern)}; output so far:\n${out}`)) }, ms)
        const onExit = (): void => { setImmediate(() => { check(); cleanup(); reject(new Error(`process exited before ${String(pattern)}; output:\n${out}`)) }) }
        const cleanup = (): void => { clearTimeout(timer); waiters.delete(check); child.off('exit', onExit) }
        waiters.add(check)
        child.once('exit', onExit)
        check()
      })
    },
    async exited (ms = 10_000) {
      const timer = setTimeout(() => child.kill('SIGKILL'), ms)
      try { return await exit } finally { clearTimeout(timer) }
    },
    kill () { if (child.exitCode === null) child.kill('SIGKILL') }
  }
}
