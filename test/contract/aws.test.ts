import { AwsProvider } from '../../src/providers/aws/index.js'
import { fakeAwsProviderOptions } from '../support/aws-app.js'
import { FakeAws } from '../support/fake-aws.js'
import { CONTRACT_DATA, providerContract, type ContractData } from './provider-contract.js'

/** CONTRACT_DATA put into the fake, in the order AWS would have seen it happen. */
function seed (fake: FakeAws, data: ContractData): void {
  for (const secret of data.secrets) {
    // AWSCURRENT last: putting it moves AWSPREVIOUS onto the version it replaces.
    const ordered = [...secret.versions].sort((a, b) => Number(a.stages.includes('AWSCURRENT')) - Number(b.stages.includes('AWSCURRENT')))
    for (const v of ordered) {
      fake.putSecret({
        name: secret.name,
        versionId: v.id,
        versionStages: [...v.stages],
        createdDate: v.created,
        ...(v.binary === undefined ? { secretString: v.string ?? '' } : { secretBinary: v.binary })
      })
    }
  }
  for (const parameter of data.parameters) {
    for (const v of parameter.versions) {
      fake.putParameter({ name: parameter.name, value: v.value, type: parameter.type, ...(v.labels === undefined ? {} : { labels: [...v.labels] }) })
    }
  }
  fake.createKey({ alias: data.keys.main })
  fake.createKey({ alias: data.keys.other })
  fake.createKey({ alias: data.keys.disabled, enabled: false })
}

providerContract('aws (against the fake AWS endpoint)', async () => {
  const fake = await FakeAws.start()
  seed(fake, CONTRACT_DATA)
  const provider = new AwsProvider(fakeAwsProviderOptions(fake))
  return {
    provider,
    close: async () => {
      await provider.close()
      await fake.close()
    }
  }
})
