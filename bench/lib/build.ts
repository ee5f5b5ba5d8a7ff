/**
 * Compiles src/ and the baseline servers to plain JavaScript before measuring, so every server
 * runs as it ships (`node dist/cli.js`), not through a TypeScript loader whose start-up cost
 * would swamp the start-to-first-200 numbers. The output goes under node_modules/.cache (not
 * dist/, which belongs to `npm run build`) so that bare imports still resolve.
 */
import { copyFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runChild } from './procs.js'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))
export const OUT = join(ROOT, 'node_modules', '.cache', 'secrets-agent-bench')

export interface Built {
  /** The agent's CLI, compiled. */
  cli: string
  bareHttp: string
  bareFastify: string
}

export async function build (log: (line: string) => void = () => {}): Promise<Built> {
  log('compiling src/ and bench/servers/ (tsc, incremental) ...')
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
  const result = await runChild(process.execPath, [tsc, '-p', join(ROOT, 'bench', 'tsconfig.build.json')], { cwd: ROOT, timeoutMs: 180_000 })
  // Type errors in someone's work in progress do not stop the emit; a failed emit does.
  if (result.code !== 0 && result.code !== 2) throw new Error(`tsc failed (${String(result.code)}):\n${result.stdout}${result.stderr}`)
  if (result.code === 2) log('tsc reported type errors (emitted anyway):\n' + result.stdout.split('\n').slice(0, 5).join('\n'))
  // src/version.ts reads ../package.json; it also marks the output as ESM.
  copyFileSync(join(ROOT, 'package.json'), join(OUT, 'package.json'))
  return {
    cli: join(OUT, 'src', 'cli.js'),
    bareHttp: join(OUT, 'bench', 'servers', 'bare-http.js'),
    bareFastify: join(OUT, 'bench', 'servers', 'bare-fastify.js')
  }
}
