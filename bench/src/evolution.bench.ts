/**
 * The cost of event evolution on a load (issue 12): `CommandHandler.load` of a 10,000-event stream where every event
 * needs one upcast (v1 → v2), against the same stream stored at the current version and read with no evolution, in
 * one run. Also a stream stored under former names (no upcast), the evolved aggregate on current events, and the pure
 * in-memory decode + fold of each (no database), to tell the upcasters' CPU cost from I/O.
 * The target: the upcast path loads within 1.2× of the plain one.
 *
 * @since 0.4.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Aggregate from "@eventfold/core/Aggregate"
import * as CommandHandler from "@eventfold/core/CommandHandler"
import * as Decider from "@eventfold/core/Decider"
import type * as Errors from "@eventfold/core/Errors"
import type * as EventCodec from "@eventfold/core/EventCodec"
import * as EventStore from "@eventfold/core/EventStore"
import * as ExpectedVersion from "@eventfold/core/ExpectedVersion"
import type * as NewEvent from "@eventfold/core/NewEvent"
import type * as RecordedEvent from "@eventfold/core/RecordedEvent"
import * as PgDatabase from "@eventfold/postgres/PgDatabase"
import * as PgEventStore from "@eventfold/postgres/PgEventStore"
import * as PgMigrations from "@eventfold/postgres/PgMigrations"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Schema from "effect/Schema"
import * as util from "./util.js"

const STREAM_EVENTS = 10_000
const SEED_BATCH = 1_000
const STREAM_TYPE = "Account"
const LOAD_RUNS = { warmup: 3, runs: 15 } as const
const FOLD_RUNS = { warmup: 5, runs: 31 } as const
const TARGET = 1.2

/** A deposit, today: whole cents and a currency. */
class Deposited extends Schema.TaggedClass<Deposited>()("Deposited", {
  amountCents: Schema.Int,
  currency: Schema.String
}) {}

/** A withdrawal, today: whole cents and a currency. */
class Withdrawn extends Schema.TaggedClass<Withdrawn>()("Withdrawn", {
  amountCents: Schema.Int,
  currency: Schema.String
}) {}

const AccountEvent = Schema.Union(Deposited, Withdrawn)
type AccountEvent = typeof AccountEvent.Type

interface Balance {
  readonly balanceCents: number
  readonly events: number
}

const decider = Decider.make<Balance, util.Noop, AccountEvent>({
  initialState: { balanceCents: 0, events: 0 },
  evolve: (state, event) => ({
    balanceCents: event._tag === "Deposited"
      ? state.balanceCents + event.amountCents
      : state.balanceCents - event.amountCents,
    events: state.events + 1
  }),
  decide: () => Effect.succeed([])
})

/** Version 1 stored a decimal string of euros, `{ amount: "12.50" }`; version 2 whole cents and the currency. */
const fromDecimalEuros: EventCodec.Upcaster = (v1) => ({
  amountCents: Math.round(Number(v1.amount) * 100),
  currency: "EUR"
})

/** The baseline: the same Schema and decider with no evolution, so every type is at version 1. */
const plain = Aggregate.make({ name: STREAM_TYPE, decider, events: AccountEvent })

/** Both types at version 2 (one upcaster each) and renamed once: `Credited` → `Deposited`, `Debited` → `Withdrawn`. */
const evolved = Aggregate.make({
  name: STREAM_TYPE,
  decider,
  events: AccountEvent,
  evolution: {
    Deposited: { upcasters: [fromDecimalEuros], formerNames: ["Credited"] },
    Withdrawn: { upcasters: [fromDecimalEuros], formerNames: ["Debited"] }
  }
})

type BenchAggregate = typeof plain

const isWithdrawal = (i: number) => i % 3 === 2
const centsOf = (i: number) => 1 + ((i * 7_919) % 99_999)

const currentEvent = (i: number): AccountEvent =>
  isWithdrawal(i)
    ? new Withdrawn({ amountCents: centsOf(i), currency: "EUR" })
    : new Deposited({ amountCents: centsOf(i), currency: "EUR" })

/** One 10,000-event stream, how its events are stored, and the aggregate that loads it. */
interface Variant {
  readonly label: string
  readonly aggregate: BenchAggregate
  readonly streamId: string
  readonly stored: (i: number) => Effect.Effect<NewEvent.NewEvent, Errors.EventEncodeError>
}

/** As the aggregate writes events today: encoded at its current version. */
const writtenBy = (aggregate: BenchAggregate) => (i: number) => aggregate.encodeEvent(currentEvent(i))

