import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createLogger } from '../../src/logger.js'
import { LocalProvider } from '../../src/providers/local/provider.js'
import { CONTRACT_DATA, providerContract, type ContractData } from './provider-contract.js'

/** CONTRACT_DATA as a local store file (JSON is YAML too). */
function storeText (data: ContractData): string {
  const secrets = Object.fromEntries(data.secrets.map((s) => [s.name, {
    versions: s.versions.map((v) => ({
      id: v.id,
      stages: v.stages,
      created: v.created.toISOString(),
      ...(v.binary === undefined ? { string: v.string } : { binary: Buffer.from(v.binary).toString('base64') })
    }))
  }]))
  const parameters = Object.fromEntries(data.parameters.map((p) => [p.name, {
    type: p.type,
    versions: p.versions.map((v) => ({ value: v.value, ...(v.labels === undefined ? {} : { labels: v.labels }) }))
  }]))
  return JSON.stringify({ secrets, parameters }, null, 2)
}

providerContract('local', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sa-contract-local-'))
  const storeFile = join(dir, 'store.yaml')
  await writeFile(storeFile, storeText(CONTRACT_DATA), { mode: 0o600 })
  const provider = await LocalProvider.open({ storeFile, region: 'us-east-1', logger: createLogger({ level: 'none' }), watch: false })
  await provider.kms.createKey({ alias: CONTRACT_DATA.keys.main })
  await provider.kms.createKey({ alias: CONTRACT_DATA.keys.other })
  await provider.kms.createKey({ alias: CONTRACT_DATA.keys.disabled })
  await provider.kms.setEnabled(CONTRACT_DATA.keys.disabled, false)
  return {
    provider,
    close: async () => {
      await provider.close()
      await rm(dir, { recursive: true, force: true })
    }
  }
})
