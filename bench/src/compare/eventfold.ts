/**
 * eventfold in the comparison, through its public API only and with its defaults: `PgEventStore.layer()` over
 * `PgDatabase.layer({ maxConnections: 10 })`, migrated by `PgMigrations.layer()`; appends with `EventStore.append`,
 * commands with `CommandHandler`, loads with `CommandHandler.load` (typed) or `EventStore.readStream` (untyped), the
 * feed with `EventStore.streamAll`, consumers with `Subscription` and `PgProjection`. The workloads run as fibers of
 * one Effect program, as in an Effect application.
 *
 * @since 0.5.0
 */
import type * as PgClient from "@effect/sql-pg/PgClient"
import type * as SqlClient from "@effect/sql/SqlClient"
import * as Aggregate from "@eventfold/core/Aggregate"
import type * as CheckpointStore from "@eventfold/core/CheckpointStore"
import * as CommandHandler from "@eventfold/core/CommandHandler"
import * as Decider from "@eventfold/core/Decider"
import type * as Errors from "@eventfold/core/Errors"
import * as EventStore from "@eventfold/core/EventStore"
import * as ExpectedVersion from "@eventfold/core/ExpectedVersion"
import * as FeedNotifier from "@eventfold/core/FeedNotifier"
import * as Subscription from "@eventfold/core/Subscription"
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
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import pg from "pg"
import * as util from "../util.js"
import * as domain from "./domain.js"
import type * as protocol from "./protocol.js"

/** The one command of the contention workload: deposit an amount. */
interface Deposit {
  readonly _tag: "Deposit"
  readonly amount: number
}

/** What the conflict-counting retry schedule sees: whether the round is measuring, and what it counted. */
const counters = { measuring: false, conflicts: 0 }

const account = Aggregate.make({
  name: domain.STREAM_TYPE,
  events: util.AccountEvent,
  decider: Decider.make<domain.Balance, Deposit, util.AccountEvent>({
    initialState: domain.initialBalance,
    evolve: (state, event) => domain.evolveBalance(state, event._tag, event.amount),
    decide: (command) => Effect.succeed([new util.Deposited({ amount: command.amount, note: domain.NOTE })])
  })
})

type Services = EventStore.EventStore | CheckpointStore.CheckpointStore | SqlClient.SqlClient | PgClient.PgClient
type Runtime = ManagedRuntime.ManagedRuntime<Services, Errors.StoreError | Errors.InvalidInput>

/**
 * `util.throughputEffect` telling `op` whether the phase is measured.
 */
const phased = <E>(
  options: util.ThroughputOptions,
  op: (worker: number, measured: boolean) => Effect.Effect<number, E>
): Effect.Effect<util.Throughput, E> => {
  const phase = (ms: number, measured: boolean) =>
    Effect.suspend(() => {
      const deadline = performance.now() + ms
      return Effect.forEach(
        Array.from({ length: options.workers }, (_, worker) => worker),
        (worker) =>
          Effect.gen(function*() {
            let units = 0
            while (performance.now() < deadline) units += yield* op(worker, measured)
            return units
          }),
        { concurrency: "unbounded" }
      ).pipe(Effect.map((counts) => counts.reduce((a, b) => a + b, 0)))
    })
  return Effect.gen(function*() {
    yield* phase(options.warmupMs, false)
    const started = performance.now()
    const units = yield* phase(options.durationMs, true)
    const seconds = (performance.now() - started) / 1000
    return { units, seconds, perSecond: units / seconds }
  })
}

/**
 * Builds the store (migrating the database first) and the command handler.
 *
 * @since 0.5.0
 * @category constructors
 */
