/**
 * Outbox relay throughput: how fast relays drain a backlog of outbox rows on PostgreSQL, to the in-memory publisher
 * (the relay's own cost: claim, publish in stream order, mark) and to NATS JetStream, side by side with raw `nats.js`
 * publishing the same messages with the same pipelining (one unacknowledged message per stream, as many streams at
 * once as the relay's concurrency). Alternating rounds; medians.
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
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Schedule from "effect/Schedule"
import { connect, type JetStreamClient, nanos } from "nats"
import * as util from "./util.js"

const STREAMS = 50
const PER_STREAM = 200
const EVENTS = STREAMS * PER_STREAM
const ROUNDS = 5
const POOL_SIZE = 8
const NATS_URL = process.env.NATS_URL ?? "127.0.0.1:4222"
const MEMORY_TARGET = 20_000
const NATS_TARGET = 0.7

/** One measured configuration; `run` drains the backlog once and returns events per second. */
interface Contender {
  readonly system: string
  readonly workload: string
  readonly run: () => Promise<number>
  /** The contender of the same round it is compared with, and the target ratio. */
  readonly against?: { readonly baseline: string; readonly target: number } | undefined
  /** An absolute target in events/s. */
  readonly target?: number | undefined
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
    // Connected as NatsPublisher connects (no stack trace captured per request), so the raw loops pay what it pays.
    const nats = await connect({ servers: NATS_URL, timeout: 2_000, noAsyncTraces: true }).catch(() => undefined)
    const jetStreams: Array<string> = []
    try {
      await runtime.runPromise(Effect.zipRight(seed, keepSeed))
      const defaults = OutboxRelay.defaults
      const relays = (n: number) => `${n} relay${n > 1 ? "s" : ""}`
      const contenders: Array<Contender> = [
        {
          system: "eventfold relay",
          workload: `${relays(1)}, defaults -> in-memory publisher`,
          run: () => runtime.runPromise(drain(1, OutboxPublisher.layerMemory)),
          target: MEMORY_TARGET
        },
        {
          system: "eventfold relay",
          workload: `${relays(2)}, defaults -> in-memory publisher`,
          run: () => runtime.runPromise(drain(2, OutboxPublisher.layerMemory)),
          target: MEMORY_TARGET
        },
        {
          system: "eventfold relay",
          workload: `${relays(1)}, batch 100 -> in-memory publisher`,
          run: () => runtime.runPromise(drain(1, OutboxPublisher.layerMemory, { batchSize: 100 }))
        },
        {
          system: "processBatch loop",
          workload: "claim, publish, mark: batch 100 -> in-memory publisher",
          run: () => runtime.runPromise(drainProcessBatch(OutboxPublisher.layerMemory, { batchSize: 100 }))
        }
      ]
      if (nats) {
        const jsm = await nats.jetstreamManager()
        // A fresh JetStream stream per drain, so the duplicate window never drops the repeated event ids.
        const freshStream = async () => {
          const id = crypto.randomUUID().replace(/-/g, "").slice(0, 12)
          const name = `EVENTFOLD_BENCH_${id}`
          await jsm.streams.add({ name, subjects: [`efbench_${id}.>`], duplicate_window: nanos(120_000) })
          jetStreams.push(name)
          return `efbench_${id}`
        }
        const messages = await runtime.runPromise(outboxMessages)
        const js = nats.jetstream()
        const raw = "raw nats.js"
        contenders.push(
          {
            system: raw,
            workload: `same messages, per stream in order, ${defaults.concurrency} streams at once`,
            run: async () => rawPerStream(js, await freshStream(), messages, defaults.concurrency)
          },
          {
            system: "raw nats.js, no order",
            workload: `same messages, ${defaults.batchSize} in flight (ignores stream order)`,
            run: async () => rawWindowed(js, await freshStream(), messages, defaults.batchSize)
          },
          ...[1, 2].map((n): Contender => ({
            system: "eventfold relay",
            workload: `${relays(n)}, defaults -> NATS JetStream`,
            run: async () => {
              const subjectPrefix = await freshStream()
              return runtime.runPromise(drain(n, NatsPublisher.layer({ servers: NATS_URL, subjectPrefix })))
            },
            against: { baseline: raw, target: NATS_TARGET }
          }))
        )
      }

      // One warm-up round (the JIT), then alternating rounds, each starting with the next contender, so drift on a
      // shared machine hits all alike.
      for (const contender of contenders) await contender.run()
      const results = contenders.map(() => [] as Array<number>)
      for (let round = 0; round < ROUNDS; round++) {
        for (let k = 0; k < contenders.length; k++) {
          const i = (round + k) % contenders.length
          results[i]!.push(await contenders[i]!.run())
        }
      }
      const index = new Map(contenders.map((c, i) => [c.system, i]))
      const rows = contenders.map((c, i) => {
        const value = util.median(results[i]!)
        if (c.against) {
          const base = results[index.get(c.against.baseline)!]!
          const ratio = util.median(results[i]!.map((v, round) => v / base[round]!))
          return [
            c.system,
            c.workload,
            util.formatNumber(value),
            `${ratio.toFixed(2)}x ${c.against.baseline}`,
            `>= ${c.against.target}x: ${ratio >= c.against.target ? "met" : "not met"}`
          ]
        }
        const target = c.target === undefined
          ? "-"
          : `>= ${util.formatNumber(c.target)}: ${value >= c.target ? "met" : "not met"}`
        return [c.system, c.workload, util.formatNumber(value), "-", target]
      })
      const natsRaw = index.get("raw nats.js")
      const ceiling = index.get("raw nats.js, no order")
      if (natsRaw !== undefined && ceiling !== undefined) {
        const ratio = util.median(results[natsRaw]!.map((v, round) => v / results[ceiling]![round]!))
        rows[natsRaw]![3] = `${ratio.toFixed(2)}x no order`
      }
      console.log(
        [
          `outbox relay throughput (${server}; ${util.formatNumber(EVENTS)} events in ${STREAMS} streams; relay ` +
          `defaults: batch ${defaults.batchSize}, ${defaults.concurrency} streams at once; pool ${POOL_SIZE}; ` +
          `one warm-up round, then medians of ${ROUNDS} alternating rounds, one drain of the whole backlog each)`,
          nats ? "" : `NATS JetStream: SKIPPED, no server at ${NATS_URL}`,
          util.formatTable(["system", "workload", "events/s", "ratio", "target"], rows),
          ""
        ].join("\n")
      )
    } finally {
      if (nats) {
        const jsm = await nats.jetstreamManager()
        for (const name of jetStreams) await jsm.streams.delete(name).catch(() => false)
        await nats.close()
      }
      await runtime.dispose()
    }
  })

