/**
 * JSON whose numbers keep the text they were written with. A store holds secrets: an account id
 * of 20 digits, a version `1.10` or an amount `2.50` must come out as they went in, where
 * JSON.parse and JSON.stringify would round them through a double.
 */

import type { ScalarTag } from 'yaml'

/** A number as it was written, where a double would not give the same text back. */
export class JsonNumber {
  constructor (readonly text: string) {}
}

/**
 * For the `yaml` library's documents (`customTags`): a JsonNumber is written as its text, plain,
 * which YAML reads back as the same number (and the store serves as written).
 */
export const JSON_NUMBER_TAG: ScalarTag = {
  identify: (value) => value instanceof JsonNumber,
  default: true,
  tag: 'tag:yaml.org,2002:float',
  resolve: (text) => new JsonNumber(text),
  stringify: (item) => (item.value as JsonNumber).text
}

/** A number's text, as JSON writes one. */
export const JSON_NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/

/**
 * JSON.parse of `text`, except that each number a double would not write back the same
 * (`1.10`, `1e3`, `-0`, 20 digits) is a JsonNumber. JSON.parse judges the text (and throws as it
 * does); a scan outside strings finds those numbers, and a second parse with them marked
 * places them. Linear in the text, and a single JSON.parse when there is no such number.
 */
export function parseJsonKeepingNumbers (text: string): unknown {
  const parsed: unknown = JSON.parse(text)
  const kept: Array<{ start: number, end: number }> = []
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x22) { // a string: skip to its closing quote
      for (i++; i < text.length && text.charCodeAt(i) !== 0x22; i++) if (text.charCodeAt(i) === 0x5c) i++
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      let end = i + 1
      while (end < text.length && /[0-9eE.+-]/.test(text[end] ?? '')) end++
      const written = text.slice(i, end)
      if (String(Number(written)) !== written) kept.push({ start: i, end })
      i = end - 1
    }
  }
  if (kept.length === 0) return parsed
  for (;;) {
    // A mark no string of the text is likely to hold: a NUL and a number the text does not show.
    let nonce = 0
    while (text.includes(String(nonce))) nonce = Math.floor(Math.random() * 1e15)
    const mark = `\u0000${nonce}:`
    let marked = ''
    let from = 0
    kept.forEach(({ start, end }, index) => {
      marked += `${text.slice(from, start)}"\\u0000${nonce}:${index}"`
      from = end
    })
    marked += text.slice(from)
    let placed = 0
    const place = (value: unknown): unknown => {
      if (typeof value === 'string') {
        if (!value.startsWith(mark)) return value
        const at = kept[Number(value.slice(mark.length))]
        if (at === undefined) return value
        placed += 1
        return new JsonNumber(text.slice(at.start, at.end))
      }
      if (Array.isArray(value)) return value.map(place)
      if (value !== null && typeof value === 'object') {
        const record = value as Record<string, unknown>
        for (const key of Object.keys(record)) setOwn(record, key, place(record[key]))
      }
      return value
    }
    const result = place(JSON.parse(marked))
    // A string of the text that spelt the mark (through \u escapes) was taken for one: again.
    if (placed === kept.length) return result
  }
}

/** `record[key] = value`, as an own property even for `__proto__`. */
export function setOwn (record: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(record, key, { value, writable: true, enumerable: true, configurable: true })
}

/**
 * JSON.stringify's text (with `indent`, as its third argument), but with each JsonNumber as
 * written. Values that are not plain objects or arrays (a Date, bytes) are JSON.stringify's.
 */
export function jsonText (value: unknown, indent = '', depth = 0): string {
  if (value instanceof JsonNumber) return value.text
  const inner = indent === '' ? '' : '\n' + indent.repeat(depth + 1)
  const outer = indent === '' ? '' : '\n' + indent.repeat(depth)
  const colon = indent === '' ? ':' : ': '
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]'
    return `[${value.map((item) => inner + jsonText(item, indent, depth + 1)).join(',')}${outer}]`
  }
  if (value !== null && typeof value === 'object' && [Object.prototype, null].includes(Object.getPrototypeOf(value))) {
    const entries = Object.entries(value).filter(([, item]) => item !== undefined)
    if (entries.length === 0) return '{}'
    return `{${entries.map(([key, item]) => `${inner}${JSON.stringify(key)}${colon}${jsonText(item, indent, depth + 1)}`).join(',')}${outer}}`
  }
  return JSON.stringify(value, null, indent) ?? 'null'
}
