// Snapshots in CommandHandler on the in-memory stores: the policy boundaries, invalidation, the three modes, and
// write failures that never fail a command.
import { assert, describe, it } from "@effect/vitest"
import {
  Aggregate,
  CommandHandler,
  Decider,
  EventStore,
  SnapshotStore,
  SnapshotStoreMissing,
  StoreError
} from "@eventfold/core"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"

class Credited extends Schema.TaggedClass<Credited>()("Credited", { amount: Schema.Number }) {}
class Debited extends Schema.TaggedClass<Debited>()("Debited", { amount: Schema.Number }) {}
const LedgerEvent = Schema.Union(Credited, Debited)
type LedgerEvent = typeof LedgerEvent.Type

// The encoded state differs from the decoded one (bigint as a string), and `digest` depends on every event's order.
const LedgerState = Schema.Struct({ balance: Schema.BigInt, entries: Schema.Number, digest: Schema.Number })
type LedgerState = typeof LedgerState.Type

interface Post {
  readonly amounts: ReadonlyArray<number>
}

const decider = Decider.make<LedgerState, Post, LedgerEvent>({
  initialState: { balance: 0n, entries: 0, digest: 7 },
  evolve: (state, event) => {
    const signed = event._tag === "Credited" ? event.amount : -event.amount
    return {
      balance: state.balance + BigInt(signed),
      entries: state.entries + 1,
      digest: (state.digest * 31 + signed + 1_000_003) % 1_000_000_007
    }
  },
  decide: (command) =>
    Effect.succeed(command.amounts.map((a) => a >= 0 ? new Credited({ amount: a }) : new Debited({ amount: -a })))
})

const ledger = (snapshot?: Aggregate.SnapshotPolicy, name = `Ledger-${crypto.randomUUID()}`) =>
  Aggregate.make({ name, decider, events: LedgerEvent, state: LedgerState, ...(snapshot ? { snapshot } : {}) })

const post = (...amounts: ReadonlyArray<number>): Post => ({ amounts })

const stores = Layer.merge(EventStore.layerMemory, SnapshotStore.layerMemory)

const missCount = (aggregate: string, reason: SnapshotStore.MissReason) =>
  Effect.map(
    Metric.value(Metric.tagged(Metric.tagged(SnapshotStore.misses, "aggregate", aggregate), "reason", reason)),
    (state) => state.count
  )

const writeFailureCount = (aggregate: string) =>
  Effect.map(
    Metric.value(Metric.tagged(SnapshotStore.writeFailures, "aggregate", aggregate)),
    (state) => state.count
  )

/** Collects warning logs, so tests can check that a swallowed failure was reported. */
const captureWarnings = Effect.sync(() => {
  const lines: Array<string> = []
  const logger = Logger.make(({ logLevel, message }) => {
    if (logLevel._tag === "Warning") {
      lines.push(Array.isArray(message) ? message.map(String).join(" ") : String(message))
    }
  })
  return { lines, layer: Logger.replace(Logger.defaultLogger, logger) }
})

const storedVersion = (aggregate: Aggregate.Aggregate.Any, streamId: string) =>
  Effect.flatMap(SnapshotStore.SnapshotStore, (store) => store.load({ streamType: aggregate.name, streamId })).pipe(
    Effect.map(Option.map((s) => s.version))
  )

/** A SnapshotStore over the memory one whose saves can be replaced, to inject slow or failing writes. */
const withSave = (
  save: (
    inner: SnapshotStore.SnapshotStore["Type"]
  ) => SnapshotStore.SnapshotStore["Type"]["save"]
) =>
  Layer.effect(
    SnapshotStore.SnapshotStore,
    Effect.map(SnapshotStore.makeMemory, (inner) => ({ ...inner, save: save(inner) }))
  )

