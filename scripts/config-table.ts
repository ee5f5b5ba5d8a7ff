// Prints the configuration reference table of the README from the settings table itself:
//   node --import tsx scripts/config-table.ts
import { SETTINGS, envName } from '../src/config/index.js'

const MiB = 1024 * 1024
function show (value: unknown): string {
  if (value === null) return '—'
  if (typeof value === 'number' && value >= MiB && value % MiB === 0) return `${value / MiB} MiB`
  if (Array.isArray(value)) return value.length === 0 ? '[]' : value.map((v) => `\`${String(v)}\``).join(', ')
  return `\`${String(value)}\``
}

/** The README's configuration reference, as Markdown. */
export function configTable (): string {
  const lines = ['| TOML key | environment | flag | default | range | meaning |', '|---|---|---|---|---|---|']
  for (const s of SETTINGS) {
    const env = [envName(s.key), ...(s.env ?? [])].map((e) => `\`${e}\``).join('<br>')
    const flag = [s.flag, s.negativeFlag].filter((f) => f !== undefined).map((f) => `\`--${f}\``).join('<br>')
    const range = s.type.kind === 'int' ? `${s.type.min}–${s.type.max}` : s.type.kind === 'enum' ? s.type.values.join(', ') : s.type.kind
    const key = s.key.includes('.') ? `\`[${s.key.split('.')[0]}] ${s.key.split('.')[1]}\`` : `\`${s.key}\``
    lines.push(`| ${key} | ${env} | ${flag} | ${show(s.default)} | ${range} | ${s.doc.replace(/\|/g, '\\|')} |`)
  }
  return lines.join('\n') + '\n'
}

if (import.meta.url === `file://${process.argv[1] ?? ''}`) process.stdout.write(configTable())
