/**
 * Subscriptions: catch-up throughput over a 100,000-event feed (a plain subscription and a transactional projection,
 * against a raw keyset read of the same pages), and live latency from the start of an append to the handler (p50,
 * p99), woken by LISTEN/NOTIFY and by polling alone.
 *
 * @since 0.1.0
 */
import * as EventStore from "@eventfold/core/EventStore"
import * as FeedNotifier from "@eventfold/core/FeedNotifier"
import * as Subscription from "@eventfold/core/Subscription"
import * as Tenant from "@eventfold/core/Tenant"
import * as PgCheckpointStore from "@eventfold/postgres/PgCheckpointStore"
import * as PgDatabase from "@eventfold/postgres/PgDatabase"
import * as PgEventStore from "@eventfold/postgres/PgEventStore"
import * as PgFeedNotifier from "@eventfold/postgres/PgFeedNotifier"
import * as PgMigrations from "@eventfold/postgres/PgMigrations"
import * as PgProjection from "@eventfold/postgres/PgProjection"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import pg from "pg"
import * as util from "./util.js"

const FEED_EVENTS = 100_000
const PAGE = 1_000
const LIVE_EVENTS = 300
const LIVE_GAP_MS = 5
const POOL_SIZE = 8

interface Row {
  readonly system: string
  readonly workload: string
  readonly value: number
  readonly unit: string
  readonly ratio?: string | undefined
}

/**
 * Seeds the feed, measures, prints one table and drops the database.
 *
 * @since 0.1.0
 * @category main
 */
export const main = (ctx: { readonly serverUrl: string }): Promise<void> =>
  util.withDatabase(ctx.serverUrl, "eventfold_bench_subscriptions", async (database) => {
    const server = await util.describeServer(database.url)
    const client = PgDatabase.layer({ url: database.url, maxConnections: POOL_SIZE, applicationName: "bench" })
    await Effect.runPromise(PgMigrations.run().pipe(Effect.provide(client)))
    const pool = new pg.Pool({ connectionString: database.url, max: 2, connectionTimeoutMillis: 5_000 })
    const runtime = ManagedRuntime.make(
      Layer.mergeAll(PgEventStore.layer(), PgCheckpointStore.layer()).pipe(Layer.provideMerge(client))
    )
    try {
      await seed(pool)
      const rows: Array<Row> = []
      const rawRate = await rawCatchUp(pool)
      rows.push({
        system: "raw pg",
        workload: catchUpLabel,
        value: rawRate,
        unit: "events/s",
        ratio: "1.00× (baseline)"
      })
      for (
        const [system, transactional] of [["Subscription", false], ["PgProjection (1 tx per page)", true]] as const
      ) {
        const rate = await runtime.runPromise(catchUp(transactional))
        rows.push({
          system,
          workload: catchUpLabel,
          value: rate,
          unit: "events/s",
          ratio: `${(rate / rawRate).toFixed(2)}×`
        })
      }
      for (
        const [label, notifier] of [
          ["LISTEN/NOTIFY hint", PgFeedNotifier.layer()],
          ["polling only, every 100 ms", FeedNotifier.layerPolling]
        ] as const
      ) {
        const latencies = await runtime.runPromise(liveLatency.pipe(Effect.provide(notifier)))
        for (const p of [50, 99]) {
          rows.push({
            system: "Subscription",
            workload: `live latency p${p}, append → handler, ${label}`,
            value: percentile(latencies, p),
            unit: "ms"
          })
        }
      }
      print(server, rows)
    } finally {
      await runtime.dispose()
      await pool.end()
    }
  })

const catchUpLabel = `catch-up, ${util.formatNumber(FEED_EVENTS)} events, pages of ${util.formatNumber(PAGE)}`

/**
 * 100 committed transactions of 1,000 events in the default tenant (where a single-tenant store appends), written
 * directly: seeding is not what is measured.
 */
const seed = async (pool: pg.Pool) => {
  for (let batch = 0; batch < FEED_EVENTS / 1_000; batch++) {
    await pool.query(
      `WITH stream AS (INSERT INTO eventfold.streams (tenant_id, stream_type, stream_id, version)
                       VALUES ($1, 'Account', $2, 1000))
       INSERT INTO eventfold.events (tenant_id, stream_type, stream_id, version, event_id, event_type, payload)
       SELECT $1, 'Account', $2, g, gen_random_uuid(), 'Deposited', jsonb_build_object('amount', g % 100 + 1)
         FROM generate_series(1, 1000) AS g`,
      [Tenant.defaultId, `feed-${batch}`]
    )
  }
  await pool.query("VACUUM ANALYZE eventfold.events")
}