describe("SnapshotStore.crosses", () => {
  it.prop(
    "is true exactly when a multiple of every lies in (from, to]",
    [FastCheck.integer({ min: 1, max: 50 }), FastCheck.nat(500), FastCheck.nat(200)],
    ([every, from, added]) => {
      const to = from + added
      let expected = false
      for (let v = from + 1; v <= to; v++) if (v % every === 0) expected = true
      assert.strictEqual(SnapshotStore.crosses(every, from, to), expected)
    }
  )
})

describe("CommandHandler with snapshots (memory)", () => {
  it.effect("a snapshot is written when an append crosses a multiple of every, including a batch that jumps it", () =>
    Effect.gen(function*() {
      const aggregate = ledger({ every: 3, schemaVersion: 1 })
      const handler = yield* CommandHandler.make(aggregate)
      // [amounts appended, the stored snapshot's version afterwards]
      const steps: ReadonlyArray<readonly [ReadonlyArray<number>, number | undefined]> = [
        [[1], undefined], // 0 -> 1
        [[2], undefined], // 1 -> 2
        [[3], 3], // 2 -> 3 lands on the boundary
        [[4], 3], // 3 -> 4 starts on it: no crossing
        [[5, 6], 6], // 4 -> 6 lands on the next one
        [[7, 8], 6], // 6 -> 8 crosses none
        [[9, 10, 11, 12, 13, 14, 15], 15] // 8 -> 15 jumps over 9 and 12 in one batch: one snapshot, at 15
      ]
      const expected = steps.map(([, version]) => version)
      const seen: Array<number | undefined> = []
      for (const [amounts] of steps) {
        yield* handler.handle("a-1", post(...amounts))
        seen.push(Option.getOrUndefined(yield* storedVersion(aggregate, "a-1")))
      }
      assert.deepStrictEqual(seen, expected)
    }).pipe(Effect.provide(stores)))

  it.effect("a first append of more than every events snapshots at its last version", () =>
    Effect.gen(function*() {
      const aggregate = ledger({ every: 100, schemaVersion: 1 })
      const handler = yield* CommandHandler.make(aggregate)
      yield* handler.handle("big", post(...Array.from({ length: 99 }, (_, i) => i)))
      assert.isTrue(Option.isNone(yield* storedVersion(aggregate, "big")))
      yield* handler.handle("big", post(1, 2))
      assert.deepStrictEqual(yield* storedVersion(aggregate, "big"), Option.some(101))
      yield* handler.handle("jump", post(...Array.from({ length: 250 }, (_, i) => i)))
      assert.deepStrictEqual(yield* storedVersion(aggregate, "jump"), Option.some(250))
    }).pipe(Effect.provide(stores)))

  it.effect("the snapshot holds the Schema-encoded state after the append, with its schema version", () =>
    Effect.gen(function*() {
      const aggregate = ledger({ every: 2, schemaVersion: 5 })
      const handler = yield* CommandHandler.make(aggregate)
      const result = yield* handler.handle("e-1", post(10, -3, 4))
      const snapshot = Option.getOrThrow(
        yield* Effect.flatMap(
          SnapshotStore.SnapshotStore,
          (s) => s.load({ streamType: aggregate.name, streamId: "e-1" })
        )
      )
      assert.strictEqual(snapshot.version, 3)
      assert.strictEqual(snapshot.schemaVersion, 5)
      assert.deepStrictEqual(snapshot.state, Schema.encodeSync(LedgerState)(result.state))
      assert.deepStrictEqual(snapshot.state, { balance: "11", entries: 3, digest: result.state.digest })
    }).pipe(Effect.provide(stores)))

  it.effect("load starts from the snapshot and folds only the events after it", () =>
    Effect.gen(function*() {
      const aggregate = ledger({ every: 4, schemaVersion: 1 })
      const handler = yield* CommandHandler.make(aggregate)
      yield* handler.handle("t-1", post(1, 2, 3, 4))
      yield* handler.handle("t-1", post(5))
      // Plant a snapshot whose state no replay could produce: if load uses it, the tail lands on top of it.
      const store = yield* SnapshotStore.SnapshotStore
      yield* store.delete({ streamType: aggregate.name, streamId: "t-1" })
      yield* store.save({
        streamType: aggregate.name,
        streamId: "t-1",
        version: 4,
        schemaVersion: 1,
        state: { balance: "1000", entries: 40, digest: 1 }
      })
      const loaded = yield* handler.load("t-1")
      assert.strictEqual(loaded.version, 5)
      assert.deepStrictEqual(
        loaded.state,
        decider.evolve({ balance: 1000n, entries: 40, digest: 1 }, new Credited({ amount: 5 }))
      )
    }).pipe(Effect.provide(stores)))

  it.effect("state loaded through a snapshot equals a full replay", () =>
    Effect.gen(function*() {
      const aggregate = ledger({ every: 5, schemaVersion: 1 })
      const plain = yield* CommandHandler.make(ledger(undefined, aggregate.name))
      const handler = yield* CommandHandler.make(aggregate)
      for (let i = 0; i < 12; i++) {
        yield* handler.handle(
          "r-1",
          post(...Array.from({ length: i % 4 + 1 }, (_, j) => i * 7 - j * 3))
        )
      }
      assert.isTrue(Option.isSome(yield* storedVersion(aggregate, "r-1")))
      assert.deepStrictEqual(yield* handler.load("r-1"), yield* plain.load("r-1"))
    }).pipe(Effect.provide(stores)))

  it.effect("a snapshot of another schema version is ignored and counted; the load replays events", () =>
    Effect.gen(function*() {
      const v1 = ledger({ every: 2, schemaVersion: 1 })
      const v2 = ledger({ every: 2, schemaVersion: 2 }, v1.name)
      const old = yield* CommandHandler.make(v1)
      yield* old.handle("s-1", post(1, 2, 3))
      // Tamper with the v1 snapshot: a load that trusted it would show this balance.
      const store = yield* SnapshotStore.SnapshotStore
      yield* store.delete({ streamType: v1.name, streamId: "s-1" })
      yield* store.save({
        streamType: v1.name,
        streamId: "s-1",
        version: 3,
        schemaVersion: 1,
        state: { balance: "999", entries: 3, digest: 0 }
      })
      const before = yield* missCount(v1.name, "schema-version")
      const handler = yield* CommandHandler.make(v2)
      const loaded = yield* handler.load("s-1")
      assert.strictEqual(loaded.version, 3)
      assert.strictEqual(loaded.state.balance, 6n)
      assert.strictEqual((yield* missCount(v1.name, "schema-version")) - before, 1)
      // The next crossing replaces it with a snapshot of the new schema version.
      yield* handler.handle("s-1", post(4))
      const replaced = Option.getOrThrow(yield* store.load({ streamType: v1.name, streamId: "s-1" }))
      assert.deepStrictEqual([replaced.version, replaced.schemaVersion], [4, 2])
      assert.strictEqual((yield* missCount(v1.name, "schema-version")) - before, 2)
    }).pipe(Effect.provide(stores)))

  it.effect("a snapshot that does not decode is ignored, counted and logged; the load replays events", () =>
    Effect.gen(function*() {
      const aggregate = ledger({ every: 2, schemaVersion: 1 })
      const handler = yield* CommandHandler.make(aggregate)
      yield* handler.handle("c-1", post(1, 2))
      const store = yield* SnapshotStore.SnapshotStore
      yield* store.delete({ streamType: aggregate.name, streamId: "c-1" })
      yield* store.save({
        streamType: aggregate.name,
        streamId: "c-1",
        version: 2,
        schemaVersion: 1,
        state: { balance: "not a number", entries: "two" }
      })
      const warnings = yield* captureWarnings
      const before = yield* missCount(aggregate.name, "decode")
      const loaded = yield* handler.load("c-1").pipe(Effect.provide(warnings.layer))
      assert.deepStrictEqual([loaded.version, loaded.state.balance], [2, 3n])
      assert.strictEqual((yield* missCount(aggregate.name, "decode")) - before, 1)
      assert.strictEqual(warnings.lines.filter((l) => l.includes("does not decode")).length, 1)
    }).pipe(Effect.provide(stores)))

  it.effect("a snapshot ahead of the stream is ignored and counted; the load replays events", () =>
    Effect.gen(function*() {
      const aggregate = ledger({ every: 10, schemaVersion: 1 })
      const handler = yield* CommandHandler.make(aggregate)
      yield* handler.handle("h-1", post(1, 2, 3))
      const store = yield* SnapshotStore.SnapshotStore
      yield* store.save({
        streamType: aggregate.name,
        streamId: "h-1",
        version: 50,
        schemaVersion: 1,
        state: { balance: "5", entries: 50, digest: 0 }
      })
      const before = yield* missCount(aggregate.name, "ahead-of-stream")
      const loaded = yield* handler.load("h-1")
      assert.deepStrictEqual([loaded.version, loaded.state.balance, loaded.state.entries], [3, 6n, 3])
      assert.strictEqual((yield* missCount(aggregate.name, "ahead-of-stream")) - before, 1)
      // And commands still work: they decide on the replayed state at the real version.
      const result = yield* handler.handle("h-1", post(4))
      assert.strictEqual(result.version, 4)
    }).pipe(Effect.provide(stores)))

  it.effect("a snapshot policy without a SnapshotStore in context fails the build with SnapshotStoreMissing", () =>
    Effect.gen(function*() {
      const aggregate = ledger({ every: 1, schemaVersion: 1 })
      // Before: the handler was built and silently replayed every stream from its first event.
      const error = yield* Effect.flip(CommandHandler.make(aggregate))
      assert.instanceOf(error, SnapshotStoreMissing)
      assert.strictEqual(error.aggregate, aggregate.name)
      assert.include(error.provide, "SnapshotStore.layerMemory")
      assert.include(error.message, aggregate.name)
      // Without a policy no store is needed.
      yield* CommandHandler.make(ledger())
    }).pipe(Effect.provide(EventStore.layerMemory)))

  it.effect("a repeated idempotency key returns the state its first run left, not that of a newer snapshot", () =>
    Effect.gen(function*() {
      const aggregate = ledger({ every: 2, schemaVersion: 1 })
      const handler = yield* CommandHandler.make(aggregate)
      yield* handler.handle("k-1", post(1, 2))
      const first = yield* handler.handle("k-1", post(3), { idempotencyKey: "request-7" })
      yield* handler.handle("k-1", post(4))
      assert.strictEqual(Option.getOrUndefined(yield* storedVersion(aggregate, "k-1")), 4)
      // Loaded from the snapshot at 2 plus event 3; the snapshot at 4 is past it.
      const repeat = yield* handler.handle("k-1", post(3), { idempotencyKey: "request-7" })
      assert.deepStrictEqual(repeat, first)
      assert.deepStrictEqual([repeat.version, repeat.state.balance, repeat.state.entries], [3, 6n, 3])
    }).pipe(Effect.provide(stores)))

  it.effect("without a snapshot policy the handler writes no snapshot", () =>
    Effect.gen(function*() {
      const noPolicy = ledger()
      const handler = yield* CommandHandler.make(noPolicy)
      yield* handler.handle("n-2", post(1, 2, 3))
      assert.isTrue(Option.isNone(yield* storedVersion(noPolicy, "n-2")))
      const error = yield* Effect.flip(handler.snapshot("n-2"))
      assert.include(error._tag === "InvalidInput" ? error.reason : "", "no snapshot policy")
    }).pipe(Effect.provide(stores)))

  it.effect("manual mode: handle never writes; snapshot(id) writes the current state and returns it", () =>
    Effect.gen(function*() {
      const aggregate = ledger({ every: 1, schemaVersion: 3, mode: "manual" })
      const handler = yield* CommandHandler.make(aggregate)
      assert.isTrue(Option.isNone(yield* handler.snapshot("m-1")))
      const result = yield* handler.handle("m-1", post(5, 6, 7))
      assert.isTrue(Option.isNone(yield* storedVersion(aggregate, "m-1")))
      const written = Option.getOrThrow(yield* handler.snapshot("m-1"))
      assert.deepStrictEqual(
        [written.streamType, written.streamId, written.version, written.schemaVersion, written.state],
        [aggregate.name, "m-1", 3, 3, Schema.encodeSync(LedgerState)(result.state)]
      )
      assert.instanceOf(written.createdAt, Date)
      // Nothing new since: the store already holds this snapshot.
      assert.isTrue(Option.isNone(yield* handler.snapshot("m-1")))
      yield* handler.handle("m-1", post(8))
      assert.strictEqual(Option.getOrThrow(yield* handler.snapshot("m-1")).version, 4)
    }).pipe(Effect.provide(stores)))

  it.live("background mode: handle returns before the snapshot write finishes", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const started = yield* Deferred.make<void>()
      const aggregate = ledger({ every: 2, schemaVersion: 1, mode: "background" })
      const program = Effect.gen(function*() {
        const handler = yield* CommandHandler.make(aggregate)
        // If handle waited for the blocked write, this would time out.
        const result = yield* handler.handle("b-1", post(1, 2)).pipe(Effect.timeoutFail({
          duration: "5 seconds",
          onTimeout: () => "handle waited for the background snapshot"
        }))
        assert.strictEqual(result.version, 2)
        yield* Deferred.await(started)
        assert.isTrue(Option.isNone(yield* storedVersion(aggregate, "b-1")))
        yield* Deferred.succeed(gate, undefined)
        yield* storedVersion(aggregate, "b-1").pipe(
          Effect.repeat({ schedule: Schedule.spaced("5 millis"), until: (o) => Option.isSome(o) }),
          Effect.timeout("5 seconds")
        )
        assert.deepStrictEqual(yield* storedVersion(aggregate, "b-1"), Option.some(2))
      })
      const slowSave = withSave((inner) => (options) =>
        Deferred.succeed(started, undefined).pipe(
          Effect.zipRight(Deferred.await(gate)),
          Effect.zipRight(inner.save(options))
        )
      )
      yield* program.pipe(Effect.provide(Layer.merge(EventStore.layerMemory, slowSave)))
    }))

  for (const mode of ["inline", "background"] as const) {
    it.live(`${mode} mode: a failing snapshot write never fails the command; it is logged and counted`, () =>
      Effect.gen(function*() {
        const aggregate = ledger({ every: 1, schemaVersion: 1, mode })
        const warnings = yield* captureWarnings
        const failing = withSave(() => (options) =>
          options.version === 1
            ? Effect.fail(new StoreError({ operation: "snapshot.save", reason: "disk full" }))
            : Effect.die("a bug in the snapshot store")
        )
        yield* Effect.gen(function*() {
          const handler = yield* CommandHandler.make(aggregate)
          const first = yield* handler.handle("f-1", post(1))
          const second = yield* handler.handle("f-1", post(2))
          assert.deepStrictEqual([first.version, second.version], [1, 2])
          yield* writeFailureCount(aggregate.name).pipe(
            Effect.repeat({ schedule: Schedule.spaced("5 millis"), until: (n) => n === 2 }),
            Effect.timeout("5 seconds")
          )
          assert.strictEqual((yield* handler.load("f-1")).state.balance, 3n)
        }).pipe(Effect.provide(Layer.merge(Layer.merge(EventStore.layerMemory, failing), warnings.layer)))
        assert.strictEqual(warnings.lines.filter((l) => l.includes("snapshot write failed")).length, 2)
      }))
  }
})
