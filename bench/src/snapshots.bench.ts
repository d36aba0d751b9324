/**
 * Aggregate load time by stream length, with and without snapshots: `CommandHandler.load` on streams of 10, 1,000,
 * 10,000 and 100,000 events, replaying every event or starting from the latest snapshot (policy every 100).
 * The target: with snapshots, a 100,000-event aggregate loads in at most 2× the time of a 10-event one.
 *
 * @since 0.1.0
 */
import * as CommandHandler from "@eventfold/core/CommandHandler"
import * as EventStore from "@eventfold/core/EventStore"
import * as PgDatabase from "@eventfold/postgres/PgDatabase"
import * as PgEventStore from "@eventfold/postgres/PgEventStore"
import * as PgMigrations from "@eventfold/postgres/PgMigrations"
import * as PgSnapshotStore from "@eventfold/postgres/PgSnapshotStore"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as util from "./util.js"

const SIZES = [10, 1_000, 10_000, 100_000] as const
const EVERY = 100
/** The worst case the policy allows: a snapshot `EVERY - 1` events behind the head. */
const WORST_TAIL = EVERY - 1
const SEED_BATCH = 1_000
const STREAM_TYPE = "Account"

const { replaying, snapshotting } = util.accountAggregates({
  name: STREAM_TYPE,
  state: Schema.Struct({ balance: Schema.Number, events: Schema.Number, lastNote: Schema.String }),
  initialState: { balance: 0, events: 0, lastNote: "" },
  evolve: (state, event) => ({
    balance: event._tag === "Deposited" ? state.balance + event.amount : state.balance - event.amount,
    events: state.events + 1,
    lastNote: event.note
  }),
  every: EVERY
})

const seedEvents = (from: number, count: number) =>
  Array.from({ length: count }, (_, i) => ({
    type: (from + i) % 3 === 0 ? "Withdrawn" : "Deposited",
    payload: { amount: (from + i) % 97, note: `event ${from + i}` }
  }))

/** Appends `count` events to a stream in batches of `SEED_BATCH`, as fast as the store takes them. */
const seed = (streamId: string, count: number) =>
  Effect.flatMap(EventStore.EventStore, (store) =>
    Effect.gen(function*() {
      let version = yield* store.streamVersion({ streamType: STREAM_TYPE, streamId })
      const target = version + count
      while (version < target) {
        const batch = Math.min(SEED_BATCH, target - version)
        version =
          (yield* store.append({ streamType: STREAM_TYPE, streamId, events: seedEvents(version, batch) })).version
      }
    }))

/**
 * Seeds a stream of `size` events with the snapshot an every-`EVERY` policy would leave: at the last multiple of
 * `EVERY`, then `tail` more events after it.
 */
const prepareStream = (streamId: string, size: number, tail: number) =>
  Effect.gen(function*() {
    const handler = yield* CommandHandler.make(snapshotting)
    const covered = Math.floor((size - tail) / EVERY) * EVERY
    yield* seed(streamId, covered)
    if (covered > 0) {
      const written = yield* handler.snapshot(streamId)
      if (Option.isNone(written)) return yield* Effect.fail(new Error(`no snapshot written for ${streamId}`))
    }
    yield* seed(streamId, size - covered)
  })

/**
 * @since 0.1.0
 * @category benchmarks
 */
export const main = (ctx: { readonly serverUrl: string }): Promise<void> =>
  util.withDatabase(ctx.serverUrl, "bench_snapshots", async (database) => {
    const stores = Layer.mergeAll(PgEventStore.layer(), PgSnapshotStore.layer()).pipe(
      Layer.provide(PgMigrations.layer()),
      Layer.provide(PgDatabase.layer({ url: database.url, maxConnections: 4 }))
    )
    const runtime = ManagedRuntime.make(stores)
    try {
      const streams = [
        ...SIZES.map((size) => ({ label: util.formatNumber(size), size, tail: size % EVERY })),
        {
          label: `${util.formatNumber(100_000 + WORST_TAIL)} (snapshot ${WORST_TAIL} behind)`,
          size: 100_000 + WORST_TAIL,
          tail: WORST_TAIL
        }
      ]
      for (const stream of streams) {
        await runtime.runPromise(prepareStream(`s-${stream.size}`, stream.size, stream.tail))
      }
      const [withoutSnapshots, withSnapshots] = await runtime.runPromise(
        Effect.all([CommandHandler.make(replaying), CommandHandler.make(snapshotting)])
      )
      const ids = streams.map((stream) => `s-${stream.size}`)
      // Snapshot loads first, interleaved across sizes so machine noise hits each alike, and before the replays,
      // whose garbage would otherwise land in these short measurements as GC pauses.
      const withTimes = await util.medianMs(
        { warmup: 20, runs: 101 },
        ids.map((id) => () => runtime.runPromise(withSnapshots.load(id)))
      )
      const small = streams.flatMap((stream, i) => stream.size < 100_000 ? [i] : [])
      const large = streams.flatMap((stream, i) => stream.size >= 100_000 ? [i] : [])
      const replay = (indexes: ReadonlyArray<number>) =>
        indexes.map((i) => () => runtime.runPromise(withoutSnapshots.load(ids[i]!)))
      const withoutTimes = new Array<number>(streams.length)
      const smallTimes = await util.medianMs({ warmup: 3, runs: 15 }, replay(small))
      const largeTimes = await util.medianMs({ warmup: 1, runs: 3 }, replay(large))
      small.forEach((index, i) => withoutTimes[index] = smallTimes[i]!)
      large.forEach((index, i) => withoutTimes[index] = largeTimes[i]!)
      // Both handlers must agree before their times mean anything.
      for (const [i, stream] of streams.entries()) {
        const [a, b] = await runtime.runPromise(
          Effect.all([withoutSnapshots.load(ids[i]!), withSnapshots.load(ids[i]!)])
        )
        if (a.version !== stream.size || JSON.stringify(a) !== JSON.stringify(b)) {
          throw new Error(`load mismatch on ${ids[i]}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`)
        }
      }
      const measured = streams.map((stream, i) => ({
        label: stream.label,
        size: stream.size,
        without: withoutTimes[i]!,
        with: withTimes[i]!
      }))
      const base = measured[0]!
      const rows = measured.flatMap((m) => [
        [
          "eventfold, replay (no snapshot)",
          `load ${m.label} events`,
          util.formatNumber(m.without, 2),
          "ms (median)",
          `${util.formatNumber(m.without / base.without, 2)}× vs 10 events`
        ],
        [
          `eventfold + PgSnapshotStore (every ${EVERY})`,
          `load ${m.label} events`,
          util.formatNumber(m.with, 2),
          "ms (median)",
          `${util.formatNumber(m.with / base.with, 2)}× vs 10 events`
        ]
      ])
      console.log(util.formatTable(["system", "workload", "value", "unit", "ratio vs baseline"], rows))
      const hundredK = measured.find((m) => m.size === 100_000)!
      const ratio = hundredK.with / base.with
      console.log(
        `\nwith snapshots, 100,000 events / 10 events: ${util.formatNumber(ratio, 2)}× (target ≤ 2×); ` +
          `snapshot speed-up at 100,000 events: ${util.formatNumber(hundredK.without / hundredK.with, 1)}×`
      )
    } finally {
      await runtime.dispose()
    }
  })
