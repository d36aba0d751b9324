/**
 * The event store against a raw `pg` baseline on the same schema, pool size and concurrency: appends (1 and 100
 * events, 1 and 8 writers), reading and folding a 10,000-event stream, and catching up on a 100,000-event feed.
 *
 * @since 0.1.0
 */
import type * as PgClient from "@effect/sql-pg/PgClient"
import type * as SqlClient from "@effect/sql/SqlClient"
import * as Aggregate from "@eventfold/core/Aggregate"
import * as CommandHandler from "@eventfold/core/CommandHandler"
import * as Decider from "@eventfold/core/Decider"
import type * as Errors from "@eventfold/core/Errors"
import * as EventStore from "@eventfold/core/EventStore"
import * as ExpectedVersion from "@eventfold/core/ExpectedVersion"
import type * as NewEvent from "@eventfold/core/NewEvent"
import * as Tenant from "@eventfold/core/Tenant"
import * as PgDatabase from "@eventfold/postgres/PgDatabase"
import * as PgEventStore from "@eventfold/postgres/PgEventStore"
import * as PgMigrations from "@eventfold/postgres/PgMigrations"
import * as Effect from "effect/Effect"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import pg from "pg"
import * as util from "./util.js"

const POOL_SIZE = 8
const WARMUP_MS = 400
const DURATION_MS = 1_200
const ROUNDS = 2
const STREAM_EVENTS = 10_000
const FEED_EVENTS = 100_000
const FEED_PAGE = 1_000
const FEED_SCHEMA = "bench_feed"
const STREAM_TYPE = "Account"
/** eventfold's single-tenant mode writes every stream into the default tenant: the raw baseline does the same. */
const TENANT = Tenant.defaultId

interface Account {
  readonly balance: number
  readonly events: number
}

const evolveAmount = (state: Account, type: string, amount: number): Account => ({
  balance: type === "Deposited" ? state.balance + amount : state.balance - amount,
  events: state.events + 1
})

// A small aggregate: the fold workload decodes every event through its Schema, as CommandHandler.load does.
const account = Aggregate.make({
  name: STREAM_TYPE,
  events: util.AccountEvent,
  decider: Decider.make<Account, util.Noop, util.AccountEvent>({
    initialState: { balance: 0, events: 0 },
    evolve: (state, event) => evolveAmount(state, event._tag, event.amount),
    decide: () => Effect.succeed([])
  })
})

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

const COLUMNS = util.EVENT_COLUMNS

type RawRow = util.RawEventRow<{ readonly amount: number }>

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
  util.withDatabase(ctx.serverUrl, "eventfold_bench", async (database) => {
    const server = await util.describeServer(database.url)
    const migrate = (schema: string) =>
      Effect.runPromise(
        PgMigrations.run({ schema }).pipe(Effect.provide(PgDatabase.layer({ url: database.url, maxConnections: 1 })))
      )
    await migrate("eventfold")
    await migrate(FEED_SCHEMA)

    const runtime = ManagedRuntime.make(
      PgDatabase.layer({ url: database.url, maxConnections: POOL_SIZE, applicationName: "eventfold-bench" })
    )
    const pool = new pg.Pool({
      connectionString: database.url,
      max: POOL_SIZE,
      connectionTimeoutMillis: 5_000,
      application_name: "raw-bench"
    })
    try {
      const rows = await workloads(runtime, pool)
      print(server, rows)
    } finally {
      await pool.end()
      await runtime.dispose()
    }
  })

type Runtime = ManagedRuntime.ManagedRuntime<
  PgClient.PgClient | SqlClient.SqlClient,
  Errors.StoreError | Errors.InvalidInput
>
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
  const feedStore = await build({ schema: FEED_SCHEMA })
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

  rows.push(await readAndFold(runtime, store, pool))
  rows.push(await feedCatchUp(runtime, feedStore, pool))
  return rows
}

/** 4: read a 10,000-event stream and fold it: eventfold through CommandHandler.load, raw with one SELECT. */
const readAndFold = async (runtime: Runtime, store: Store, pool: pg.Pool): Promise<Row> => {
  const streamId = "fold-10k"
  await runtime.runPromise(Effect.gen(function*() {
    const encoded = yield* Effect.forEach(
      Array.from(
        { length: STREAM_EVENTS },
        (_, i) => i % 3 === 2 ? new util.Withdrawn(payloadOf(i)) : new util.Deposited(payloadOf(i))
      ),
      account.encodeEvent
    )
    for (let version = 0; version < STREAM_EVENTS; version += 100) {
      yield* store.append({
        streamType: STREAM_TYPE,
        streamId,
        expectedVersion: ExpectedVersion.Exact(version),
        events: encoded.slice(version, version + 100).map((e) => ({ type: e.type, payload: e.payload, metadata }))
      })
    }
  }))
  await pool.query("VACUUM ANALYZE eventfold.events")

  const handler = await runtime.runPromise(
    CommandHandler.make(account).pipe(Effect.provideService(EventStore.EventStore, store))
  )
  const select = `SELECT ${COLUMNS} FROM eventfold.events
    WHERE tenant_id = $1 AND stream_type = $2 AND stream_id = $3 ORDER BY version`
  let loaded: CommandHandler.LoadResult<Account> | undefined
  let folded: Account | undefined
  const [eventfold = 0, raw = 0] = await util.medianMs({ warmup: 3, runs: 15 }, [
    async () => {
      loaded = await runtime.runPromise(handler.load(streamId))
    },
    async () => {
      const result = await pool.query<RawRow>(select, [TENANT, STREAM_TYPE, streamId])
      let state: Account = { balance: 0, events: 0 }
      for (const row of result.rows) state = evolveAmount(state, row.event_type, row.payload.amount)
      folded = state
    }
  ])
  if (
    loaded?.version !== STREAM_EVENTS || loaded.state.events !== STREAM_EVENTS ||
    loaded.state.balance !== folded?.balance || folded.events !== STREAM_EVENTS
  ) {
    throw new Error(`fold mismatch: eventfold ${JSON.stringify(loaded)}, raw ${JSON.stringify(folded)}`)
  }
  return {
    workload: `read + fold ${util.formatNumber(STREAM_EVENTS)}-event stream`,
    unit: "ms (median)",
    eventfold,
    raw,
    higherIsBetter: false,
    target: "≤ 1.3× (design)",
    met: (ratio) => (ratio <= 1.3 ? "yes" : "no")
  }
}

