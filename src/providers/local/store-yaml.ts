import { isPair, isScalar, parseDocument, visit, type Document } from 'yaml'
import { JSON_NUMBER, JsonNumber } from '../../json-numbers.js'

// Reading a YAML store (store.ts), apart: the YAML parser loads only with the first YAML store.

/**
 * Gives back, as the text written, every unquoted scalar that YAML reads as a number or a boolean
 * it cannot write back the same: `012345678901` (an account id) stays that, not 12345678901;
 * `1.10` not 1.1; a 20-digit number not a rounded float; `True` not true; `0123:` names `0123`.
 * Values and names in the store are text. A secret's `json:` value is the exception: there
 * YAML's numbers and booleans are the JSON's.
 * The store reads YAML through this, and the store CLI edits it so: the other entries keep their
 * values (such a scalar is then written quoted).
 */
export function keepWrittenText (doc: Document, options: { jsonNumbers?: boolean } = {}): void {
  const secrets = doc.get('secrets', true)
  visit(doc, {
    Scalar (_key, node, path) {
      if (node.type !== 'PLAIN' || node.value === null || typeof node.value === 'string' || node.source === undefined || String(node.value) === node.source) return
      // A `json:` key inside a secret (not a secret named json: that is a key of the secrets map).
      const inSecrets = path.findIndex((ancestor) => ancestor === secrets)
      for (let i = inSecrets + 2; inSecrets !== -1 && i < path.length; i++) {
        const pair = path[i]
        if (isPair(pair) && isScalar(pair.key) && pair.key.value === 'json') {
          // There a number stays a number, but as written (`1.10`, 20 digits) when JSON can say so.
          if (options.jsonNumbers === true && (typeof node.value === 'number' || typeof node.value === 'bigint') && JSON_NUMBER.test(node.source)) node.value = new JsonNumber(node.source)
          return
        }
      }
      node.value = node.source
    }
  })
}

/** A YAML store's data: its numbers and booleans as keepWrittenText leaves them. */
export function parseYaml (text: string): unknown {
  const doc = parseDocument(text)
  const error = doc.errors[0]
  if (error !== undefined) throw error
  keepWrittenText(doc, { jsonNumbers: true })
  return doc.toJS()
}