type Services = EventStore.EventStore | Outbox.Outbox | SqlClient.SqlClient

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

/** Keeps a copy of the seeded outbox rows, as the appends wrote them, for `reset`. */
const keepSeed = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) => sql`CREATE TABLE public.outbox_seed AS SELECT * FROM eventfold.outbox ORDER BY id`
)

/**
 * Puts the seeded rows back as the appends wrote them (pending, unclaimed, in freshly filled pages), so every drain
 * starts from the same backlog in the same physical state.
 */
const reset = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  Effect.all([
    sql`TRUNCATE eventfold.outbox`,
    sql`INSERT INTO eventfold.outbox OVERRIDING SYSTEM VALUE SELECT * FROM public.outbox_seed ORDER BY id`,
    sql`ANALYZE eventfold.outbox`
  ], { discard: true }))

/** The backlog as the relay hands it to a publisher, per stream in version order: what the raw loops publish. */
const outboxMessages: Effect.Effect<ReadonlyArray<ReadonlyArray<OutboxPublisher.OutboxMessage>>, unknown, Services> =
  Effect.gen(function*() {
    yield* reset
    const outbox = yield* Outbox.Outbox
    const entries = yield* outbox.claim({ relayId: "bench-read", limit: EVENTS, lease: "1 minute" })
    yield* reset
    const streams = new Map<string, Array<OutboxPublisher.OutboxMessage>>()
    for (const e of entries) {
      const list = streams.get(e.streamId) ?? []
      list.push(e)
      streams.set(e.streamId, list)
    }
    return [...streams.values()].map((list) => list.sort((a, b) => a.version - b.version))
  })

