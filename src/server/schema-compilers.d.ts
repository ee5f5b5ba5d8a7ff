import type { FastifyServerOptions } from 'fastify'

declare global {
  /**
   * fastify's schema compilers with every route schema of the app already compiled: the bundle
   * `npm run build` makes defines it (scripts/build.mjs generates it with
   * scripts/precompile-schemas.ts), so the agent does not compile schemas when it starts. Not
   * defined when src/ runs as it is (tests, tsx): there fastify compiles the schemas itself.
   */
  var SECRETS_AGENT_SCHEMA_COMPILERS: NonNullable<FastifyServerOptions['schemaController']>['compilersFactory'] | undefined
}

export {}
