import { randomUUID } from 'node:crypto'
import { mkdir, readFile } from 'node:fs/promises'
import { basename, dirname } from 'node:path'
import { ConfigError } from '../config/index.js'
import { parseJsonKeepingNumbers } from '../json-numbers.js'
import { FileLockedError, withFileLock, writeFileAtomic } from '../providers/local/atomic.js'
import { InvalidRequestError, NotFoundError } from '../providers/errors.js'
import { KeyFileError, LocalKms } from '../providers/local/kms.js'
import { parseStore, StoreFormatError, type StoreModel } from '../providers/local/store.js'
import type { ParameterType } from '../providers/types.js'
import { clientConfig } from './agent-client.js'
import { CommandError, fail, parseCommand, writeOut, type Values } from './common.js'
import { EXIT } from './exit.js'
import { addParameterVersion, addSecretVersion, jsonProblem, listEntries, openStoreDocument, type EntryKind, type SecretContent, type StoreDocument } from './store-edit.js'

export const STORE_HELP = `Usage: secrets-agent store set secret NAME VALUE|- [--stage S]
       secrets-agent store set secret NAME --json JSON|- [--stage S]
       secrets-agent store set secret NAME --binary-file FILE|- [--stage S]
       secrets-agent store set parameter NAME VALUE|- [--type String|StringList|SecureString] [--label L]
       secrets-agent store list
       secrets-agent store delete secret|parameter NAME
       secrets-agent store key create [--alias alias/NAME] [--description TEXT]
       secrets-agent store key list
       secrets-agent store key enable|disable KEY

Edits the local store file (the one dev and serve --provider local read). A running agent
picks the change up within about 50 ms. Writes are atomic (a temp file renamed over the
store, mode 0600) and take turns under a lock file beside it (store.yaml.lock for
store.yaml); a symlinked store keeps its link. An edit that would make the store invalid
leaves the file untouched. Comments elsewhere in a YAML store are kept.

set secret      adds a version, as Secrets Manager's PutSecretValue: it takes the stage
                (default AWSCURRENT); a new AWSCURRENT moves the old one to AWSPREVIOUS, and a
                version left with no stage is removed
set parameter   adds a version (numbered on from the last); --label moves that label to it;
                --type changes the type (default: the parameter's, or String for a new one)
list            names, types, version counts, stages and labels; never values
delete          removes the secret or parameter with all its versions
key             the local KMS keys, kept in the key file beside the store (store.keys.json
                for store.yaml, mode 0600): create adds a key and prints its ARN; list shows
                ARNs, aliases and whether each is enabled (never key material); disable makes
                a key refuse every use until enabled again. KEY is a key id, key ARN, alias
                name or alias ARN. A running agent picks the change up within about 50 ms.

Give VALUE as - to read it from stdin, so it lands in neither your shell history nor the
process list (one trailing newline is dropped; --binary-file - keeps every byte). A VALUE
that starts with - goes after --: store set secret NAME -- -starts-with-a-dash.
  secrets-agent store set secret dev/app/db --json - < db.json
  pbpaste | secrets-agent store set parameter /dev/app/api-key - --type SecureString

Flags:
  --store PATH   the store file (default: the store setting, else
                 $XDG_CONFIG_HOME/secrets-agent/store.yaml)
  --config PATH  the TOML file serve reads (also SECRETS_AGENT_CONFIG)

Exit codes: 0 done; 2 bad usage or an edit the store would not accept; 3 no such entry (or
no store file); 1 anything else.
`

const FLAGS = {
  store: { type: 'string' },
  config: { type: 'string' },
  stage: { type: 'string' },
  json: { type: 'string' },
  'binary-file': { type: 'string' },
  type: { type: 'string' },
  label: { type: 'string' },
  alias: { type: 'string' },
  description: { type: 'string' }
} as const

const PARAMETER_TYPES: readonly ParameterType[] = ['String', 'StringList', 'SecureString']
/** Only for ARNs, which the edit does not look at: validation does not depend on the region. */
const REGION = 'us-east-1'

export async function runStore (args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const parsed = parseCommand('store', args, FLAGS, STORE_HELP, true)
  if (typeof parsed === 'number') return parsed
  const { values, positionals } = parsed
  const [action, ...rest] = positionals
  try {
    const file = await storePath(values, env)
    switch (action) {
      case 'list': return await list(file, rest, values)
      case 'set': return await set(file, rest, values)
      case 'delete': return await remove(file, rest, values)
      case 'key': return await key(file, rest, values, env)
      default: throw new CommandError(EXIT.usage, action === undefined ? 'say what to do: set, list, delete or key (secrets-agent store --help)' : `unknown action ${JSON.stringify(action)}: set, list, delete or key`)
    }
  } catch (error) {
    if (error instanceof CommandError) return fail('store', error.code, error.message)
    if (error instanceof ConfigError || error instanceof StoreFormatError || error instanceof InvalidRequestError) return fail('store', EXIT.usage, error.message)
    if (error instanceof NotFoundError) return fail('store', EXIT.notFound, error.message)
    if (error instanceof KeyFileError || error instanceof FileLockedError) return fail('store', EXIT.failure, error.message)
    throw error
  }
}

