import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { ConfigError, loadConfig } from '../../src/config/index.js'

const SMA_CONFIG = new URL('../fixtures/sma-config.toml', import.meta.url).pathname

describe('loadConfig', () => {
  let dir: string
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'sa-config-')) })
  after(async () => { await rm(dir, { recursive: true, force: true }) })

  async function toml (text: string): Promise<string> {
    const file = join(dir, `c${Math.random().toString(16).slice(2)}.toml`)
    await writeFile(file, text)
    return file
  }

  it('uses the documented defaults when nothing is set', async () => {
    const { config, settings } = await loadConfig({ env: {} })
    assert.equal(config.host, '127.0.0.1')
    assert.equal(config.httpPort, 2773)
    assert.equal(config.secretsTtlSeconds, 300)
    assert.equal(config.parametersTtlSeconds, 300)
    assert.equal(config.cacheSize, 1000)
    assert.equal(config.cacheMaxBytes, 64 * 1024 * 1024)
    assert.equal(config.maxStaleSeconds, 86400)
    assert.equal(config.maxConn, 800)
    assert.deepEqual(config.ssrfHeaders, ['X-Aws-Parameters-Secrets-Token', 'X-Vault-Token'])
    assert.deepEqual(config.ssrfEnvVariables, ['AWS_TOKEN', 'AWS_SESSION_TOKEN', 'AWS_CONTAINER_AUTHORIZATION_TOKEN'])
    assert.equal(config.secretsManagerTimeoutMillis, 5000)
    assert.equal(settings.get('http_port')?.source, 'default')
  })

  it('reads every Secrets Manager Agent key from its TOML file with its meaning', async () => {
    const { config, settings } = await loadConfig({ env: {}, configFile: SMA_CONFIG })
    assert.equal(config.logLevel, 'debug')
    assert.equal(config.httpPort, 2775)
    assert.equal(settings.get('host')?.origin, `http_address in ${SMA_CONFIG}`, 'http_address sets host')
    assert.equal(config.secretsTtlSeconds, 120, 'ttl_seconds sets the secrets TTL')
    assert.equal(config.parametersTtlSeconds, 120, 'ttl_seconds sets the parameters TTL')
    assert.equal(config.cacheSize, 500)
    assert.deepEqual(config.ssrfHeaders, ['X-Aws-Parameters-Secrets-Token'])
    assert.deepEqual(config.ssrfEnvVariables, ['MY_TOKEN'])
    assert.equal(config.pathPrefix, '/v2/')
    assert.equal(config.maxConn, 100)
    assert.equal(config.region, 'eu-west-1')
    assert.equal(config.validateCredentials, false)
    assert.deepEqual(config.prefetch.secrets, ['app/db'])
    assert.equal(settings.get('secrets_ttl_seconds')?.origin, `ttl_seconds in ${SMA_CONFIG}`)
  })

  it('keeps the meaning of the Lambda extension variables', async () => {
    const { config } = await loadConfig({
      env: {
        PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: '2780',
        PARAMETERS_SECRETS_EXTENSION_CACHE_SIZE: '50',
        PARAMETERS_SECRETS_EXTENSION_CACHE_ENABLED: 'false',
        PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL: 'WARN',
        PARAMETERS_SECRETS_EXTENSION_MAX_CONNECTIONS: '7',
        SECRETS_MANAGER_TTL: '30',
        SSM_PARAMETER_STORE_TTL: '45',
        SECRETS_MANAGER_TIMEOUT_MILLIS: '0',
        SSM_PARAMETER_STORE_TIMEOUT_MILLIS: '1500'
      }
    })
    assert.equal(config.httpPort, 2780)
    assert.equal(config.cacheSize, 50)
    assert.equal(config.cacheEnabled, false)
    assert.equal(config.logLevel, 'warn')
    assert.equal(config.upstreamMaxConnections, 7, 'MAX_CONNECTIONS is the upstream pool')
    assert.equal(config.maxConn, 800, 'and not the inbound limit')
    assert.equal(config.secretsTtlSeconds, 30)
    assert.equal(config.parametersTtlSeconds, 45)
    assert.equal(config.secretsManagerTimeoutMillis, 0, '0 means no timeout, as in the extension')
    assert.equal(config.ssmParameterStoreTimeoutMillis, 1500)
  })

  it('ranks flags over the environment over the file over defaults', async () => {
    const file = await toml('http_port = 1111\ncache_size = 10\nsecrets_ttl_seconds = 5\nparameters_ttl_seconds = 6\n')
    const { config, settings } = await loadConfig({
      configFile: file,
      env: { SECRETS_AGENT_HTTP_PORT: '2222', SECRETS_AGENT_CACHE_SIZE: '20' },
      flags: { port: '3333' }
    })
    assert.equal(config.httpPort, 3333)
    assert.equal(settings.get('http_port')?.source, 'flag')
    assert.equal(config.cacheSize, 20)
    assert.equal(settings.get('cache_size')?.origin, 'SECRETS_AGENT_CACHE_SIZE')
    assert.equal(config.secretsTtlSeconds, 5)
    assert.equal(settings.get('secrets_ttl_seconds')?.source, 'file')
    assert.equal(config.maxConn, 800)
  })

  it('prefers our own variable over the Lambda extension one, and a specific key over ttl_seconds', async () => {
    const file = await toml('ttl_seconds = 100\nparameters_ttl_seconds = 7\n')
    const { config } = await loadConfig({ configFile: file, env: { SECRETS_MANAGER_TTL: '40', SECRETS_AGENT_SECRETS_TTL_SECONDS: '41' } })
    assert.equal(config.secretsTtlSeconds, 41)
    assert.equal(config.parametersTtlSeconds, 7)
  })

  it('prefers our own general variable over the Lambda extension\'s narrower one', async () => {
    const { config, settings } = await loadConfig({ env: { SECRETS_MANAGER_TTL: '300', SECRETS_AGENT_TTL_SECONDS: '60' } })
    assert.equal(config.secretsTtlSeconds, 60)
    assert.equal(settings.get('secrets_ttl_seconds')?.origin, 'SECRETS_AGENT_TTL_SECONDS')
    assert.equal(config.parametersTtlSeconds, 60)
  })

  it('finds the config file named by SECRETS_AGENT_CONFIG', async () => {
    const { config } = await loadConfig({ env: { SECRETS_AGENT_CONFIG: SMA_CONFIG } })
    assert.equal(config.httpPort, 2775)
  })

  it('reads lists from the environment as comma-separated values', async () => {
    const { config } = await loadConfig({ env: { SECRETS_AGENT_PREFETCH_SECRETS: 'a, b ,c', SECRETS_AGENT_ALLOW_SECRETS: 'app/*' } })
    assert.deepEqual(config.prefetch.secrets, ['a', 'b', 'c'])
    assert.deepEqual(config.allow.secrets, ['app/*'])
  })

  it('reads an empty allow-list variable as an empty list, which allows nothing, and other empty variables as unset', async () => {
    // What a deployment template writes for an empty list: it must not fall back on `*`.
    const { config } = await loadConfig({ env: { SECRETS_AGENT_ALLOW_SECRETS: '', SECRETS_AGENT_ALLOW_KMS_KEYS: '', SECRETS_AGENT_PREFETCH_SECRETS: '', SECRETS_AGENT_CACHE_SIZE: '' } })
    assert.deepEqual(config.allow.secrets, [])
    assert.deepEqual(config.allow.kmsKeys, [])
    assert.deepEqual(config.allow.parameters, ['*'])
    assert.deepEqual(config.prefetch.secrets, [])
    assert.equal(config.cacheSize, 1000)
  })

  it('accepts true/false/1/0/yes/no for booleans', async () => {
    for (const [raw, expected] of [['true', true], ['1', true], ['YES', true], ['false', false], ['0', false], ['no', false]] as const) {
      const { config } = await loadConfig({ env: { SECRETS_AGENT_ALLOW_REMOTE: raw } })
      assert.equal(config.allowRemote, expected, raw)
    }
  })

  it('takes a path_prefix with or without its trailing slash, as the Secrets Manager Agent does', async () => {
    assert.equal((await loadConfig({ env: { SECRETS_AGENT_PATH_PREFIX: '/v1' } })).config.pathPrefix, '/v1')
    assert.equal((await loadConfig({ env: { SECRETS_AGENT_PATH_PREFIX: '/secrets/' } })).config.pathPrefix, '/secrets/')
  })

  describe('stops the start with a message naming the key and the allowed range', () => {
    const cases: Array<[string, NodeJS.ProcessEnv, RegExp]> = [
      ['a port out of range', { SECRETS_AGENT_HTTP_PORT: '70000' }, /http_port \(from SECRETS_AGENT_HTTP_PORT\).*"70000".*whole number from 0 to 65535/],
      ['a port that is not a number', { PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: 'abc' }, /http_port \(from PARAMETERS_SECRETS_EXTENSION_HTTP_PORT\).*whole number from 0 to 65535/],
      ['a negative TTL', { SECRETS_MANAGER_TTL: '-1' }, /secrets_ttl_seconds .*whole number from 0 to 604800/],
      ['a fractional cache size', { SECRETS_AGENT_CACHE_SIZE: '1.5' }, /cache_size .*whole number from 0 to 100000/],
      ['a cache size over our superset', { SECRETS_AGENT_CACHE_SIZE: '100001' }, /cache_size .*0 to 100000/],
      ['an unknown log level', { SECRETS_AGENT_LOG_LEVEL: 'loud' }, /log_level .*one of trace, debug, info, warn, error, none/],
      ['a bad boolean', { SECRETS_AGENT_ALLOW_REMOTE: 'maybe' }, /allow_remote .*true or false/],
      ['a bad path prefix', { SECRETS_AGENT_PATH_PREFIX: 'v1' }, /path_prefix .*a path starting with \//],
      ['a metrics port out of range', { SECRETS_AGENT_METRICS_LISTEN: '127.0.0.1:99999' }, /metrics_listen .*"127.0.0.1:99999".*HOST:PORT, the port a whole number from 0 to 65535/],
      ['a bad token file mode', { SECRETS_AGENT_TOKEN_FILE_MODE: '999' }, /token_file_mode .*octal/],
      ['a token file mode letting others read', { SECRETS_AGENT_TOKEN_FILE_MODE: '0644' }, /token_file_mode .*others nothing/],
      ['a token file mode letting the group write', { SECRETS_AGENT_TOKEN_FILE_MODE: '0660' }, /token_file_mode .*group at most read/],
      ['a token file mode of 0777', { SECRETS_AGENT_TOKEN_FILE_MODE: '0777' }, /token_file_mode /],
      ['an unknown SECRETS_AGENT_ variable', { SECRETS_AGENT_CACHE_SIZ: '5' }, /unknown environment variable SECRETS_AGENT_CACHE_SIZ/]
    ]
    for (const [what, env, message] of cases) {
      it(`for ${what}`, async () => {
        await assert.rejects(loadConfig({ env }), (error: unknown) => {
          assert.ok(error instanceof ConfigError)
          assert.match(error.message, message)
          return true
        })
      })
    }

    it('for an unknown key in the TOML file', async () => {
      const file = await toml('cache_sise = 5\n')
      await assert.rejects(loadConfig({ env: {}, configFile: file }), /unknown key cache_sise/)
    })

    it('for an unknown key inside a table', async () => {
      const file = await toml('[prefetch]\nsecret = ["x"]\n')
      await assert.rejects(loadConfig({ env: {}, configFile: file }), /unknown key prefetch.secret/)
    })

    it('for a TOML value of the wrong type', async () => {
      const file = await toml('cache_size = "many"\n')
      await assert.rejects(loadConfig({ env: {}, configFile: file }), /cache_size \(from cache_size in .*\): "many"; expected a whole number from 0 to 100000/)
    })

    it('for a file that is not TOML', async () => {
      const file = await toml('this is = = not toml')
      await assert.rejects(loadConfig({ env: {}, configFile: file }), /not valid TOML/)
    })

    it('for a missing file', async () => {
      await assert.rejects(loadConfig({ env: {}, configFile: join(dir, 'absent.toml') }), /cannot read config file .*absent.toml: ENOENT/)
    })

    it('for jitter bounds in the wrong order', async () => {
      await assert.rejects(loadConfig({ env: { SECRETS_AGENT_REFRESH_JITTER_MIN_PERCENT: '95', SECRETS_AGENT_REFRESH_JITTER_MAX_PERCENT: '80' } }), /refresh_jitter_min_percent \(95\) must not exceed refresh_jitter_max_percent \(80\)/)
    })
  })

  it('takes the Secrets Manager Agent\'s http_address as host, below our own host setting', async () => {
    const file = await toml('http_address = "10.0.0.5"\nallow_remote = true\n')
    assert.equal((await loadConfig({ env: {}, configFile: file })).config.host, '10.0.0.5')
    assert.equal((await loadConfig({ env: { SECRETS_AGENT_HOST: '127.0.0.2' }, configFile: file })).config.host, '127.0.0.2')
  })

  it('accepts log_to_file with a warning that logs go to stdout', async () => {
    const file = await toml('log_to_file = true\n')
    const { warnings } = await loadConfig({ env: {}, configFile: file })
    assert.match(warnings.join('\n'), /logs always go to stdout/)
  })

  it('takes the command-dependent provider default', async () => {
    assert.equal((await loadConfig({ env: {}, defaults: { provider: 'local' } })).config.provider, 'local')
    assert.equal((await loadConfig({ env: {}, defaults: { provider: 'aws' } })).config.provider, 'aws')
    assert.equal((await loadConfig({ env: { SECRETS_AGENT_PROVIDER: 'local' }, defaults: { provider: 'aws' } })).config.provider, 'local')
  })
})

describe('--no-validate-credentials', () => {
  it('turns the credentials check off, above every other source', async () => {
    const { config, settings } = await loadConfig({ env: { SECRETS_AGENT_VALIDATE_CREDENTIALS: 'true' }, flags: { 'no-validate-credentials': true } })
    assert.equal(config.validateCredentials, false)
    assert.equal(settings.get('validate_credentials')?.origin, '--no-validate-credentials')
  })
})
