/**
 * The Node.js flags the agent ships with, read from where they are set: the image's ENTRYPOINT
 * in docker/Dockerfile (`node FLAGS... /app/dist/cli.js`). Every deployment example runs that
 * entrypoint, `npm start` repeats the flags (test/unit/packaging.test.ts checks that they agree),
 * and the bench starts the agent with them, so that it measures what ships.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const DOCKERFILE = fileURLToPath(new URL('../../docker/Dockerfile', import.meta.url))

/** The words of the last ENTRYPOINT of a Dockerfile's text, which must be in exec form. */
export function entrypointOf (dockerfile: string): string[] {
  // Line continuations joined; comments dropped.
  const lines = dockerfile.replace(/\\\n/g, ' ').split('\n').filter((l) => !l.trimStart().startsWith('#'))
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
