/**
 * The event store's appends against a raw `pg` baseline on the same schema, pool size and concurrency: 1 and 100
 * events, 1 and 8 writers, NOTIFY on and off. Reads (a stream read and fold, the feed) are in reads.bench.ts.
 *
 * @since 0.1.0
 */
import type * as EventStore from "@eventfold/core/EventStore"
import * as ExpectedVersion from "@eventfold/core/ExpectedVersion"
import type * as NewEvent from "@eventfold/core/NewEvent"
import * as Tenant from "@eventfold/core/Tenant"
import * as PgEventStore from "@eventfold/postgres/PgEventStore"
import * as Effect from "effect/Effect"
import * as Scope from "effect/Scope"
import type pg from "pg"
import * as util from "./util.js"

const POOL_SIZE = 8
const WARMUP_MS = 400
const DURATION_MS = 1_200
const ROUNDS = 2
const STREAM_TYPE = "Account"
/** eventfold's single-tenant mode writes every stream into the default tenant: the raw baseline does the same. */
const TENANT = Tenant.defaultId

const payloadOf = (i: number) => ({ amount: (i % 100) + 1, note: "benchmark event" })
const metadata = { correlationId: crypto.randomUUID() }
const batchOf = (size: number): ReadonlyArray<NewEvent.NewEvent> =>
  Array.from({ length: size }, (_, i) => ({
    type: i % 3 === 2 ? "Withdrawn" : "Deposited",
    payload: payloadOf(i),
    metadata
  }))

/** The classic append (`util.rawAppender`): BEGIN; create or UPDATE the stream row; INSERT the rows; COMMIT. */
const rawAppender = (pool: pg.Pool, schema: string) =>
  util.rawAppender(pool, { schema, tenant: TENANT, streamType: STREAM_TYPE })

interface Row {
  readonly workload: string
  readonly unit: string
  readonly eventfold: number
  readonly raw: number
  /** Whether a higher number is better (throughput) or a lower one (latency). */
  readonly higherIsBetter: boolean
  readonly target: string
  readonly met: (ratio: number, eventfold: number) => string
}

/**
 * Runs every workload on a fresh database of the server and prints one table.
 *
 * @since 0.1.0
 * @category main
 */
export const main = (ctx: { readonly serverUrl: string }): Promise<void> =>
  util.withStack(
    ctx.serverUrl,
    { prefix: "eventfold_bench", schemas: ["eventfold"], poolSize: POOL_SIZE },
    async ({ pool, runtime, server }) => print(server, await workloads(runtime, pool))
  )

type Runtime = util.Stack["runtime"]
type Store = EventStore.EventStore["Type"]

const measureOptions = (workers: number): util.ThroughputOptions => ({
  workers,
  warmupMs: WARMUP_MS,
  durationMs: DURATION_MS
})

/**
 * Each writer appends `batchSize` events at a time to its own stream, with the exact expected version. The returned
 * function measures one round; the streams and versions carry over from round to round.
 */
const eventfoldAppends = (runtime: Runtime, store: Store, label: string, workers: number, batchSize: number) => {
  const batch = batchOf(batchSize)
  const versions = new Array<number>(workers).fill(0)
  const op = (worker: number) =>
    store.append({
      streamType: STREAM_TYPE,
      streamId: `${label}-${worker}`,
      expectedVersion: ExpectedVersion.Exact(versions[worker]!),
      events: batch
    }).pipe(Effect.map((result) => {
      versions[worker] = result.version
      return batchSize
    }))
  return () => runtime.runPromise(util.throughputEffect(measureOptions(workers), op))
}

const rawAppends = (append: ReturnType<typeof rawAppender>, label: string, workers: number, batchSize: number) => {
  const batch = batchOf(batchSize)
  const versions = new Array<number>(workers).fill(0)
  return () =>
    util.throughput(measureOptions(workers), async (worker) => {
      versions[worker] = await append(`${label}-${worker}`, versions[worker]!, batch)
      return batchSize
    })
}

