/**
 * Outbox relay throughput: how fast relays drain a backlog of outbox rows on PostgreSQL, to the in-memory publisher
 * (the relay's own cost: claim, publish in stream order, mark) and to NATS JetStream (against raw JetStream
 * publishes with the same concurrency as the baseline).
 *
 * @since 0.1.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as EventStore from "@eventfold/core/EventStore"
import * as Outbox from "@eventfold/core/Outbox"
import * as OutboxPublisher from "@eventfold/core/OutboxPublisher"
import * as OutboxRelay from "@eventfold/core/OutboxRelay"
import * as NatsPublisher from "@eventfold/outbox-nats/NatsPublisher"
import * as PgDatabase from "@eventfold/postgres/PgDatabase"
import * as PgEventStore from "@eventfold/postgres/PgEventStore"
import * as PgMigrations from "@eventfold/postgres/PgMigrations"
import * as PgOutbox from "@eventfold/postgres/PgOutbox"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Schedule from "effect/Schedule"
import { connect, nanos } from "nats"
import * as util from "./util.js"

const STREAMS = 50
const PER_STREAM = 100
const EVENTS = STREAMS * PER_STREAM
const BATCH = 100
const CONCURRENCY = 16
const POOL_SIZE = 8
const NATS_URL = process.env.NATS_URL ?? "127.0.0.1:4222"

interface Row {
  readonly system: string
  readonly workload: string
  readonly value: number
  readonly unit: string
  readonly ratio: string
}

/**
 * Runs the workloads on a fresh database of the server and prints one table.
 *
 * @since 0.1.0
 * @category main
 */
export const main = (ctx: { readonly serverUrl: string }): Promise<void> =>
  util.withDatabase(ctx.serverUrl, "eventfold_bench_outbox", async (database) => {
    const server = await util.describeServer(database.url)
    const runtime = ManagedRuntime.make(
      PgEventStore.layer({ outbox: true }).pipe(
        Layer.provideMerge(PgOutbox.layer()),
        Layer.provide(PgMigrations.layer()),
        Layer.provideMerge(
          PgDatabase.layer({ url: database.url, maxConnections: POOL_SIZE, applicationName: "eventfold-bench" })
        )
      )
    )
    try {
      await runtime.runPromise(seed)
      const rows: Array<Row> = []
      for (const [relays, batch] of [[1, BATCH], [2, BATCH], [1, 500]] as const) {
        rows.push({
          system: "eventfold relay",
          workload: `${relays} relay${relays > 1 ? "s" : ""}, batch ${batch} -> in-memory publisher`,
          value: await runtime.runPromise(drain(relays, OutboxPublisher.layerMemory, batch)),
          unit: "events/s",
          ratio: "-"
        })
      }
      rows.push(...(await nats(runtime)))
      console.log(
        [
          `outbox relay throughput (${server}; ${util.formatNumber(EVENTS)} events in ${STREAMS} streams; ` +
          `${CONCURRENCY} streams in parallel per relay, pool ${POOL_SIZE}; one drain of the whole backlog per row)`,
          "",
          util.formatTable(
            ["system", "workload", "value", "unit", "ratio vs baseline"],
            rows.map((r) => [r.system, r.workload, util.formatNumber(r.value), r.unit, r.ratio])
          ),
          ""
        ].join("\n")
      )
    } finally {
      await runtime.dispose()
    }
  })

type Runtime = ManagedRuntime.ManagedRuntime<
  EventStore.EventStore | Outbox.Outbox | SqlClient.SqlClient,
  unknown
>

const seed = Effect.gen(function*() {
  const store = yield* EventStore.EventStore
  yield* Effect.forEach(
    Array.from({ length: STREAMS }, (_, s) => s),
    (s) =>
      Effect.forEach(
        Array.from({ length: PER_STREAM / 10 }, (_, i) => i),
        (i) =>
          store.append({
            streamType: "Order",
            streamId: `order-${s}`,
            events: Array.from({ length: 10 }, (_, j) => ({
              type: "LineAdded",
              payload: { line: i * 10 + j, sku: `sku-${j}`, quantity: j + 1 }
            }))
          }),
        { discard: true }
      ),
    { concurrency: POOL_SIZE, discard: true }
  )
})