/** `store key ...`: the local KMS key file beside the store, through LocalKms (which serialises and merges writes). */
async function key (file: string, rest: string[], values: Values, env: NodeJS.ProcessEnv): Promise<number> {
  const [what, id, ...extra] = rest
  const { defaultKeyFile } = await import('../providers/local/provider.js')
  const { localRegion } = await import('../agent.js')
  // ARNs as the agent shows them.
  const region = localRegion(await clientConfig(values, env), env)
  const open = async (): Promise<LocalKms> => {
    await mkdir(dirname(file), { recursive: true, mode: 0o700 })
    return await LocalKms.open({ keyFile: defaultKeyFile(file), region })
  }
  switch (what) {
    case 'create': {
      onlyFlags(values, ['alias', 'description'], 'key create')
      if (id !== undefined) throw new CommandError(EXIT.usage, 'usage: store key create [--alias alias/NAME] [--description TEXT]')
      const kms = await open()
      const arn = await kms.createKey({
        ...(typeof values.alias === 'string' ? { alias: values.alias } : {}),
        ...(typeof values.description === 'string' ? { description: values.description } : {})
      })
      await writeOut(`${arn}${typeof values.alias === 'string' ? ` ${values.alias}` : ''} (${kms.keyFile})\n`)
      return EXIT.ok
    }
    case 'list': {
      onlyFlags(values, [], 'key list')
      if (id !== undefined) throw new CommandError(EXIT.usage, 'store key list takes no arguments')
      const keys = (await open()).listKeys()
      await writeOut(keys.map((k) => `${k.arn}  ${k.enabled ? 'enabled' : 'disabled'}${k.aliases.length > 0 ? `  ${k.aliases.join(' ')}` : ''}`).join('\n') + '\n')
      return EXIT.ok
    }
    case 'enable':
    case 'disable': {
      onlyFlags(values, [], `key ${what}`)
      if (id === undefined || extra.length > 0) throw new CommandError(EXIT.usage, `usage: store key ${what} KEY (a key id, key ARN, alias name or alias ARN)`)
      await (await open()).setEnabled(id, what === 'enable')
      await writeOut(`${what}d key ${id}\n`)
      return EXIT.ok
    }
    default: throw new CommandError(EXIT.usage, 'usage: store key create|list|enable|disable (secrets-agent store --help)')
  }
}

async function storePath (values: Values, env: NodeJS.ProcessEnv): Promise<string> {
  const config = await clientConfig(values, env)
  if (config.store !== null) return config.store
  // agent.ts holds the default; it is loaded only here, since it brings the server with it.
  const { defaultStorePath } = await import('../agent.js')
  return defaultStorePath(env)
}

async function list (file: string, rest: string[], values: Values): Promise<number> {
  onlyFlags(values, [], 'list')
  if (rest.length > 0) throw new CommandError(EXIT.usage, 'list takes no arguments')
  const text = await readStore(file)
  if (text === null) throw new CommandError(EXIT.notFound, `no store at ${file}`)
  await writeOut(listEntries(await parseStore(text, REGION, file)).join('\n') + '\n')
  return EXIT.ok
}

async function remove (file: string, rest: string[], values: Values): Promise<number> {
  onlyFlags(values, [], 'delete')
  const [kind, name, ...extra] = rest
  if (!isKind(kind) || name === undefined || extra.length > 0) throw new CommandError(EXIT.usage, 'usage: store delete secret|parameter NAME')
  await edit(file, (text, doc) => {
    if (text === null) throw new CommandError(EXIT.notFound, `no store at ${file}`)
    if (!doc.delete(kind, name)) throw new CommandError(EXIT.notFound, `no ${kind} ${JSON.stringify(name)} in ${file}`)
  })
  await writeOut(`deleted ${kind} ${name} from ${file}\n`)
  return EXIT.ok
}

/**
 * One edit of the store: read, change, check, write, under the store's lock so that edits from
 * several processes take turns. The store must be valid before the edit (so that an edit never
 * hides an earlier mistake) and after it (else the file is left as it was).
 */
