/**
 * How the agent ships, read from where it is set, so that the bench measures that:
 * - the Node.js flags of the image's ENTRYPOINT in docker/Dockerfile (`node FLAGS...
 *   /app/dist/cli.js`). Every deployment example runs that entrypoint, and `npm start` repeats
 *   the flags (test/unit/packaging.test.ts checks that they agree);
 * - the environment the image sets (its final stage's ENV), such as the malloc arena cap;
 * - the memory limit of the agent container in the ECS example (the Kubernetes example's is the
 *   same; packaging.test.ts checks that both leave room for the heap).
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const DOCKERFILE = fileURLToPath(new URL('../../docker/Dockerfile', import.meta.url))
const ECS_TASK = fileURLToPath(new URL('../../docker/ecs/task-definition.json', import.meta.url))

/** A Dockerfile's lines: continuations joined, comments dropped. */
const linesOf = (dockerfile: string): string[] => dockerfile.replace(/\\\n/g, ' ').split('\n').filter((l) => !l.trimStart().startsWith('#'))

/** The words of the last ENTRYPOINT of a Dockerfile's text, which must be in exec form. */
export function entrypointOf (dockerfile: string): string[] {
  const lines = linesOf(dockerfile)
  const last = lines.filter((l) => /^\s*ENTRYPOINT\s/i.test(l)).at(-1)
  if (last === undefined) throw new Error('docker/Dockerfile has no ENTRYPOINT')
  const words: unknown = JSON.parse(last.replace(/^\s*ENTRYPOINT\s+/i, ''))
  if (!Array.isArray(words) || !words.every((w) => typeof w === 'string')) throw new Error(`ENTRYPOINT is not in exec form: ${last}`)
  return words
}

/** The flags between `node` and the CLI file in an entrypoint: `[node, ...flags, cli]`. */
export function nodeFlagsOf (entrypoint: readonly string[]): string[] {
  const flags = entrypoint.slice(1, -1)
  for (const flag of flags) if (!flag.startsWith('--')) throw new Error(`the entrypoint's ${JSON.stringify(flag)} is not a node flag`)
  return flags
}

/** The node flags of docker/Dockerfile's ENTRYPOINT. */
export function shippedNodeFlags (): string[] {
  return nodeFlagsOf(entrypointOf(readFileSync(DOCKERFILE, 'utf8')))
}

/** The variables the ENV instructions of a Dockerfile's final stage set, which must be in `KEY=VALUE` form. */
export function environmentOf (dockerfile: string): Record<string, string> {
  const lines = linesOf(dockerfile)
  let from = -1
  lines.forEach((line, i) => { if (/^\s*FROM\s/i.test(line)) from = i })
  const env: Record<string, string> = {}
  for (const line of lines.slice(from + 1)) {
    const instruction = /^\s*ENV\s+(.*)$/i.exec(line)
    if (instruction === null) continue
    for (const pair of (instruction[1] ?? '').trim().split(/\s+/)) {
      const at = pair.indexOf('=')
      if (at <= 0 || /["'$]/.test(pair)) throw new Error(`docker/Dockerfile: an ENV the bench cannot read (use plain KEY=VALUE): ${line.trim()}`)
      env[pair.slice(0, at)] = pair.slice(at + 1)
    }
  }
  return env
}

/** Variables as an ENV instruction writes them, `KEY=VALUE KEY=VALUE`; '' for none. */
export function environmentText (env: Record<string, string>): string {
  return Object.entries(env).map(([key, value]) => `${key}=${value}`).join(' ')
}

/** The environment docker/Dockerfile's image runs the agent with. */
export function shippedEnvironment (): Record<string, string> {
  return environmentOf(readFileSync(DOCKERFILE, 'utf8'))
}

/** The memory limit of the agent container in docker/ecs/task-definition.json, in bytes. */
export function exampleMemoryLimitBytes (): number {
  const task = JSON.parse(readFileSync(ECS_TASK, 'utf8')) as { containerDefinitions?: Array<{ image?: string, memory?: number }> }
  const mebibytes = task.containerDefinitions?.find((c) => c.image?.includes('/secrets-agent:') === true)?.memory
  if (mebibytes === undefined || !(mebibytes > 0)) throw new Error('docker/ecs/task-definition.json gives the agent container no memory limit')
  return mebibytes * 1024 * 1024
}
