import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { RegionalClients } from '../../src/providers/aws/clients.js'

interface FakeClient {
  region: string | undefined
  destroyed: boolean
  destroy (): void
  config: { region: () => Promise<string> }
}

function clientsFor (options: { maxOthers: number, retireAfterMs: number }): { clients: RegionalClients<FakeClient>, made: FakeClient[] } {
  const made: FakeClient[] = []
  const make = (region: string | undefined): FakeClient => {
    const client: FakeClient = { region, destroyed: false, destroy () { client.destroyed = true }, config: { region: async () => region ?? 'us-east-1' } }
    made.push(client)
    return client
  }
  return { clients: new RegionalClients(make, 'us-east-1', options), made }
}

const destroyed = (made: FakeClient[]): Array<string | undefined> => made.filter((c) => c.destroyed).map((c) => c.region)

describe('RegionalClients', () => {
  it('holds a bounded number of other regions\' clients, whatever regions callers name in ARNs', async () => {
    const { clients, made } = clientsFor({ maxOthers: 3, retireAfterMs: 30 })
    for (let i = 1; i <= 10; i++) await clients.for(`zz-made-${i}`)

    assert.equal(clients.othersHeld, 3)
    assert.equal(await clients.for('zz-made-10'), made.at(-1), 'a held region keeps its client')
    // Seven let go: three may wait to finish their calls, the four oldest are destroyed at once.
    assert.deepEqual(destroyed(made), ['zz-made-1', 'zz-made-2', 'zz-made-3', 'zz-made-4'])
    await new Promise((resolve) => setTimeout(resolve, 80))
    assert.deepEqual(destroyed(made), ['zz-made-1', 'zz-made-2', 'zz-made-3', 'zz-made-4', 'zz-made-5', 'zz-made-6', 'zz-made-7'])
    clients.destroy()
    assert.ok(made.every((c) => c.destroyed))
  })

  it('lets the least recently used region go first, and uses the default client for its own region', async () => {
    const { clients, made } = clientsFor({ maxOthers: 2, retireAfterMs: 10_000 })
    const west = await clients.for('eu-west-1')
    const south = await clients.for('ap-south-1')
    assert.equal(await clients.for('eu-west-1'), west)
    await clients.for('sa-east-1')

    assert.equal(await clients.for('eu-west-1'), west, 'used lately, so kept')
    assert.notEqual(await clients.for('ap-south-1'), south, 'let go, so made again')
    assert.equal(await clients.for('us-east-1'), clients.default)
    clients.destroy()
    assert.ok(made.every((c) => c.destroyed), 'close destroys the ones let go too, without waiting')
  })
})