const rawCatchUp = async (pool: pg.Pool): Promise<number> => {
  const started = performance.now()
  let after: [string, string] = ["0", "0"]
  let count = 0
  for (;;) {
    const { rows } = await pool.query<{ transaction_id: string; global_position: string }>(
      `SELECT global_position, transaction_id, event_id, tenant_id, stream_type, stream_id, version, event_type,
              schema_version, payload, metadata, recorded_at
         FROM eventfold.events
        WHERE (transaction_id, global_position) > ($1::xid8, $2::bigint)
          AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
        ORDER BY transaction_id, global_position LIMIT ${PAGE}`,
      after
    )
    count += rows.length
    const last = rows[rows.length - 1]
    if (!last || rows.length < PAGE) break
    after = [last.transaction_id, last.global_position]
  }
  if (count !== FEED_EVENTS) throw new Error(`raw catch-up read ${count} events, expected ${FEED_EVENTS}`)
  return count / ((performance.now() - started) / 1000)
}

/** From the beginning to the head, with a handler that only counts; the rate includes checkpoint commits. */
const catchUp = (transactional: boolean) =>
  Effect.gen(function*() {
    let handled = 0
    const options = {
      id: `catch-up-${crypto.randomUUID()}`,
      batchSize: PAGE,
      handler: () => Effect.sync(() => void handled++)
    }
    const subscription = transactional
      ? yield* PgProjection.make(options)
      : yield* Subscription.make(options)
    const head = yield* Effect.flatMap(EventStore.EventStore, (store) => store.headPosition)
    const started = performance.now()
    const fiber = yield* Effect.fork(subscription.run)
    yield* subscription.waitFor(head)
    const seconds = (performance.now() - started) / 1000
    yield* Fiber.interrupt(fiber)
    if (handled !== FEED_EVENTS) {
      return yield* Effect.dieMessage(`catch-up handled ${handled} events, expected ${FEED_EVENTS}`)
    }
    return handled / seconds
  }).pipe(Effect.provide(FeedNotifier.layerPolling))

/** One append at a time, `LIVE_GAP_MS` apart; latency = handler time − time the append started. */
const liveLatency = Effect.gen(function*() {
  const store = yield* EventStore.EventStore
  const started = new Map<number, number>()
  const latencies: Array<number> = []
  const streamType = `Live-${crypto.randomUUID()}`
  const subscription = yield* Subscription.make({
    id: `live-${crypto.randomUUID()}`,
    streamTypes: [streamType],
    startFrom: Subscription.StartFrom.End(),
    pollInterval: "100 millis",
    handler: (event) =>
      Effect.sync(() => {
        const i = (event.payload as { readonly i: number }).i
        latencies.push(performance.now() - started.get(i)!)
      })
  })
  const fiber = yield* Effect.fork(subscription.run)
  while ((yield* subscription.status).phase !== "live") yield* Effect.sleep("10 millis")
  let last = yield* store.headPosition
  for (let i = 0; i < LIVE_EVENTS; i++) {
    started.set(i, performance.now())
    last = (yield* store.append({ streamType, streamId: `s-${i % 10}`, events: [{ type: "Ping", payload: { i } }] }))
      .position
    yield* Effect.sleep(`${LIVE_GAP_MS} millis`)
  }
  yield* subscription.waitFor(last)
  yield* Fiber.interrupt(fiber)
  if (latencies.length !== LIVE_EVENTS) {
    return yield* Effect.dieMessage(`live handled ${latencies.length} events, expected ${LIVE_EVENTS}`)
  }
  return latencies
})

const percentile = (values: ReadonlyArray<number>, p: number): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
}

const print = (server: string, rows: ReadonlyArray<Row>): void => {
  const table = util.formatTable(
    ["system", "workload", "value", "unit", "ratio vs baseline"],
    rows.map((row) => [
      row.system,
      row.workload,
      util.formatNumber(row.value, row.unit === "ms" ? 1 : 0),
      row.unit,
      row.ratio ?? ""
    ])
  )
  console.log(
    [
      `subscriptions (${server}; pool ${POOL_SIZE})`,
      "",
      table,
      "",
      "catch-up: from the beginning to the head read before starting; handler counts only; includes the checkpoint " +
      "commit per page (PgProjection: handler calls + checkpoint compare-and-set in one transaction per page).",
      `raw pg = keyset pages of ${PAGE} below the same xid8 horizon, no decode, no checkpoint.`,
      `live: ${LIVE_EVENTS} single-event appends ${LIVE_GAP_MS} ms apart; the clock starts before append() is called.`
    ].join("\n")
  )
}