const variants: ReadonlyArray<Variant> = [
  { label: "current (v1), no evolution", aggregate: plain, streamId: "current", stored: writtenBy(plain) },
  {
    label: "v1, one upcast each",
    aggregate: evolved,
    streamId: "upcast",
    stored: (i) =>
      Effect.succeed({
        type: isWithdrawal(i) ? "Withdrawn" : "Deposited",
        schemaVersion: 1,
        payload: { amount: (centsOf(i) / 100).toFixed(2) }
      })
  },
  {
    label: "former names, current (v2)",
    aggregate: evolved,
    streamId: "renamed",
    stored: (i) =>
      Effect.map(evolved.encodeEvent(currentEvent(i)), (e) => ({
        ...e,
        type: e.type === "Withdrawn" ? "Debited" : "Credited"
      }))
  },
  { label: "current (v2), evolved aggregate", aggregate: evolved, streamId: "evolved", stored: writtenBy(evolved) }
]

/** Appends the stream's events in batches of `SEED_BATCH`, each at its exact expected version. */
const seed = (variant: Variant) =>
  Effect.flatMap(EventStore.EventStore, (store) =>
    Effect.gen(function*() {
      for (let version = 0; version < STREAM_EVENTS; version += SEED_BATCH) {
        const events = yield* Effect.forEach(
          Array.from({ length: Math.min(SEED_BATCH, STREAM_EVENTS - version) }, (_, i) => version + i),
          variant.stored
        )
        yield* store.append({
          streamType: STREAM_TYPE,
          streamId: variant.streamId,
          expectedVersion: ExpectedVersion.Exact(version),
          events
        })
      }
    }))

/** What `CommandHandler.load` does after the read: decode every event (upcasting it first), then fold. */
const decodeAndFold = (aggregate: BenchAggregate, events: ReadonlyArray<RecordedEvent.RecordedEvent>): Balance => {
  const decoded = new Array<AccountEvent>(events.length)
  for (let i = 0; i < events.length; i++) {
    const result = aggregate.decodeEventEither(events[i]!)
    if (Either.isLeft(result)) throw new Error(`decode failed: ${result.left.issue}`)
    decoded[i] = result.right
  }
  return Decider.fold(aggregate.decider, decoded)
}

/** Only the upcast step of the decode (`EventCodec.upcast`): type resolution, version check, upcasters. */
const upcastOnly = (aggregate: BenchAggregate, events: ReadonlyArray<RecordedEvent.RecordedEvent>): number => {
  let upcast = 0
  for (const event of events) {
    if (Either.isRight(aggregate.codec.upcast(event))) upcast++
  }
  return upcast
}

/**
 * Wall times in milliseconds of each function, run interleaved (`warmup` unmeasured rounds, then `runs` measured
 * ones), as `util.medianMs` does, but keeping every sample for the p90.
 */
const samplesMs = async (
  options: { readonly warmup: number; readonly runs: number },
  fs: ReadonlyArray<() => unknown>
): Promise<ReadonlyArray<ReadonlyArray<number>>> => {
  const times = fs.map((): Array<number> => [])
  for (let round = 0; round < options.warmup + options.runs; round++) {
    for (let i = 0; i < fs.length; i++) {
      const started = performance.now()
      await fs[i]!()
      if (round >= options.warmup) times[i]!.push(performance.now() - started)
    }
  }
  return times
}

/** The nearest-rank percentile `p` (0-100) of some measurements. */
const percentile = (values: ReadonlyArray<number>, p: number): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!
}

interface Stats {
  readonly median: number
  readonly p90: number
}

const statsOf = (samples: ReadonlyArray<number>): Stats => ({
  median: util.median(samples),
  p90: percentile(samples, 90)
})

const rowsOf = (labels: ReadonlyArray<string>, stats: ReadonlyArray<Stats>, events: number) =>
  stats.map((s, i) => [
    labels[i]!,
    util.formatNumber(s.median, 2),
    util.formatNumber(s.p90, 2),
    util.formatNumber(events / (s.median / 1000)),
    `${util.formatNumber(s.median / stats[0]!.median, 2)}×`
  ])

const sameBalance = (a: Balance, b: Balance) => a.balanceCents === b.balanceCents && a.events === b.events

type Runtime = ManagedRuntime.ManagedRuntime<
  EventStore.EventStore | SqlClient.SqlClient,
  Errors.StoreError | Errors.InvalidInput
>

/**
 * @since 0.4.0
 * @category benchmarks
 */
export const main = (ctx: { readonly serverUrl: string }): Promise<void> =>
  util.withDatabase(ctx.serverUrl, "eventfold_bench_evolution", async (database) => {
    const server = await util.describeServer(database.url)
    const runtime: Runtime = ManagedRuntime.make(
      PgEventStore.layer().pipe(
        Layer.provide(PgMigrations.layer()),
        Layer.provideMerge(PgDatabase.layer({ url: database.url, maxConnections: 4 }))
      )
    )
    try {
      await measure(runtime, server)
    } finally {
      await runtime.dispose()
    }
  })