/** Puts every row back to pending, so each workload drains the same backlog. */
const reset = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) =>
    sql`UPDATE eventfold.outbox SET status = 'pending', published_at = NULL, claimed_by = NULL, claimed_until = NULL,
    retry_count = 0, next_attempt_at = now()`
)

/** Runs `relays` relays until the outbox is drained; returns events per second. */
const drain = <E>(relays: number, publisher: Layer.Layer<OutboxPublisher.OutboxPublisher, E>, batchSize = BATCH) =>
  Effect.gen(function*() {
    yield* reset
    const outbox = yield* Outbox.Outbox
    const start = performance.now()
    const fibers = yield* Effect.forEach(
      Array.from({ length: relays }, (_, i) => i),
      (i) =>
        Effect.fork(OutboxRelay.run({
          relayId: `bench-${i}`,
          batchSize,
          concurrency: CONCURRENCY,
          pollInterval: "10 millis"
        }))
    )
    yield* outbox.stats.pipe(
      Effect.repeat({ schedule: Schedule.spaced("20 millis"), until: (s) => s.pending === 0 })
    )
    const seconds = (performance.now() - start) / 1000
    yield* Fiber.interruptAll(fibers)
    return EVENTS / seconds
  }).pipe(Effect.provide(publisher))

const nats = async (runtime: Runtime): Promise<ReadonlyArray<Row>> => {
  const nc = await connect({ servers: NATS_URL, timeout: 2_000 }).catch(() => undefined)
  if (!nc) {
    return [{
      system: "eventfold relay",
      workload: `-> NATS JetStream: SKIPPED, no server at ${NATS_URL}`,
      value: 0,
      unit: "events/s",
      ratio: "-"
    }]
  }
  const jsm = await nc.jetstreamManager()
  const streams: Array<string> = []
  // A fresh JetStream stream per run, so the duplicate window never drops the repeated event ids.
  const freshStream = async () => {
    const id = crypto.randomUUID().replace(/-/g, "").slice(0, 12)
    const name = `EVENTFOLD_BENCH_${id}`
    await jsm.streams.add({ name, subjects: [`efbench_${id}.>`], duplicate_window: nanos(120_000) })
    streams.push(name)
    return `efbench_${id}`
  }
  try {
    const body = new TextEncoder().encode(JSON.stringify({ line: 1, sku: "sku-1", quantity: 1 }))
    const js = nc.jetstream()
    const rawPrefix = await freshStream()
    const rawStart = performance.now()
    let next = 0
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (next < EVENTS) {
        const n = next++
        await js.publish(`${rawPrefix}.Order`, body, { msgID: `raw-${n}` })
      }
    }))
    const raw = EVENTS / ((performance.now() - rawStart) / 1000)
    const rows: Array<Row> = [{
      system: "raw nats.js",
      workload: `JetStream publish, ${CONCURRENCY} concurrent, msgID set`,
      value: raw,
      unit: "events/s",
      ratio: "baseline"
    }]
    for (const relays of [1, 2]) {
      const subjectPrefix = await freshStream()
      const value = await runtime.runPromise(drain(relays, NatsPublisher.layer({ servers: NATS_URL, subjectPrefix })))
      rows.push({
        system: "eventfold relay",
        workload: `${relays} relay${relays > 1 ? "s" : ""}, batch ${BATCH} -> NATS JetStream`,
        value,
        unit: "events/s",
        ratio: `${(value / raw).toFixed(2)}x`
      })
    }
    return rows
  } finally {
    for (const name of streams) await jsm.streams.delete(name).catch(() => false)
    await nc.close()
  }
}
