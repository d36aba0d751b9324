/**
 * Reads against a raw `pg` baseline on the same schema and pool size: reading and folding a 10,000-event stream
 * (untyped, and typed through the aggregate's Schema, fused and through `readStream`), and catching up on a
 * 100,000-event feed; then the node CPU one call costs on the hot path, with no tracer installed.
 *
 * @since 0.4.0
 */
import * as Aggregate from "@eventfold/core/Aggregate"
import * as CommandHandler from "@eventfold/core/CommandHandler"
import * as Decider from "@eventfold/core/Decider"
import * as EventStore from "@eventfold/core/EventStore"
import * as EventValidation from "@eventfold/core/EventValidation"
import * as ExpectedVersion from "@eventfold/core/ExpectedVersion"
import * as Position from "@eventfold/core/Position"
import * as Tenant from "@eventfold/core/Tenant"
import * as PgEventStore from "@eventfold/postgres/PgEventStore"
import * as Effect from "effect/Effect"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import pg from "pg"
import * as util from "./util.js"

const POOL_SIZE = 8
const STREAM_EVENTS = 10_000
const FOLD_RUNS = 21
const FEED_EVENTS = 100_000
const FEED_PAGE = 1_000
const FEED_RUNS = 5
const FEED_SCHEMA = "bench_feed"
const STREAM_TYPE = "Account"
const CALLS = 200_000
/** eventfold's single-tenant mode writes every stream into the default tenant: the raw baseline reads the same. */
const TENANT = Tenant.defaultId

interface Account {
  readonly balance: number
  readonly events: number
}

const initial: Account = { balance: 0, events: 0 }
const evolveAmount = (state: Account, type: string, amount: number): Account => ({
  balance: type === "Deposited" ? state.balance + amount : state.balance - amount,
  events: state.events + 1
})

// The typed fold decodes every event through the aggregate's Schema (a Union of TaggedClasses), as loads do.
const account = Aggregate.make({
  name: STREAM_TYPE,
  events: util.AccountEvent,
  decider: Decider.make<Account, util.Noop, util.AccountEvent>({
    initialState: initial,
    evolve: (state, event) => evolveAmount(state, event._tag, event.amount),
    decide: () => Effect.succeed([])
  })
})

const payloadOf = (i: number) => ({ amount: (i % 100) + 1, note: "benchmark event" })
const metadata = { correlationId: crypto.randomUUID() }

const COLUMNS = util.EVENT_COLUMNS

type RawRow = util.RawEventRow<{ readonly amount: number }>

interface Row {
  readonly workload: string
  readonly unit: string
  readonly eventfold: number
  readonly raw: number
  /** Whether a higher number is better (throughput) or a lower one (time). */
  readonly higherIsBetter: boolean
  readonly target: string
  readonly met: (ratio: number) => string
}

type Runtime = util.Stack["runtime"]
type Store = EventStore.EventStore["Type"]

/** The store with its `readStream` wrapped: no column reader, so loads read whole events, as before the fused path. */
const throughReadStream = (store: Store): Store => ({ ...store, readStream: (options) => store.readStream(options) })

/**
 * Runs every workload on a fresh database of the server and prints the tables.
 *
 * @since 0.4.0
 * @category main
 */
export const main = (ctx: { readonly serverUrl: string }): Promise<void> =>
  util.withStack(
    ctx.serverUrl,
    { prefix: "eventfold_bench", schemas: ["eventfold", FEED_SCHEMA], poolSize: POOL_SIZE },
    async ({ pool, runtime, server }) => {
      const scope = await runtime.runPromise(Scope.make())
      const build = (options?: PgEventStore.Options) =>
        runtime.runPromise(Scope.extend(PgEventStore.make({ notify: false, ...options }), scope))
      const rows = [
        ...(await readAndFold(runtime, await build(), pool)),
        await feedCatchUp(runtime, await build({ schema: FEED_SCHEMA }), pool)
      ]
      print(server, rows)
      printHotPath(await hotPath())
    }
  )