const measure = async (runtime: Runtime, server: string): Promise<void> => {
  if (evolved.codec.versionOf("Deposited") !== 2 || evolved.codec.versionOf("Withdrawn") !== 2) {
    throw new Error("the evolved aggregate should be at version 2")
  }
  for (const variant of variants) await runtime.runPromise(seed(variant))
  await runtime.runPromise(
    Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe("VACUUM ANALYZE eventfold.events"))
  )

  const handlers = await runtime.runPromise(Effect.forEach(variants, (v) => CommandHandler.make(v.aggregate)))
  const loaded = new Array<CommandHandler.LoadResult<Balance> | undefined>(variants.length)
  const loadSamples = await samplesMs(
    LOAD_RUNS,
    handlers.map((handler, i) => async () => {
      loaded[i] = await runtime.runPromise(handler.load(variants[i]!.streamId))
    })
  )

  // The same events as the loads read them, decoded and folded again and again with no database in between.
  const recorded = await runtime.runPromise(
    Effect.flatMap(
      EventStore.EventStore,
      (store) => Effect.forEach(variants, (v) => store.readStream({ streamType: STREAM_TYPE, streamId: v.streamId }))
    )
  )
  const folded = new Array<Balance | undefined>(variants.length)
  const upcasts = new Array<number>(variants.length).fill(0)
  const foldSamples = await samplesMs(FOLD_RUNS, [
    ...variants.map((v, i) => () => {
      folded[i] = decodeAndFold(v.aggregate, recorded[i]!)
    }),
    ...variants.map((v, i) => () => {
      upcasts[i] = upcastOnly(v.aggregate, recorded[i]!)
    })
  ])

  // Every path must reach the same state before its time means anything.
  const expected = Decider.fold(decider, Array.from({ length: STREAM_EVENTS }, (_, i) => currentEvent(i)))
  variants.forEach((v, i) => {
    const load = loaded[i]
    if (
      load?.version !== STREAM_EVENTS || !sameBalance(load.state, expected) || !sameBalance(folded[i]!, expected) ||
      upcasts[i] !== STREAM_EVENTS
    ) {
      throw new Error(
        `${v.streamId}: load ${JSON.stringify(load)}, in memory ${JSON.stringify(folded[i])}, ` +
          `${upcasts[i]} upcast, expected ${JSON.stringify(expected)}`
      )
    }
  })

  const labels = variants.map((v) => v.label)
  const loadStats = loadSamples.map(statsOf)
  const foldStats = foldSamples.slice(0, variants.length).map(statsOf)
  const upcastStats = foldSamples.slice(variants.length).map(statsOf)
  const header = ["stream of 10,000 events", "median ms", "p90 ms", "events/s", "ratio vs current"]
  const n = util.formatNumber(STREAM_EVENTS)
  const loadRatio = loadStats[1]!.median / loadStats[0]!.median
  const foldRatio = foldStats[1]!.median / foldStats[0]!.median
  const upcastMicros = (upcastStats[1]!.median - upcastStats[0]!.median) * 1000 / STREAM_EVENTS
  console.log(
    [
      `event evolution: read + fold of ${n}-event streams (${server}; pool 4; interleaved, ` +
      `${LOAD_RUNS.warmup} warm-up + median of ${LOAD_RUNS.runs} loads, ` +
      `${FOLD_RUNS.warmup} warm-up + median of ${FOLD_RUNS.runs} in-memory folds)`,
      "",
      `CommandHandler.load (readStream from PostgreSQL + upcast + Schema decode + evolve):`,
      util.formatTable(header, rowsOf(labels, loadStats, STREAM_EVENTS)),
      "",
      "in memory, the same events pre-read (aggregate.decodeEventEither for each, then Decider.fold):",
      util.formatTable(header, rowsOf(labels, foldStats, STREAM_EVENTS)),
      "",
      "in memory, the upcast step alone (aggregate.codec.upcast for each: type resolution, version check, upcasters):",
      util.formatTable(header, rowsOf(labels, upcastStats, STREAM_EVENTS)),
      "",
      `upcast / current: load ${util.formatNumber(loadRatio, 2)}× (target ≤ ${TARGET}×, met: ` +
      `${loadRatio <= TARGET ? "yes" : "no"}); in-memory decode + fold ${util.formatNumber(foldRatio, 2)}×; ` +
      `the upcast step costs ${util.formatNumber(upcastMicros, 3)} µs per event over the current one.`,
      "current (v1): the plain aggregate on events it wrote; v1: {amount: \"12.50\"} read by the evolved aggregate " +
      "(Deposited and Withdrawn at v2); former names: Credited/Debited at v2; evolved aggregate: its own v2 events."
    ].join("\n")
  )
}
