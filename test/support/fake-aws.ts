/**
 * The fake AWS server for tests; the implementation lives in ./fake-aws/. See FakeAws.
 */
export * from './fake-aws/index.js'