/** 1-3: a 10,000-event stream read and folded, untyped and typed (fused, and through readStream), against one SELECT. */
const readAndFold = async (runtime: Runtime, store: Store, pool: pg.Pool): Promise<ReadonlyArray<Row>> => {
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

  const provide = (s: Store) => Effect.provideService(EventStore.EventStore, s)
  const fused = await runtime.runPromise(CommandHandler.make(account).pipe(provide(store)))
  const unfused = await runtime.runPromise(CommandHandler.make(account).pipe(provide(throughReadStream(store))))
  const select = `SELECT ${COLUMNS} FROM eventfold.events
    WHERE tenant_id = $1 AND stream_type = $2 AND stream_id = $3 ORDER BY version`
  const results: Array<Account> = []
  const check = (state: Account) => {
    if (state.events !== STREAM_EVENTS) throw new Error(`fold mismatch: ${JSON.stringify(state)}`)
    results.push(state)
  }
  const [raw = 0, untyped = 0, typed = 0, typedUnfused = 0] = await util.medianMs({ warmup: 3, runs: FOLD_RUNS }, [
    async () => {
      const result = await pool.query<RawRow>(select, [TENANT, STREAM_TYPE, streamId])
      let state = initial
      for (const row of result.rows) state = evolveAmount(state, row.event_type, row.payload.amount)
      check(state)
    },
    async () => {
      const events = await runtime.runPromise(store.readStream({ streamType: STREAM_TYPE, streamId }))
      let state = initial
      for (const event of events) {
        state = evolveAmount(state, event.type, (event.payload as { readonly amount: number }).amount)
      }
      check(state)
    },
    async () => check((await runtime.runPromise(fused.load(streamId))).state),
    async () => check((await runtime.runPromise(unfused.load(streamId))).state)
  ])
  if (results.some((r) => r.balance !== results[0]!.balance)) throw new Error("the folds disagree")
  const stream = `${util.formatNumber(STREAM_EVENTS)}-event stream`
  const within = (limit: number) => (ratio: number) => (ratio <= limit ? "yes" : "no")
  return [
    {
      workload: `read + fold ${stream}, untyped (readStream)`,
      unit: "ms (median)",
      eventfold: untyped,
      raw,
      higherIsBetter: false,
      target: "≤ 1.5×",
      met: within(1.5)
    },
    {
      workload: `read + typed fold ${stream} (CommandHandler.load)`,
      unit: "ms (median)",
      eventfold: typed,
      raw,
      higherIsBetter: false,
      target: "≤ 2×",
      met: within(2)
    },
    {
      workload: `same, through readStream (no column reader)`,
      unit: "ms (median)",
      eventfold: typedUnfused,
      raw,
      higherIsBetter: false,
      target: "—",
      met: () => "—"
    }
  ]
}

/** 4: catch up on a 100,000-event feed in pages of 1,000 below the xid8 horizon, against raw keyset pages. */
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
  const catchUp = EventStore.streamAll({ pageSize: FEED_PAGE }).pipe(
    Stream.runFold(0, (n) => n + 1),
    Effect.provideService(EventStore.EventStore, store)
  )
  const page = `SELECT ${COLUMNS} FROM ${schema}.events
    WHERE (transaction_id, global_position) > ($1::xid8, $2::bigint)
      AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
    ORDER BY transaction_id, global_position
    LIMIT ${FEED_PAGE}`
  const counts: Array<number> = []
  const [eventfoldMs = 0, rawMs = 0] = await util.medianMs({ warmup: 1, runs: FEED_RUNS }, [
    async () => {
      counts.push(await runtime.runPromise(catchUp))
    },
    async () => {
      let after: [string, string] = ["0", "0"]
      let count = 0
      for (;;) {
        const { rows } = await pool.query<RawRow>(page, after)
        count += rows.length
        const last = rows[rows.length - 1]
        if (!last || rows.length < FEED_PAGE) break
        after = [last.transaction_id, last.global_position]
      }
      counts.push(count)
    }
  ])
  if (counts.some((n) => n !== FEED_EVENTS)) throw new Error(`feed counts ${counts.join(", ")}, not ${FEED_EVENTS}`)
  return {
    workload: `feed catch-up, ${util.formatNumber(FEED_EVENTS)} events, pages of ${util.formatNumber(FEED_PAGE)}`,
    unit: "events/s",
    eventfold: FEED_EVENTS / (eventfoldMs / 1000),
    raw: FEED_EVENTS / (rawMs / 1000),
    higherIsBetter: true,
    target: "≥ 0.6×",
    met: (ratio) => (ratio >= 0.6 ? "yes" : "no")
  }
}