/** Measures the contenders in alternating rounds, so that load from elsewhere on the machine hits all of them. */
const alternate = async (
  contenders: ReadonlyArray<() => Promise<util.Throughput>>
): Promise<ReadonlyArray<number>> => {
  const results = contenders.map((): Array<util.Throughput> => [])
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < contenders.length; i++) results[i]!.push(await contenders[i]!())
  }
  return results.map((r) => util.combine(r).perSecond)
}

const APPEND_TARGET = "≥ 1.3× (design)"
const appendMet = (ratio: number) => (ratio >= 1.3 ? "yes" : "no")

const workloads = async (runtime: Runtime, pool: pg.Pool): Promise<ReadonlyArray<Row>> => {
  // The stores live (with their NOTIFY fibers) until the runtime is disposed.
  const scope = await runtime.runPromise(Scope.make())
  const build = (options?: PgEventStore.Options) => runtime.runPromise(Scope.extend(PgEventStore.make(options), scope))
  const store = await build()
  const quietStore = await build({ notify: false })
  const append = rawAppender(pool, "eventfold")
  const rows: Array<Row> = []

  // 1-3: appends, eventfold with NOTIFY on (the default) and off. Each contender writes to its own fresh streams in
  // the same tables.
  for (const [workers, batchSize] of [[1, 1], [8, 1], [1, 100], [8, 100]] as const) {
    const label = `w${workers}b${batchSize}`
    const unit = batchSize === 1 ? "appends/s" : "events/s"
    const name = `append ${batchSize} event${batchSize === 1 ? "" : "s"}, ${workers} writer${workers === 1 ? "" : "s"}`
    const [eventfold = 0, raw = 0, quiet = 0] = await alternate([
      eventfoldAppends(runtime, store, `ef-${label}`, workers, batchSize),
      rawAppends(append, `raw-${label}`, workers, batchSize),
      eventfoldAppends(runtime, quietStore, `efq-${label}`, workers, batchSize)
    ])
    // The floor applies to 1-event appends with 8 writers; the design's aim to every append.
    const floor = workers === 8 && batchSize === 1
    const target = floor ? `≥ 0.8× (issue), ${APPEND_TARGET}` : APPEND_TARGET
    const met = floor
      ? (ratio: number) => `issue ${ratio >= 0.8 ? "yes" : "no"}, design ${appendMet(ratio)}`
      : appendMet
    rows.push({ workload: name, unit, eventfold, raw, higherIsBetter: true, target, met })
    rows.push({ workload: `${name}, NOTIFY off`, unit, eventfold: quiet, raw, higherIsBetter: true, target, met })
  }

  return rows
}

const print = (server: string, rows: ReadonlyArray<Row>): void => {
  const table = util.formatTable(
    ["workload", "unit", "eventfold", "raw pg", "ratio", "target", "met"],
    rows.map((row) => {
      const ratio = row.eventfold / row.raw
      const digits = row.higherIsBetter ? 0 : 1
      return [
        row.workload,
        row.unit,
        util.formatNumber(row.eventfold, digits),
        util.formatNumber(row.raw, digits),
        `${ratio.toFixed(2)}×`,
        row.target,
        row.met(ratio, row.eventfold)
      ]
    })
  )
  console.log(
    [
      `eventfold event store vs raw pg (${server}; pool ${POOL_SIZE} on both sides; ` +
      `${ROUNDS} alternating rounds of ${WARMUP_MS / 1000} s warm-up + ${DURATION_MS / 1000} s measured)`,
      "NOTIFY: on for eventfold (PgEventStore.layer default) except in the 'NOTIFY off' rows " +
      "(PgEventStore.layer({ notify: false })); the raw baseline sends none.",
      "",
      table,
      "",
      "eventfold append = 1 statement, 1 round trip (append_events, or append_batch under group commit).",
      "raw append = 2 statements + BEGIN/COMMIT, 4 round trips: UPDATE streams ... WHERE version = $expected (INSERT " +
      "for a new stream), one multi-row INSERT into events.",
      "Reads (a stream read and fold, the feed): npm run bench -- reads.",
      "ratio = eventfold / raw pg: higher is better."
    ].join("\n")
  )
}
