/** Command-line options of the A/B benches that name a candidate: `--flag NAME=VALUE`. */

/** The `NAME=VALUE` items of a repeated option, in order. */
export function namedValues (list: readonly string[], option: string): Array<[name: string, value: string]> {
  return list.map((item) => {
    const at = item.indexOf('=')
    if (at <= 0) throw new Error(`--${option} takes NAME=VALUE, not ${JSON.stringify(item)}`)
    return [item.slice(0, at), item.slice(at + 1)]
  })
}

/** `--env NAME=VAR=VALUE` items (repeatable per name), as each name's variables. */
export function namedEnvironments (list: readonly string[]): Map<string, Record<string, string>> {
  const envs = new Map<string, Record<string, string>>()
  for (const [name, pair] of namedValues(list, 'env')) {
    const at = pair.indexOf('=')
    if (at <= 0) throw new Error(`--env takes NAME=VAR=VALUE, not ${JSON.stringify(`${name}=${pair}`)}`)
    envs.set(name, { ...envs.get(name), [pair.slice(0, at)]: pair.slice(at + 1) })
  }
  return envs
}