/** Node CPU per call (µs, median of 5 rounds) of the hot path's pieces that are eventfold's own, with no tracer. */
const hotPath = async (): Promise<ReadonlyArray<readonly [string, number]>> => {
  const result: EventStore.AppendResult = {
    tenantId: TENANT,
    streamType: STREAM_TYPE,
    streamId: "s",
    version: 1,
    eventIds: [],
    position: Position.start,
    idempotent: false
  }
  // A store that does nothing: what remains is the cost of the spans and metrics every store reports.
  const nothing: Store = {
    tenancy: "single",
    append: () => Effect.succeed(result),
    readStream: () => Effect.succeed([]),
    readAll: () => Effect.succeed([]),
    headPosition: Effect.succeed(Position.start),
    streamVersion: () => Effect.succeed(0),
    eventExists: () => Effect.succeed(false)
  }
  const instrumented = EventStore.instrument(nothing)
  const options: EventStore.AppendOptions = {
    streamType: STREAM_TYPE,
    streamId: "s",
    expectedVersion: ExpectedVersion.Exact(3),
    events: [{ type: "Deposited", payload: payloadOf(1), metadata }]
  }
  const memory = await Effect.runPromise(EventStore.makeMemory)
  let n = 0
  const handler = await Effect.runPromise(
    CommandHandler.make(Aggregate.make({
      name: STREAM_TYPE,
      events: util.AccountEvent,
      decider: Decider.make<Account, number, util.AccountEvent>({
        initialState: initial,
        evolve: (state, event) => evolveAmount(state, event._tag, event.amount),
        decide: (amount) => Effect.succeed([new util.Deposited({ amount, note: "hot path" })])
      })
    })).pipe(Effect.provideService(EventStore.EventStore, memory))
  )
  const calls: ReadonlyArray<readonly [string, number, () => Effect.Effect<unknown, unknown>]> = [
    ["EventStore.instrument around a store that does nothing: append", CALLS, () => instrumented.append(options)],
    ["EventValidation.prepareAppend, 1 event", CALLS, () => EventValidation.prepareAppend(options)],
    [
      "memory store: append 1 event to a new stream",
      CALLS / 10,
      () => memory.append({ ...options, streamId: `a-${n++}`, expectedVersion: ExpectedVersion.NoStream })
    ],
    ["memory store: CommandHandler.handle on a new stream", CALLS / 10, () => handler.handle(`h-${n++}`, 1)]
  ]
  return calls.map(([name, count, call]) => {
    const loop = Effect.gen(function*() {
      for (let i = 0; i < count; i++) yield* call()
    })
    Effect.runSync(Effect.either(loop))
    const rounds = Array.from({ length: 5 }, () => {
      const started = process.cpuUsage()
      Effect.runSync(Effect.either(loop))
      const used = process.cpuUsage(started)
      return (used.user + used.system) / count
    })
    return [name, util.median(rounds)] as const
  })
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
        row.met(ratio)
      ]
    })
  )
  console.log(
    [
      `eventfold reads vs raw pg (${server}; pool ${POOL_SIZE} on both sides; read + fold: median of ${FOLD_RUNS}, ` +
      `feed: median of ${FEED_RUNS}, contenders interleaved)`,
      "",
      table,
      "",
      "raw = SELECT of the same 12 columns ORDER BY version (pg's object rows), fold over pg's parsed JSON.",
      "untyped: EventStore.readStream (every column, a RecordedEvent per event), fold over the payloads.",
      "typed: CommandHandler.load: the column reader (version, type, schema version, payload only), then each event " +
      "decoded by the aggregate's Schema and folded, no RecordedEvent; 'through readStream' is the same load on the " +
      "store with its readStream wrapped, which has no column reader (the path before it).",
      "feed: EventStore.streamAll (readAll pages, a RecordedEvent per event) against keyset pages of the same columns " +
      "below the same horizon.",
      "ratio = eventfold / raw pg: lower is better for ms rows, higher for /s rows."
    ].join("\n")
  )
}

const printHotPath = (rows: ReadonlyArray<readonly [string, number]>): void => {
  console.log(
    [
      "",
      "Node CPU per call on the hot path, no tracer installed (µs, median of 5 rounds):",
      "",
      util.formatTable(["call", "µs"], rows.map(([name, us]) => [name, util.formatNumber(us, 2)]))
    ].join("\n")
  )
}