export const make = async (url: string): Promise<protocol.System> => {
  const runtime: Runtime = ManagedRuntime.make(
    Layer.mergeAll(PgEventStore.layer(), PgCheckpointStore.layer()).pipe(
      Layer.provide(PgMigrations.layer()),
      Layer.provideMerge(
        PgDatabase.layer({ url, maxConnections: domain.POOL_SIZE, applicationName: "compare-eventfold" })
      )
    )
  )
  const store = await runtime.runPromise(EventStore.EventStore)
  // The default retry policy, counting each conflict it is asked to retry (or gives up on).
  const retry = Schedule.tapInput(CommandHandler.defaultRetry, () =>
    Effect.sync(() => {
      if (counters.measuring) counters.conflicts++
    }))
  const handler = await runtime.runPromise(CommandHandler.make(account, { retry }))
  const seedPool = new pg.Pool({ connectionString: url, max: 1, application_name: "compare-eventfold-seed" })

  const appendOf = (streamId: string, expected: number, events: ReturnType<typeof domain.newEvents>) =>
    store.append({
      streamType: domain.STREAM_TYPE,
      streamId,
      expectedVersion: ExpectedVersion.Exact(expected),
      events
    })

  const live = (spec: protocol.LiveSpec) =>
    runtime.runPromise(
      Effect.gen(function*() {
        const recorder = domain.latencyRecorder()
        const streamType = `Live-${spec.label}`
        const options: Subscription.Options<never, never> = {
          id: `live-${spec.label}`,
          streamTypes: [streamType],
          startFrom: Subscription.StartFrom.End(),
          handler: (event) => Effect.sync(() => recorder.record(event.payload))
        }
        const subscription = spec.mode === "projection"
          ? yield* PgProjection.make(options)
          : yield* Subscription.make(options)
        const fiber = yield* Effect.fork(subscription.run)
        const ping = (writer: number, payload: domain.Ping) =>
          runtime.runPromise(
            store.append({ streamType, streamId: `${spec.label}-${writer}`, events: [{ type: "Ping", payload }] })
          ).then(() => undefined)
        yield* Effect.promise(() => recorder.ready((payload) => ping(0, payload)))
        const load = yield* Effect.promise(() => domain.pacedLoad(spec, ping))
        yield* Effect.promise(() => recorder.settled(load.appended, domain.LIVE_TIMEOUT_MS))
        yield* Fiber.interrupt(fiber)
        return { latencies: recorder.latencies, appended: load.appended }
      }).pipe(Effect.provide(PgFeedNotifier.layer()))
    )

  return {
    append: (spec) => {
      const batch = domain.newEvents(spec.batchSize)
      const versions = new Array<number>(spec.workers).fill(0)
      return runtime.runPromise(
        phased(spec, (worker) =>
          Effect.map(appendOf(`${spec.label}-${worker}`, versions[worker]!, batch), (result) => {
            versions[worker] = result.version
            return spec.batchSize
          }))
      )
    },

    contention: (spec) =>
      runtime.runPromise(Effect.gen(function*() {
        counters.conflicts = 0
        let failures = 0
        let succeeded = 0
        const throughput = yield* phased(
          { workers: spec.writers, warmupMs: spec.warmupMs, durationMs: spec.durationMs },
          (_, measured) => {
            counters.measuring = measured
            return handler.handle(spec.streamId, { _tag: "Deposit", amount: 1 }).pipe(
              Effect.map(() => {
                succeeded++
                return 1
              }),
              Effect.catchTag("ConcurrencyConflict", () =>
                Effect.sync(() => {
                  if (measured) failures++
                  return 0
                }))
            )
          }
        )
        counters.measuring = false
        const { version } = yield* handler.load(spec.streamId)
        return { throughput, conflicts: counters.conflicts, failures, succeeded, finalVersion: version }
      })),

    seedStream: ({ events, streamId }) =>
      runtime.runPromise(Effect.gen(function*() {
        for (let version = 0; version < events; version += 100) {
          yield* appendOf(streamId, version, domain.newEvents(Math.min(100, events - version), version))
        }
      })).then(() => seedPool.query("VACUUM ANALYZE eventfold.events")).then(() => undefined),

    fold: async (spec) => {
      const typed = Effect.map(handler.load(spec.streamId), (loaded) => loaded.state)
      const untyped = Effect.map(
        store.readStream({ streamType: domain.STREAM_TYPE, streamId: spec.streamId }),
        (events) => {
          let state = domain.initialBalance
          for (const event of events) state = domain.evolveBalance(state, event.type, domain.amountOf(event.payload))
          return state
        }
      )
      let state = domain.initialBalance
      const times: Array<number> = []
      for (let run = 0; run < spec.runs; run++) {
        const started = performance.now()
        state = await (spec.typed ? runtime.runPromise(typed) : runtime.runPromise(untyped))
        times.push(performance.now() - started)
      }
      return { ms: util.median(times), ...state }
    },

    seedFeed: ({ events }) => domain.seedEventfoldFeed(seedPool, "eventfold", events),

    feed: (spec) =>
      runtime.runPromise(
        spec.mode === "read"
          ? Effect.gen(function*() {
            const started = performance.now()
            const events = yield* EventStore.streamAll({ pageSize: spec.pageSize }).pipe(
              Stream.runFold(0, (n) => n + 1)
            )
            return { events, ms: performance.now() - started }
          })
          : Effect.gen(function*() {
            let events = 0
            const subscription = yield* Subscription.make({
              id: `catch-up-${crypto.randomUUID()}`,
              batchSize: spec.pageSize,
              handler: () => Effect.sync(() => void events++)
            })
            const head = yield* store.headPosition
            const started = performance.now()
            const fiber = yield* Effect.fork(subscription.run)
            yield* subscription.waitFor(head)
            const ms = performance.now() - started
            yield* Fiber.interrupt(fiber)
            return { events, ms }
          }).pipe(Effect.provide(FeedNotifier.layerPolling))
      ),

    live,

    close: async () => {
      await seedPool.end()
      await runtime.dispose()
    }
  }
}