/** No row left to publish or to mark. */
const drained = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  Effect.map(
    sql<{ readonly left: boolean }>`SELECT EXISTS (SELECT 1 FROM eventfold.outbox WHERE status <> 'published') AS left`,
    (rows) => rows[0]?.left === false
  ))

/**
 * Runs `relays` relays until the outbox is drained (every row published and marked); returns events per second.
 * Checking the store costs the server work, so it starts only once the publisher has seen every event.
 */
const drain = <E>(
  relays: number,
  publisher: Layer.Layer<OutboxPublisher.OutboxPublisher, E>,
  options?: OutboxRelay.Options
) =>
  Effect.gen(function*() {
    yield* reset
    const inner = yield* OutboxPublisher.OutboxPublisher
    const allPublished = yield* Deferred.make<void>()
    let published = 0
    const count = (n: number) => {
      published += n
      if (published >= EVENTS) Deferred.unsafeDone(allPublished, Exit.void)
    }
    const run = inner.publishRun
    const counting = OutboxPublisher.OutboxPublisher.of({
      publish: (message) => Effect.tap(inner.publish(message), () => count(1)),
      publishRun: run &&
        ((messages, proceed) => Effect.tap(run(messages, proceed), (outcome) => count(outcome.published)))
    })
    const start = performance.now()
    const fibers = yield* Effect.forEach(
      Array.from({ length: relays }, (_, i) => i),
      (i) =>
        Effect.fork(
          OutboxRelay.run({ relayId: `bench-${i}`, ...options }).pipe(
            Effect.provideService(OutboxPublisher.OutboxPublisher, counting)
          )
        )
    )
    yield* Deferred.await(allPublished)
    yield* drained.pipe(Effect.repeat({ schedule: Schedule.spaced("1 millis"), until: (done) => done }))
    const seconds = (performance.now() - start) / 1000
    yield* Fiber.interruptAll(fibers)
    return EVENTS / seconds
  }).pipe(Effect.provide(publisher))

/** `processBatch` in a loop: claim, publish, then mark on its own (two commits per batch). */
const drainProcessBatch = <E>(
  publisher: Layer.Layer<OutboxPublisher.OutboxPublisher, E>,
  options?: OutboxRelay.Options
) =>
  Effect.gen(function*() {
    yield* reset
    const start = performance.now()
    while ((yield* OutboxRelay.processBatch({ relayId: "bench-0", ...options })) > 0) {
      // drain
    }
    return EVENTS / ((performance.now() - start) / 1000)
  }).pipe(Effect.provide(publisher))

const publishRaw = (js: JetStreamClient, subjectPrefix: string, message: OutboxPublisher.OutboxMessage) =>
  js.publish(`${subjectPrefix}.Order`, NatsPublisher.encode(message), {
    msgID: message.eventId,
    headers: NatsPublisher.messageHeaders(message)
  })

/** Raw `nats.js` with the relay's discipline: each stream's messages in order, one unacknowledged at a time. */
const rawPerStream = async (
  js: JetStreamClient,
  subjectPrefix: string,
  streams: ReadonlyArray<ReadonlyArray<OutboxPublisher.OutboxMessage>>,
  concurrency: number
) => {
  const start = performance.now()
  let next = 0
  await Promise.all(Array.from({ length: Math.min(concurrency, streams.length) }, async () => {
    while (next < streams.length) {
      for (const message of streams[next++]!) await publishRaw(js, subjectPrefix, message)
    }
  }))
  return EVENTS / ((performance.now() - start) / 1000)
}

/** Raw `nats.js` without stream order: `window` messages fired at once, their acknowledgements awaited together. */
const rawWindowed = async (
  js: JetStreamClient,
  subjectPrefix: string,
  streams: ReadonlyArray<ReadonlyArray<OutboxPublisher.OutboxMessage>>,
  window: number
) => {
  const all = streams.flat()
  const start = performance.now()
  for (let i = 0; i < all.length; i += window) {
    await Promise.all(all.slice(i, i + window).map((message) => publishRaw(js, subjectPrefix, message)))
  }
  return EVENTS / ((performance.now() - start) / 1000)
}
