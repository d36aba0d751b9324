/**
 * @internal Events rows as the PostgreSQL store reads them: array rows (pg's `rowMode: "array"`, the `values` of an
 * @effect/sql statement), so that no row object is made per row, decoded by hand rather than with a Schema (it runs
 * once per event on every read path), every field checked all the same. A row that does not fit is a corrupt store.
 */
import * as Errors from "@eventfold/core/Errors"
import type * as EventStore from "@eventfold/core/EventStore"
import type * as RecordedEvent from "@eventfold/core/RecordedEvent"
import * as Effect from "effect/Effect"

/** @internal The columns of an event, in the order `toEvent` reads them. */
export const EVENT_COLUMNS = "global_position, transaction_id, event_id, tenant_id, stream_type, stream_id, version, " +
  "event_type, schema_version, payload, metadata, recorded_at"

/** @internal How many columns `EVENT_COLUMNS` has. */
export const EVENT_WIDTH = 12

/** @internal The columns a fold reads, in the order `toColumns` reads them. */
export const FOLD_COLUMNS = "version, event_type, schema_version, payload"

/** @internal How many columns `FOLD_COLUMNS` has. */
export const FOLD_WIDTH = 4

/** @internal An array row of a query's result. */
export type Row = ReadonlyArray<unknown>

/**
 * @internal int8 and xid8 arrive as strings from a default pg client, or as bigints where a type parser is installed.
 */
export const toBigInt = (u: unknown): bigint | undefined => {
  if (typeof u === "bigint") return u
  if (typeof u !== "string") return undefined
  try {
    return BigInt(u)
  } catch {
    return undefined
  }
}

/** @internal */
export const isRecord = (u: unknown): u is Record<string, unknown> =>
  typeof u === "object" && u !== null && !Array.isArray(u)

const show = (row: Row): string => JSON.stringify(row, (_, v) => (typeof v === "bigint" ? String(v) : v))

const corrupt = (operation: string, reason: string) =>
  Effect.fail(new Errors.StoreError({ operation, reason, retryable: false, kind: "data" }))

/** The event in `row` from column `at` on (`EVENT_COLUMNS`), or undefined when the row does not fit. */
const toEvent = (row: Row, at: number): RecordedEvent.RecordedEvent | undefined => {
  const globalPosition = toBigInt(row[at])
  const transactionId = toBigInt(row[at + 1])
  const eventId = row[at + 2]
  const tenantId = row[at + 3]
  const streamType = row[at + 4]
  const streamId = row[at + 5]
  const version = row[at + 6]
  const type = row[at + 7]
  const schemaVersion = row[at + 8]
  const metadata = row[at + 10]
  const recordedAt = row[at + 11]
  if (
    globalPosition === undefined || transactionId === undefined || typeof eventId !== "string" ||
    typeof tenantId !== "string" || typeof streamType !== "string" || typeof streamId !== "string" ||
    typeof version !== "number" || typeof type !== "string" || typeof schemaVersion !== "number" ||
    !isRecord(metadata) || !(recordedAt instanceof Date) || row.length < at + EVENT_WIDTH
  ) {
    return undefined
  }
  return {
    eventId,
    tenantId,
    streamType,
    streamId,
    version,
    globalPosition,
    transactionId,
    type,
    schemaVersion,
    payload: row[at + 9],
    metadata,
    recordedAt
  }
}

/** @internal The events of rows that hold `EVENT_COLUMNS` first. */
export const toEvents = (
  operation: string,
  rows: ReadonlyArray<Row>
): Effect.Effect<Array<RecordedEvent.RecordedEvent>, Errors.StoreError> => {
  const out = new Array<RecordedEvent.RecordedEvent>(rows.length)
  for (let i = 0; i < rows.length; i++) {
    const event = toEvent(rows[i]!, 0)
    if (event === undefined) return corrupt(operation, `unexpected events row: ${show(rows[i]!)}`)
    out[i] = event
  }
  return Effect.succeed(out)
}

const none: ReadonlyArray<Date> = []

/**
 * @internal The columns of rows that hold `FOLD_COLUMNS` first, then `recorded_at` when `recordedAt`, then
 * `EVENT_COLUMNS` when `events` (every event checked now, each made only when asked for).
 */
export const toColumns = (
  operation: string,
  rows: ReadonlyArray<Row>,
  options: Pick<EventStore.ReadColumnsOptions, "recordedAt" | "events">
): Effect.Effect<EventStore.StreamColumns, Errors.StoreError> => {
  const n = rows.length
  const withTime = options.recordedAt === true
  const whole = options.events === true ? FOLD_WIDTH + (withTime ? 1 : 0) : -1
  const versions = new Array<number>(n)
  const types = new Array<string>(n)
  const schemaVersions = new Array<number>(n)
  const payloads = new Array<unknown>(n)
  const times = withTime ? new Array<Date>(n) : undefined
  for (let i = 0; i < n; i++) {
    const row = rows[i]!
    const version = row[0]
    const type = row[1]
    const schemaVersion = row[2]
    if (
      typeof version !== "number" || typeof type !== "string" || typeof schemaVersion !== "number" || row.length < 4
    ) {
      return corrupt(operation, `unexpected events row: ${show(row)}`)
    }
    if (times !== undefined) {
      const time = row[FOLD_WIDTH]
      if (!(time instanceof Date)) return corrupt(operation, `unexpected events row: ${show(row)}`)
      times[i] = time
    }
    if (whole >= 0 && toEvent(row, whole) === undefined) {
      return corrupt(operation, `unexpected events row: ${show(row)}`)
    }
    versions[i] = version
    types[i] = type
    schemaVersions[i] = schemaVersion
    payloads[i] = row[3]
  }
  return Effect.succeed({
    exists: true,
    versions,
    types,
    schemaVersions,
    payloads,
    recordedAt: times ?? none,
    event: whole >= 0 ? (i) => toEvent(rows[i]!, whole)! : undefined
  })
}
