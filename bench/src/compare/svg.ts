/**
 * Hand-written SVG bar charts for the comparison's results: one chart per workload group, one panel per workload,
 * one horizontal bar per system, each panel on its own scale and labelled with its values. No dependency.
 *
 * @since 0.5.0
 */

/**
 * @since 0.5.0
 * @category models
 */
export interface Bar {
  readonly label: string
  readonly value: number
  readonly color: string
}

/**
 * @since 0.5.0
 * @category models
 */
export interface Panel {
  readonly title: string
  readonly higherIsBetter: boolean
  readonly bars: ReadonlyArray<Bar>
}

const WIDTH = 760
const LABEL_WIDTH = 190
const BAR_AREA = 440
const BAR_HEIGHT = 16
const BAR_STEP = 22
const FONT = "font-family=\"system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif\""

const escape = (s: string): string =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")

/**
 * A value as the charts and tables show it: thousands separated, one decimal below 100.
 *
 * @since 0.5.0
 * @category formatting
 */
export const formatValue = (value: number): string =>
  Math.abs(value) < 100
    ? value.toLocaleString("en-US", { minimumFractionDigits: 1, maximumFractionDigits: 1 })
    : value.toLocaleString("en-US", { maximumFractionDigits: 0 })

/**
 * The SVG document of a chart: a title, subtitle lines (the run's conditions), then the panels one below the other.
 *
 * @since 0.5.0
 * @category rendering
 */
export const chart = (title: string, subtitle: ReadonlyArray<string>, panels: ReadonlyArray<Panel>): string => {
  const parts: Array<string> = []
  let y = 28
  parts.push(`<text x="16" y="${y}" font-size="16" font-weight="600" fill="#111827">${escape(title)}</text>`)
  y += 4
  for (const line of subtitle) {
    y += 14
    parts.push(`<text x="16" y="${y}" font-size="11" fill="#6b7280">${escape(line)}</text>`)
  }
  y += 14
  for (const panel of panels) {
    const bars = panel.bars.filter((bar) => Number.isFinite(bar.value))
    y += 22
    const hint = panel.higherIsBetter ? "higher is better" : "lower is better"
    parts.push(
      `<text x="16" y="${y}" font-size="13" font-weight="600" fill="#111827">${escape(panel.title)}` +
        ` <tspan font-weight="400" fill="#6b7280">(${hint})</tspan></text>`
    )
    y += 8
    const max = Math.max(...bars.map((bar) => bar.value), Number.MIN_VALUE)
    for (const bar of bars) {
      const width = Math.max(1, (bar.value / max) * BAR_AREA)
      const top = y + (BAR_STEP - BAR_HEIGHT) / 2
      parts.push(
        `<text x="${LABEL_WIDTH - 8}" y="${top + BAR_HEIGHT - 4}" font-size="12" text-anchor="end" fill="#374151">` +
          `${escape(bar.label)}</text>`,
        `<rect x="${LABEL_WIDTH}" y="${top}" width="${width.toFixed(1)}" height="${BAR_HEIGHT}" rx="2" ` +
          `fill="${bar.color}"><title>${escape(`${bar.label}: ${formatValue(bar.value)}`)}</title></rect>`,
        `<text x="${(LABEL_WIDTH + width + 6).toFixed(1)}" y="${top + BAR_HEIGHT - 4}" font-size="12" ` +
          `fill="#111827">${escape(formatValue(bar.value))}</text>`
      )
      y += BAR_STEP
    }
    if (bars.length === 0) {
      parts.push(`<text x="${LABEL_WIDTH}" y="${y + 14}" font-size="12" fill="#6b7280">not measured</text>`)
      y += BAR_STEP
    }
  }
  const height = y + 16
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" ` +
    `${FONT} role="img" aria-label="${escape(title)}">`,
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    ...parts,
    "</svg>",
    ""
  ].join("\n")
}
