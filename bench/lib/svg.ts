/**
 * The results chart, hand-made SVG: cache-hit throughput (median bar, one dot per round, the
 * goal as a line), latency at the fixed offered load (p50, p99, p99.9 on a log scale), and
 * time to the first 200.
 */

export interface ChartServer {
  name: string
  rps: number[]
  rpsMedian: number
  latency: { p50: number, p99: number, p999: number }
  startMs: number | null
}

export interface ChartInput {
  title: string
  subtitle: string
  servers: ChartServer[]
  /** req/s the agent must reach (0.85 × node:http). */
  throughputGoal: number | null
  rate: number
}

const COLORS = ['#d9480f', '#1c7ed6', '#2f9e44', '#7048e8']
const W = 960
const H = 420
const FONT = 'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif"'

function esc (s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

function fmt (n: number): string {
  if (n === 0) return '0'
  if (n >= 10_000) return `${Math.round(n / 1000)}k`
  if (n >= 1000) return `${(n / 1000).toFixed(1)}k`
  if (n >= 10) return String(Math.round(n))
  if (n >= 1) return n.toFixed(1)
  return n.toFixed(2)
}

function niceMax (v: number): number {
  if (!(v > 0)) return 1
  const p = 10 ** Math.floor(Math.log10(v))
  for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p
  return 10 * p
}

export function chart (input: ChartInput): string {
  const out: string[] = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ${FONT} font-size="12">`)
  out.push(`<rect width="${W}" height="${H}" fill="#fff"/>`)
  out.push(`<text x="20" y="26" font-size="16" font-weight="600">${esc(input.title)}</text>`)
  out.push(`<text x="20" y="44" fill="#555">${esc(input.subtitle)}</text>`)
  const panelTop = 80
  const panelH = 250
  const n = input.servers.length

  // Panel 1: throughput.
  {
    const x0 = 60; const w = 260
    const max = niceMax(Math.max(...input.servers.flatMap((s) => s.rps), input.throughputGoal ?? 0) * 1.05)
    const y = (v: number): number => panelTop + panelH - (v / max) * panelH
    out.push(`<text x="${x0}" y="${panelTop - 14}" font-weight="600">Cache-hit throughput, req/s (closed loop, wrk)</text>`)
    for (let i = 0; i <= 4; i++) {
      const v = (max * i) / 4
      out.push(`<line x1="${x0}" x2="${x0 + w}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/>`, `<text x="${x0 - 6}" y="${y(v) + 4}" text-anchor="end" fill="#555">${fmt(v)}</text>`)
    }
    const bw = w / n
    input.servers.forEach((s, i) => {
      const bx = x0 + i * bw + bw * 0.2
      const color = COLORS[i % COLORS.length] ?? '#333'
      out.push(`<rect x="${bx}" y="${y(s.rpsMedian)}" width="${bw * 0.6}" height="${panelTop + panelH - y(s.rpsMedian)}" fill="${color}" fill-opacity="0.75"/>`)
      s.rps.forEach((v, r) => out.push(`<circle cx="${bx + bw * 0.3 + (r - (s.rps.length - 1) / 2) * 5}" cy="${y(v)}" r="2.5" fill="#222"/>`))
      out.push(`<text x="${bx + bw * 0.3}" y="${y(s.rpsMedian) - 6}" text-anchor="middle">${fmt(s.rpsMedian)}</text>`)
      out.push(`<text x="${bx + bw * 0.3}" y="${panelTop + panelH + 16}" text-anchor="middle">${esc(s.name)}</text>`)
    })
    if (input.throughputGoal !== null) {
      const gy = y(input.throughputGoal)
      out.push(`<line x1="${x0}" x2="${x0 + w}" y1="${gy}" y2="${gy}" stroke="#c92a2a" stroke-dasharray="5 4"/>`, `<text x="${x0 + w}" y="${gy - 4}" text-anchor="end" fill="#c92a2a">goal 0.85 × node:http</text>`)
    }
    out.push(`<text x="${x0}" y="${panelTop + panelH + 34}" fill="#555">bar: median of rounds; dots: each round</text>`)
  }

  // Panel 2: latency at a fixed rate, log scale.
  {
    const x0 = 390; const w = 300
    const all = input.servers.flatMap((s) => [s.latency.p50, s.latency.p99, s.latency.p999]).filter((v) => v > 0)
    const lo = 10 ** Math.floor(Math.log10(Math.min(...all)))
    const hi = 10 ** Math.ceil(Math.log10(Math.max(...all)))
    const y = (v: number): number => panelTop + panelH - ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * panelH
    out.push(`<text x="${x0}" y="${panelTop - 14}" font-weight="600">Latency at ${fmt(input.rate)} req/s, ms (log scale)</text>`)
    for (let v = lo; v <= hi * 1.001; v *= 10) {
      out.push(`<line x1="${x0}" x2="${x0 + w}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/>`, `<text x="${x0 - 6}" y="${y(v) + 4}" text-anchor="end" fill="#555">${fmt(v)}</text>`)
    }
    const gw = w / n
    const labels = ['p50', 'p99', 'p99.9'] as const
    input.servers.forEach((s, i) => {
      const color = COLORS[i % COLORS.length] ?? '#333'
      const values = [s.latency.p50, s.latency.p99, s.latency.p999]
      values.forEach((v, j) => {
        const bx = x0 + i * gw + gw * 0.1 + j * gw * 0.27
        out.push(`<rect x="${bx}" y="${y(v)}" width="${gw * 0.24}" height="${panelTop + panelH - y(v)}" fill="${color}" fill-opacity="${0.45 + j * 0.25}"/>`)
        out.push(`<text x="${bx + gw * 0.12}" y="${y(v) - 4}" text-anchor="middle" font-size="10">${fmt(v)}</text>`)
        out.push(`<text x="${bx + gw * 0.12}" y="${panelTop + panelH + 12}" text-anchor="middle" font-size="9" fill="#555">${labels[j]}</text>`)
      })
      out.push(`<text x="${x0 + i * gw + gw / 2}" y="${panelTop + panelH + 28}" text-anchor="middle">${esc(s.name)}</text>`)
    })
    out.push(`<text x="${x0}" y="${panelTop + panelH + 44}" fill="#555">medians over rounds (autocannon, fixed offered rate)</text>`)
  }

  // Panel 3: start to first 200.
  {
    const x0 = 760; const w = 170
    const withStart = input.servers.filter((s) => s.startMs !== null)
    const max = niceMax(Math.max(1, ...withStart.map((s) => s.startMs ?? 0)) * 1.1)
    const y = (v: number): number => panelTop + panelH - (v / max) * panelH
    out.push(`<text x="${x0 - 30}" y="${panelTop - 14}" font-weight="600">Start to first 200, ms</text>`)
    for (let i = 0; i <= 4; i++) {
      const v = (max * i) / 4
      out.push(`<line x1="${x0}" x2="${x0 + w}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/>`, `<text x="${x0 - 6}" y="${y(v) + 4}" text-anchor="end" fill="#555">${fmt(v)}</text>`)
    }
    const bw = w / Math.max(1, withStart.length)
    withStart.forEach((s, i) => {
      const color = COLORS[input.servers.indexOf(s) % COLORS.length] ?? '#333'
      const v = s.startMs ?? 0
      const bx = x0 + i * bw + bw * 0.2
      out.push(`<rect x="${bx}" y="${y(v)}" width="${bw * 0.6}" height="${panelTop + panelH - y(v)}" fill="${color}" fill-opacity="0.75"/>`)
      out.push(`<text x="${bx + bw * 0.3}" y="${y(v) - 6}" text-anchor="middle">${fmt(v)}</text>`)
      out.push(`<text x="${bx + bw * 0.3}" y="${panelTop + panelH + 16}" text-anchor="middle" font-size="11">${esc(s.name)}</text>`)
    })
    out.push(`<text x="${x0 - 30}" y="${panelTop + panelH + 34}" fill="#555">median of starts</text>`)
  }
  out.push('</svg>')
  // Coordinates to one decimal: the file stays small and diffs stay readable.
  return out.join('\n').replace(/="(-?\d+\.\d)\d*"/g, '="$1"') + '\n'
}
