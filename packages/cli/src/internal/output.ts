/** @internal How the CLI prints: plain text tables for people, JSON for scripts, through the `Console` service. */
import * as Console from "effect/Console"
import type * as Effect from "effect/Effect"

/** @internal A column of a table: its header and how to render a row's cell. */
export interface Column<A> {
  readonly header: string
  readonly cell: (row: A) => string
  /** Right-aligned (numbers). */
  readonly numeric?: boolean | undefined
  /** Cells longer than this are cut with "…"; defaults to 60. */
  readonly max?: number | undefined
}

/** Control characters (and the escape that starts terminal sequences) shown as text, so a value cannot drive the terminal. */
const printable = (text: string): string =>
  text.replace(
    /[\u0000-\u001f\u007f-\u009f]/g,
    (c) => c === "\n" ? "\\n" : c === "\t" ? "\\t" : `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`
  )

const cut = (
  text: string,
  max: number
): string => (text.length > max ? `${text.slice(0, Math.max(1, max - 1))}…` : text)

/** @internal A plain text table: a header line, a rule, one line per row; "(none)" when there are no rows. */
export const table = <A>(rows: ReadonlyArray<A>, columns: ReadonlyArray<Column<A>>): string => {
  if (rows.length === 0) return "(none)"
  const cells = rows.map((row) => columns.map((c) => cut(printable(c.cell(row)), c.max ?? 60)))
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((r) => r[i]!.length)))
  const line = (values: ReadonlyArray<string>) =>
    values.map((v, i) => (columns[i]!.numeric ? v.padStart(widths[i]!) : v.padEnd(widths[i]!))).join("  ").trimEnd()
  return [line(columns.map((c) => c.header)), widths.map((w) => "-".repeat(w)).join("  "), ...cells.map(line)].join(
    "\n"
  )
}

/** @internal "label: value" lines, the labels aligned. */
export const fields = (entries: ReadonlyArray<readonly [label: string, value: string]>): string => {
  const width = Math.max(0, ...entries.map(([label]) => label.length))
  return entries.map(([label, value]) => `${`${label}:`.padEnd(width + 2)}${printable(value)}`).join("\n")
}

/** @internal Prints a value as JSON, bigints as strings. */
export const json = (value: unknown): Effect.Effect<void> =>
  Console.log(JSON.stringify(value, (_, v) => (typeof v === "bigint" ? v.toString() : v), 2))

/** @internal Prints a value as one line of JSON (for streams of records: `tail --follow --json`, progress). */
export const jsonLine = (value: unknown): Effect.Effect<void> =>
  Console.log(JSON.stringify(value, (_, v) => (typeof v === "bigint" ? v.toString() : v)))

/** @internal Prints text on standard output. */
export const print = (text: string): Effect.Effect<void> => Console.log(text)

/** @internal Prints text on standard error. */
export const printError = (text: string): Effect.Effect<void> => Console.error(text)

/** @internal A count with thousands separators (decimal strings of any size too). */
export const count = (n: number | bigint | string): string => {
  const digits = typeof n === "string" ? n : Math.round(Number(n)).toString()
  return /^\d+$/.test(digits) ? digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",") : digits
}

/** @internal A duration in seconds as people read it: "42s", "3m 05s", "2h 04m". */
export const seconds = (s: number): string => {
  const total = Math.max(0, Math.round(s))
  if (total < 60) return `${total}s`
  if (total < 3600) return `${Math.floor(total / 60)}m ${String(total % 60).padStart(2, "0")}s`
  return `${Math.floor(total / 3600)}h ${String(Math.floor((total % 3600) / 60)).padStart(2, "0")}m`
}

/** @internal An ISO time shortened for tables: "2025-01-31 12:34:56". */
export const time = (iso: string | null): string => (iso === null ? "-" : iso.replace("T", " ").replace(/\.\d+Z$/, "Z"))

/** @internal A progress bar: "[########------------]  40%". */
export const bar = (done: number, total: number, width = 30): string => {
  const ratio = total <= 0 ? 1 : Math.min(1, Math.max(0, done / total))
  const filled = Math.round(ratio * width)
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${String(Math.floor(ratio * 100)).padStart(3)}%`
}

/** @internal A JSON value on one line, cut to `max` characters, for table cells. */
export const compactJson = (value: unknown, max = 80): string => cut(JSON.stringify(value) ?? "null", max)

/** @internal A migration's name as its file is named: "0007_tenancy". */
export const migration = (m: { readonly id: number; readonly name: string }): string =>
  `${String(m.id).padStart(4, "0")}_${m.name}`
