/**
 * Builds what the bench runs before measuring, so every server runs as it ships (`node
 * dist/cli.js`), not through a TypeScript loader whose start-up cost would swamp the
 * start-to-first-200 numbers.
 *
 * - The agent: the bundle `npm run build` makes, by the same function (scripts/build.mjs): its
 *   dependencies (fastify included) are bundled in, and its route schemas come precompiled.
 * - The baselines (bench/servers): by the same function, but with their dependencies left out,
 *   so the bare fastify server loads fastify from node_modules, as a fastify app is usually run.
 *   That is the reference of the start-up goal (≤ 1.2 × bare fastify). Bundling fastify into the
 *   baseline as well makes it start faster too (measured: 102 ms against 162-171 ms), which a
 *   reader of the start-up numbers should keep in mind.
 *
 * The output goes under node_modules/.cache (not dist/, which belongs to `npm run build`), so that
 * the baselines' bare imports resolve from the repository's node_modules.
 */
import { copyFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))
export const OUT = join(ROOT, 'node_modules', '.cache', 'secrets-agent-bench')

export interface Built {
  /** The agent's CLI, bundled as `npm run build` bundles it. */
  cli: string
  bareHttp: string
  bareFastify: string
}

interface BundleOptions { outdir: string, entryPoints?: Record<string, string>, bundleDependencies?: boolean, precompileSchemas?: boolean }

/** scripts/build.mjs's `build`: plain JavaScript, imported by URL so that tsc does not look for its types. */
async function bundler (): Promise<(options: BundleOptions) => Promise<unknown>> {
  const module = (await import(pathToFileURL(join(ROOT, 'scripts', 'build.mjs')).href)) as { build: (options: BundleOptions) => Promise<unknown> }
  return module.build
}

export async function build (log: (line: string) => void = () => {}): Promise<Built> {
  const bundle = await bundler()
  log('building the agent as npm run build does, and the baselines (esbuild) ...')
  const agent = join(OUT, 'agent')
  await bundle({ outdir: agent })
  // src/version.ts reads ../package.json relative to the bundle's files.
  copyFileSync(join(ROOT, 'package.json'), join(OUT, 'package.json'))
  const baselines = join(OUT, 'baselines')
  await bundle({
    outdir: baselines,
    bundleDependencies: false,
    precompileSchemas: false,
    entryPoints: { 'bare-http': 'bench/servers/bare-http.ts', 'bare-fastify': 'bench/servers/bare-fastify.ts' }
  })
  return { cli: join(agent, 'cli.js'), bareHttp: join(baselines, 'bare-http.js'), bareFastify: join(baselines, 'bare-fastify.js') }
}
