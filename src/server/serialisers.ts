import fastJson from 'fast-json-stringify'

/** A compiled serialiser: the JSON text of a document of its schema. */
export type Serialiser = (doc: unknown) => string

/**
 * Compiles the serialiser of `schema` with fast-json-stringify (schemas.ts, for the answers the
 * agent builds itself). It compiles a copy: fast-json-stringify rewrites a schema as it compiles
 * it (it sorts `type` lists), and the routes share these schemas.
 *
 * The built agent does not run this module: `npm run build` bundles its precompiled form instead
 * (scripts/precompile-schemas.ts), which has the schemas of schemas.ts's `answerSchemas` compiled
 * ahead and refuses any other. schemas.ts alone calls it, on each of those, as it loads (a test
 * holds it so): the built agent would otherwise meet a refusal only where the call runs. fast-json-stringify builds an Ajv instance for each serialiser,
 * and loading and running Ajv was most of what the agent's start took beyond a bare fastify
 * server's (issue 8).
 */
export function serialiser (schema: object): Serialiser {
  // The schemas use nullable type lists, which fast-json-stringify supports but does not type.
  return fastJson(structuredClone(schema) as fastJson.AnySchema)
}