async function edit (file: string, change: (text: string | null, doc: StoreDocument, model: StoreModel) => void): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 })
  await withFileLock(file, async () => {
    const text = await readStore(file)
    const model = text === null ? await parseStore('{}', REGION, 'new.json') : await parseStore(text, REGION, file)
    const doc = openStoreDocument(text ?? '', file)
    change(text, doc, model)
    const next = doc.toString()
    await parseStore(next, REGION, file)
    await save(file, next)
  })
}

async function set (file: string, rest: string[], values: Values): Promise<number> {
  const [kind, name, given, ...extra] = rest
  if (!isKind(kind) || name === undefined || extra.length > 0) throw new CommandError(EXIT.usage, 'usage: store set secret|parameter NAME VALUE (secrets-agent store --help)')
  // The value is read first (stdin may take a while): the store's lock is held only for the edit.
  const now = new Date()
  let done = ''
  if (kind === 'secret') {
    onlyFlags(values, ['stage', 'json', 'binary-file'], 'set secret')
    const content = await secretContent(given, values)
    const stage = typeof values.stage === 'string' ? values.stage : 'AWSCURRENT'
    const versionId = randomUUID()
    await edit(file, (_text, doc, model) => {
      doc.set('secret', name, addSecretVersion(doc.get('secret', name), model.secrets.get(name), content, stage, versionId, now))
    })
    done = `secret ${name}: new version ${versionId} at ${stage}`
  } else {
    onlyFlags(values, ['type', 'label'], 'set parameter')
    const type = values.type
    if (type !== undefined && !PARAMETER_TYPES.includes(type as ParameterType)) throw new CommandError(EXIT.usage, `--type: one of ${PARAMETER_TYPES.join(', ')}`)
    if (given === undefined) throw new CommandError(EXIT.usage, 'give the VALUE, or - to read it from stdin')
    const value = given === '-' ? await readStdinText() : given
    if (value === '') throw new CommandError(EXIT.usage, 'a parameter value must not be empty')
    const label = typeof values.label === 'string' ? values.label : undefined
    await edit(file, (_text, doc, model) => {
      doc.set('parameter', name, addParameterVersion(doc.get('parameter', name), value, type as ParameterType | undefined, label, now))
      done = `parameter ${name}: new version ${(model.parameters.get(name)?.versions.length ?? 0) + 1}${label === undefined ? '' : ` labelled ${label}`}`
    })
  }
  await writeOut(`${done} (${file})\n`)
  return EXIT.ok
}

async function secretContent (given: string | undefined, values: Values): Promise<SecretContent> {
  const sources = [given !== undefined, values.json !== undefined, values['binary-file'] !== undefined].filter(Boolean).length
  if (sources !== 1) throw new CommandError(EXIT.usage, 'give the value once: VALUE, --json JSON or --binary-file FILE (each may be - for stdin)')
  if (typeof values.json === 'string') {
    const text = values.json === '-' ? await readStdinText() : values.json
    try {
      // Its numbers as typed: a 20-digit id or 1.10 is stored as written.
      return { json: parseJsonKeepingNumbers(text) }
    } catch (error) {
      throw new CommandError(EXIT.usage, `--json: ${jsonProblem(error)}`)
    }
  }
  const binaryFile = values['binary-file']
  if (typeof binaryFile === 'string') {
    if (binaryFile === '-') return { binary: await readStdin() }
    try {
      return { binary: await readFile(binaryFile) }
    } catch (error) {
      throw new CommandError(EXIT.usage, `--binary-file: cannot read ${binaryFile}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`)
    }
  }
  return { string: given === '-' ? await readStdinText() : given ?? '' }
}

function isKind (kind: string | undefined): kind is EntryKind {
  return kind === 'secret' || kind === 'parameter'
}

/** Rejects flags that mean nothing for this action, rather than ignoring them. */
function onlyFlags (values: Values, allowed: string[], action: string): void {
  for (const [flag, value] of Object.entries(values)) {
    if (value === undefined || flag === 'store' || flag === 'config' || allowed.includes(flag)) continue
    throw new CommandError(EXIT.usage, `--${flag} does not apply to store ${action}`)
  }
}

async function readStore (file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null
    // A store the settings point at but that cannot be read is a configuration problem.
    throw new CommandError(EXIT.usage, `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`)
  }
}

async function save (file: string, text: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 })
  try {
    await writeFileAtomic(file, text, 0o600)
  } catch (error) {
    throw new CommandError(EXIT.failure, `cannot write ${basename(file)} in ${dirname(file)}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`)
  }
}

async function readStdin (): Promise<Buffer> {
  if (process.stdin.isTTY === true) process.stderr.write('reading the value from stdin; end it with Ctrl-D\n')
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

/** Stdin as text, less the one newline `echo` or a heredoc adds. */
async function readStdinText (): Promise<string> {
  return (await readStdin()).toString('utf8').replace(/\r?\n$/, '')
}