/** 5: catch up on a 100,000-event feed in pages of 1,000 below the xid8 horizon, in (transaction_id, position) order. */
const feedCatchUp = async (runtime: Runtime, store: Store, pool: pg.Pool): Promise<Row> => {
  const schema = pg.escapeIdentifier(FEED_SCHEMA)
  // 100 committed transactions of 1,000 events on 100 streams, written directly: seeding is not what is measured.
  for (let batch = 0; batch < FEED_EVENTS / 1_000; batch++) {
    await pool.query(
      `WITH stream AS (INSERT INTO ${schema}.streams (tenant_id, stream_type, stream_id, version)
                       VALUES ($1, $2, $3, 1000))
       INSERT INTO ${schema}.events (tenant_id, stream_type, stream_id, version, event_id, event_type, payload,
                                     metadata, correlation_id)
       SELECT $1, $2, $3, g, gen_random_uuid(), CASE WHEN g % 3 = 0 THEN 'Withdrawn' ELSE 'Deposited' END,
              jsonb_build_object('amount', g % 100 + 1, 'note', 'benchmark event'),
              jsonb_build_object('correlationId', $4::text), $4
         FROM generate_series(1, 1000) AS g`,
      [TENANT, STREAM_TYPE, `feed-${batch}`, metadata.correlationId]
    )
  }
  await pool.query(`VACUUM ANALYZE ${schema}.events`)

  let eventfoldCount = 0
  const catchUp = EventStore.streamAll({ pageSize: FEED_PAGE }).pipe(
    Stream.runFold(0, (n) => n + 1),
    Effect.provideService(EventStore.EventStore, store)
  )

  const page = `SELECT ${COLUMNS} FROM ${schema}.events
    WHERE (transaction_id, global_position) > ($1::xid8, $2::bigint)
      AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
    ORDER BY transaction_id, global_position
    LIMIT ${FEED_PAGE}`
  let rawCount = 0
  const rawCatchUp = async () => {
    let after: [string, string] = ["0", "0"]
    let count = 0
    for (;;) {
      const { rows } = await pool.query<RawRow>(page, after)
      count += rows.length
      const last = rows[rows.length - 1]
      if (!last || rows.length < FEED_PAGE) break
      after = [last.transaction_id, last.global_position]
    }
    rawCount = count
  }
  const [eventfoldMs = 0, rawMs = 0] = await util.medianMs({ warmup: 1, runs: 3 }, [
    async () => {
      eventfoldCount = await runtime.runPromise(catchUp)
    },
    rawCatchUp
  ])
  if (eventfoldCount !== FEED_EVENTS || rawCount !== FEED_EVENTS) {
    throw new Error(`feed count mismatch: eventfold ${eventfoldCount}, raw ${rawCount}, expected ${FEED_EVENTS}`)
  }
  return {
    workload: `feed catch-up, ${util.formatNumber(FEED_EVENTS)} events, pages of ${util.formatNumber(FEED_PAGE)}`,
    unit: "events/s",
    eventfold: FEED_EVENTS / (eventfoldMs / 1000),
    raw: FEED_EVENTS / (rawMs / 1000),
    higherIsBetter: true,
    target: "≥ 0.6× (design), ≥ 50,000/s (issue)",
    met: (ratio, eventfold) => `design ${ratio >= 0.6 ? "yes" : "no"}, issue ${eventfold >= 50_000 ? "yes" : "no"}`
  }
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
      `appends: ${ROUNDS} alternating rounds of ${WARMUP_MS / 1000} s warm-up + ${DURATION_MS / 1000} s measured; ` +
      "read + fold: median of 15, feed: median of 3, interleaved)",
      "NOTIFY: on for eventfold (PgEventStore.layer default) except in the 'NOTIFY off' rows " +
      "(PgEventStore.layer({ notify: false })); the raw baseline sends none.",
      "",
      table,
      "",
      "eventfold append = 1 statement, 1 round trip (SELECT append_events(...)).",
      "raw append = 2 statements + BEGIN/COMMIT, 4 round trips: UPDATE streams ... WHERE version = $expected (INSERT " +
      "for a new stream), one multi-row INSERT into events.",
      "read + fold: eventfold = CommandHandler.load (readStream + row Schema decode + event Schema decode + evolve); " +
      "raw = SELECT same columns ORDER BY version + fold of pg's parsed JSON.",
      "feed: eventfold = EventStore.streamAll (readAll pages + row Schema decode); raw = keyset pages, same horizon " +
      "predicate and ORDER BY.",
      "ratio = eventfold / raw pg: higher is better for /s rows, lower is better for ms rows."
    ].join("\n")
  )
}
