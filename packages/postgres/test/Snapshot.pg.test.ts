// Snapshots on PostgreSQL: loads through a snapshot equal full replays (property test), corrupt rows are cache
// misses, failed writes never fail a command or its caller's transaction, and concurrent appends never leave a
// snapshot ahead of or inconsistent with its stream.
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, layer } from "@effect/vitest"
import { Aggregate, CommandHandler, Decider, EventStore, SnapshotStore } from "@eventfold/core"
import { PgEventStore, PgMigrations, PgSnapshotStore, PgTest } from "@eventfold/postgres"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FastCheck from "effect/FastCheck"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Ref from "effect/Ref"
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

const eventOf = (amount: number): LedgerEvent =>
  amount >= 0 ? new Credited({ amount }) : new Debited({ amount: -amount })

// Contention is the point of some tests here: retry conflicts for as long as it takes.
const patient = Schedule.spaced("2 millis").pipe(Schedule.jittered, Schedule.intersect(Schedule.recurs(1000)))

const missCount = (aggregate: string, reason: SnapshotStore.MissReason) =>
  Effect.map(
    Metric.value(Metric.tagged(Metric.tagged(SnapshotStore.misses, "aggregate", aggregate), "reason", reason)),
    (state) => state.count
  )

const loadSnapshot = (streamType: string, streamId: string) =>
  Effect.flatMap(SnapshotStore.SnapshotStore, (store) => store.load({ streamType, streamId }))

/** The fold of the stream's events 1..version, read straight from the event store. */
const replayTo = (aggregate: Aggregate.Aggregate.Any, streamId: string, version: number) =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const events = yield* store.readStream({ streamType: aggregate.name, streamId, limit: version })
    assert.strictEqual(events.length, version, `the stream reaches version ${version}`)
    return Decider.fold(decider, events.map((e) => Either.getOrThrow(aggregate.decodeEventEither(e))))
  })

/** Every session of this test database waiting on a lock. */
const lockWaiters = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) =>
    sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity
    WHERE datname = current_database() AND wait_event_type = 'Lock'`
).pipe(Effect.map((rows) => rows[0]!.n))

const awaitLockWaiters = (n: number) =>
  lockWaiters.pipe(
    Effect.repeat({ schedule: Schedule.spaced("10 millis"), until: (waiting) => waiting >= n }),
    Effect.timeout("10 seconds")
  )

const warnings: Array<string> = []

/** Collects warning logs instead of printing them, so tests can check that a swallowed failure was reported. */
const captureWarnings = Logger.replace(
  Logger.defaultLogger,
  Logger.make(({ logLevel, message }) => {
    if (logLevel._tag === "Warning") warnings.push(Array.isArray(message) ? message.join(" ") : String(message))
  })
)

const StoresLive = Layer.mergeAll(PgEventStore.layer(), PgSnapshotStore.layer()).pipe(
  Layer.provide(PgMigrations.layer()),
  Layer.provideMerge(PgTest.layerClient())
)

type Step = { readonly post: ReadonlyArray<number> } | { readonly snapshot: true }

const Steps = FastCheck.array(
  FastCheck.oneof(
    FastCheck.record({
      post: FastCheck.array(FastCheck.integer({ min: -1000, max: 1000 }), { minLength: 1, maxLength: 8 })
    }),
    FastCheck.constant({ snapshot: true as const })
  ),
  { minLength: 1, maxLength: 20 }
)

layer(StoresLive, { excludeTestServices: true, timeout: "120 seconds" })(
  `snapshots on PostgreSQL (${PgTest.serverLabel()})`,
  (it) => {
    it.effect.prop(
      "state loaded through a snapshot equals a full replay, for random command sequences",
      [Steps, FastCheck.integer({ min: 1, max: 12 }), FastCheck.constantFrom("inline" as const, "manual" as const)],
      ([steps, every, mode]: readonly [ReadonlyArray<Step>, number, "inline" | "manual"]) =>
        Effect.gen(function*() {
          const aggregate = ledger({ every, schemaVersion: 1, mode })
          const handler = yield* CommandHandler.make(aggregate)
          const plain = yield* CommandHandler.make(ledger(undefined, aggregate.name))
          const all: Array<LedgerEvent> = []
          let snapshotAt = 0
          for (const step of steps) {
            if ("post" in step) {
              const from = all.length
              yield* handler.handle("p-1", post(...step.post))
              all.push(...step.post.map(eventOf))
              if (mode === "inline" && SnapshotStore.crosses(every, from, all.length)) snapshotAt = all.length
            } else {
              const written = yield* handler.snapshot("p-1")
              const expected = all.length > snapshotAt ? all.length : undefined
              assert.deepStrictEqual(Option.getOrUndefined(Option.map(written, (s) => s.version)), expected)
              if (expected !== undefined) snapshotAt = expected
            }
            // Every intermediate load goes through the latest snapshot and must agree with a replay.
            const loaded = yield* handler.load("p-1")
            assert.deepStrictEqual(loaded, yield* plain.load("p-1"))
            assert.deepStrictEqual(loaded, { state: Decider.fold(decider, all), version: all.length })
          }
          const stored = yield* loadSnapshot(aggregate.name, "p-1")
          assert.strictEqual(Option.getOrElse(Option.map(stored, (s) => s.version), () => 0), snapshotAt)
          if (Option.isSome(stored)) {
            assert.deepStrictEqual(
              Schema.decodeUnknownSync(LedgerState)(stored.value.state),
              Decider.fold(decider, all.slice(0, snapshotAt))
            )
          }
        }),
      { timeout: 90_000, fastCheck: { numRuns: 25 } }
    )

    it.effect("on a database without the snapshots table the Layer fails at startup, naming the table", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(
          PgSnapshotStore.make().pipe(Effect.provide(PgTest.layerClient({ maxConnections: 2, migrate: false })))
        )
        assert.strictEqual(error._tag, "StoreError")
        assert.include(error._tag === "StoreError" ? error.reason : "", "eventfold.snapshots")
        const badSchema = yield* Effect.flip(PgSnapshotStore.make({ schema: "Not-A-Schema" }))
        assert.strictEqual(badSchema._tag, "InvalidInput")
      }))

    it.effect("a corrupt snapshot row is ignored, counted and logged; the load equals a full replay", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const aggregate = ledger({ every: 2, schemaVersion: 1 })
        const handler = yield* CommandHandler.make(aggregate)
        const plain = yield* CommandHandler.make(ledger(undefined, aggregate.name))
        yield* handler.handle("c-1", post(5, -2, 9))
        assert.strictEqual(Option.getOrThrow(yield* loadSnapshot(aggregate.name, "c-1")).version, 3)
        const replay = yield* plain.load("c-1")
        warnings.length = 0
        const corruptions = ["{\"balance\": [1, 2], \"entries\": 3, \"digest\": 1}", "\"garbage\"", "null", "{}"]
        for (const [i, state] of corruptions.entries()) {
          yield* sql`UPDATE eventfold.snapshots SET state = ${state}::jsonb
            WHERE stream_type = ${aggregate.name} AND stream_id = 'c-1'`
          const before = yield* missCount(aggregate.name, "decode")
          const loaded = yield* handler.load("c-1").pipe(Effect.provide(captureWarnings))
          assert.deepStrictEqual(loaded, replay, `corruption ${i}`)
          assert.strictEqual((yield* missCount(aggregate.name, "decode")) - before, 1)
        }
        assert.strictEqual(warnings.filter((w) => w.includes("does not decode")).length, corruptions.length)

        // A row rewritten to another schema version, or ahead of the stream, is a miss too.
        yield* sql`UPDATE eventfold.snapshots SET state = '{"balance":"1","entries":1,"digest":1}', schema_version = 7
          WHERE stream_type = ${aggregate.name} AND stream_id = 'c-1'`
        const staleBefore = yield* missCount(aggregate.name, "schema-version")
        assert.deepStrictEqual(yield* handler.load("c-1"), replay)
        assert.strictEqual((yield* missCount(aggregate.name, "schema-version")) - staleBefore, 1)
        yield* sql`UPDATE eventfold.snapshots SET schema_version = 1, version = 40
          WHERE stream_type = ${aggregate.name} AND stream_id = 'c-1'`
        const aheadBefore = yield* missCount(aggregate.name, "ahead-of-stream")
        assert.deepStrictEqual(yield* handler.load("c-1"), replay)
        assert.strictEqual((yield* missCount(aggregate.name, "ahead-of-stream")) - aheadBefore, 1)
      }))

    it.effect("a failing snapshot write fails neither the command nor the caller's transaction", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const store = yield* EventStore.EventStore
        // Only the tables' owner may add a trigger.
        yield* PgTest.asAdmin(Effect.flatMap(SqlClient.SqlClient, (admin) =>
          Effect.zipRight(
            admin`CREATE OR REPLACE FUNCTION eventfold.refuse_snapshot() RETURNS trigger LANGUAGE plpgsql AS $$
              BEGIN RAISE EXCEPTION 'snapshots refused for %', NEW.stream_type USING ERRCODE = '42501'; END $$`,
            admin`CREATE TRIGGER refuse_snapshot BEFORE INSERT OR UPDATE ON eventfold.snapshots FOR EACH ROW
              WHEN (NEW.stream_type LIKE 'Refused-%') EXECUTE FUNCTION eventfold.refuse_snapshot()`
          )))
        yield* Effect.addFinalizer(() =>
          PgTest.asAdmin(
            Effect.flatMap(SqlClient.SqlClient, (admin) =>
              admin`DROP TRIGGER IF EXISTS refuse_snapshot ON eventfold.snapshots`)
          ).pipe(Effect.orDie)
        )
        const aggregate = ledger({ every: 1, schemaVersion: 1 }, `Refused-${crypto.randomUUID()}`)
        const handler = yield* CommandHandler.make(aggregate)
        const failures = Metric.tagged(SnapshotStore.writeFailures, "aggregate", aggregate.name)
        const before = (yield* Metric.value(failures)).count
        warnings.length = 0

        const alone = yield* handler.handle("w-1", post(1))
        assert.strictEqual(alone.version, 1)
        // Inside the caller's transaction the failed write must not abort it: later statements still run, and the
        // events commit.
        const inTx = yield* sql.withTransaction(
          Effect.gen(function*() {
            const result = yield* handler.handle("w-1", post(2, 3))
            const [row] = yield* sql<{ one: number }>`SELECT 1 AS one`
            return [result.version, row!.one]
          })
        )
        assert.deepStrictEqual(inTx, [3, 1])
        assert.strictEqual(yield* store.streamVersion({ streamType: aggregate.name, streamId: "w-1" }), 3)
        assert.isTrue(Option.isNone(yield* loadSnapshot(aggregate.name, "w-1")))
        assert.strictEqual((yield* Metric.value(failures)).count - before, 2)
        assert.strictEqual(warnings.filter((w) => w.includes("snapshot write failed")).length, 2)
      }).pipe(Effect.provide(captureWarnings), Effect.scoped))

    it.effect("an inline snapshot written in a transaction that rolls back rolls back with its events", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const store = yield* EventStore.EventStore
        const aggregate = ledger({ every: 1, schemaVersion: 1 })
        const handler = yield* CommandHandler.make(aggregate)
        yield* handler.handle("r-1", post(1))
        const aborted = yield* Effect.flip(sql.withTransaction(
          Effect.zipRight(handler.handle("r-1", post(2, 3)), Effect.fail("the caller changed its mind" as const))
        ))
        assert.strictEqual(aborted, "the caller changed its mind")
        assert.strictEqual(yield* store.streamVersion({ streamType: aggregate.name, streamId: "r-1" }), 1)
        assert.strictEqual(Option.getOrThrow(yield* loadSnapshot(aggregate.name, "r-1")).version, 1)
      }))

    it.effect("a background snapshot inside a caller's transaction is written with it, and rolls back with it", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const aggregate = ledger({ every: 1, schemaVersion: 1, mode: "background" })
        const handler = yield* CommandHandler.make(aggregate)
        yield* handler.handle("bg-1", post(1))
        // Outside a transaction the write is forked: wait for it.
        yield* Effect.flatMap(
          loadSnapshot(aggregate.name, "bg-1"),
          (o) => Option.isSome(o) ? Effect.void : Effect.fail("not yet")
        ).pipe(
          Effect.retry(Schedule.spaced("10 millis").pipe(Schedule.intersect(Schedule.recurs(500))))
        )
        const aborted = yield* Effect.flip(sql.withTransaction(
          Effect.zipRight(handler.handle("bg-1", post(2, 3)), Effect.fail("the caller changed its mind" as const))
        ))
        assert.strictEqual(aborted, "the caller changed its mind")
        yield* Effect.sleep("200 millis") // a forked write, had there been one, would have landed by now
        assert.strictEqual(Option.getOrThrow(yield* loadSnapshot(aggregate.name, "bg-1")).version, 1)
        yield* sql.withTransaction(handler.handle("bg-1", post(4)))
        // Written inline within the transaction: there when it commits.
        assert.strictEqual(Option.getOrThrow(yield* loadSnapshot(aggregate.name, "bg-1")).version, 2)
      }))

    it.effect("concurrent upserts on a locked row: a newer snapshot queued first is never replaced by an older one", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const store = yield* SnapshotStore.SnapshotStore
        const stream = { streamType: `Locked-${crypto.randomUUID()}`, streamId: "l-1" }
        yield* store.save({ ...stream, version: 1, schemaVersion: 1, state: { v: 1 } })
        const locked = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        // Hold the row so both upserts queue on it, in a known order.
        const holder = yield* sql.withTransaction(
          Effect.gen(function*() {
            yield* sql`SELECT 1 FROM eventfold.snapshots
              WHERE stream_type = ${stream.streamType} AND stream_id = ${stream.streamId} FOR UPDATE`
            yield* Deferred.succeed(locked, undefined)
            yield* Deferred.await(release)
          })
        ).pipe(Effect.fork)
        yield* Deferred.await(locked)
        const newer = yield* Effect.fork(store.save({ ...stream, version: 10, schemaVersion: 1, state: { v: 10 } }))
        yield* awaitLockWaiters(1)
        const older = yield* Effect.fork(store.save({ ...stream, version: 5, schemaVersion: 1, state: { v: 5 } }))
        yield* awaitLockWaiters(2)
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(holder)
        assert.isTrue(yield* Fiber.join(newer))
        // The older upsert re-checks its WHERE against the row the newer one committed, so it stores nothing.
        assert.isFalse(yield* Fiber.join(older))
        const stored = Option.getOrThrow(yield* store.load(stream))
        assert.deepStrictEqual([stored.version, stored.state], [10, { v: 10 }])
      }))

    it.effect("a slow snapshot write overtaken by a later append and snapshot never replaces the newer one", () =>
      Effect.gen(function*() {
        const pgSnapshots = yield* SnapshotStore.SnapshotStore
        const aggregate = ledger({ every: 2, schemaVersion: 1 })
        const gate = yield* Deferred.make<void>()
        const held = yield* Deferred.make<number>()
        // The real PostgreSQL store, with the first handler's saves held until the test releases them.
        const gated = SnapshotStore.SnapshotStore.of({
          ...pgSnapshots,
          save: (options) =>
            Deferred.succeed(held, options.version).pipe(
              Effect.zipRight(Deferred.await(gate)),
              Effect.zipRight(pgSnapshots.save(options))
            )
        })
        // Another process: its own view of the store (commands of one process on one stream take turns).
        const events = yield* EventStore.EventStore
        const slow = yield* CommandHandler.make(aggregate).pipe(
          Effect.provideService(SnapshotStore.SnapshotStore, gated),
          Effect.provideService(EventStore.EventStore, EventStore.EventStore.of({ ...events }))
        )
        const fast = yield* CommandHandler.make(aggregate)
        const slowHandle = yield* Effect.fork(slow.handle("s-1", post(1, 2)))
        assert.strictEqual(yield* Deferred.await(held), 2)
        // The append at version 2 has committed; its snapshot write is still in flight.
        const result = yield* fast.handle("s-1", post(3, 4))
        assert.strictEqual(result.version, 4)
        assert.strictEqual(Option.getOrThrow(yield* loadSnapshot(aggregate.name, "s-1")).version, 4)
        yield* Deferred.succeed(gate, undefined)
        assert.strictEqual((yield* Fiber.join(slowHandle)).version, 2)
        const stored = Option.getOrThrow(yield* loadSnapshot(aggregate.name, "s-1"))
        assert.strictEqual(stored.version, 4)
        assert.deepStrictEqual(
          Schema.decodeUnknownSync(LedgerState)(stored.state),
          yield* replayTo(aggregate, "s-1", 4)
        )
      }))

    it.effect("many fibers appending and snapshotting one stream: every snapshot ever stored matches its replay", () =>
      Effect.gen(function*() {
        const inline = ledger({ every: 3, schemaVersion: 1 })
        const background = ledger({ every: 3, schemaVersion: 1, mode: "background" }, inline.name)
        const handlers = [
          yield* CommandHandler.make(inline, { retry: patient }),
          yield* CommandHandler.make(background, { retry: patient })
        ]
        const done = yield* Ref.make(false)
        const samples = yield* Ref.make<ReadonlyArray<SnapshotStore.Snapshot>>([])
        // Reads the snapshot row as often as it can while the writers race, and keeps every distinct one.
        const sampler = yield* loadSnapshot(inline.name, "hot").pipe(
          Effect.tap(Option.match({
            onNone: () => Effect.void,
            onSome: (s) =>
              Ref.update(
                samples,
                (all) =>
                  all.some((x) => x.version === s.version && JSON.stringify(x.state) === JSON.stringify(s.state))
                    ? all
                    : [...all, s]
              )
          })),
          Effect.repeat({ schedule: Schedule.spaced("1 millis"), until: () => false }),
          Effect.race(Effect.repeat(Ref.get(done), { schedule: Schedule.spaced("5 millis"), until: (d) => d })),
          Effect.fork
        )
        const writers = Effect.forEach(
          Array.from({ length: 12 }, (_, i) => i),
          (i) =>
            Effect.forEach(
              Array.from({ length: 8 }, (_, j) => j),
              (j) =>
                Effect.flatMap(Random.nextIntBetween(1, 6), (size) =>
                  handlers[(i + j) % 2]!.handle(
                    "hot",
                    post(...Array.from({ length: size }, (_, k) => i * 100 + j * 10 + k))
                  ))
            ),
          { concurrency: "unbounded", discard: true }
        )
        const snapshotters = Effect.forEach(
          Array.from({ length: 3 }, (_, i) => i),
          () => Effect.forEach(Array.from({ length: 10 }), () => handlers[0]!.snapshot("hot"), { discard: true }),
          { concurrency: "unbounded", discard: true }
        )
        yield* Effect.all([writers, snapshotters], { concurrency: "unbounded", discard: true })
        // Let the last background writes land before the final check.
        yield* Effect.sleep("200 millis")
        yield* Ref.set(done, true)
        yield* Fiber.join(sampler)
        const final = yield* loadSnapshot(inline.name, "hot")
        const all = [...(yield* Ref.get(samples)), ...Option.toArray(final)]
        const store = yield* EventStore.EventStore
        const streamVersion = yield* store.streamVersion({ streamType: inline.name, streamId: "hot" })
        assert.isAbove(all.length, 3, "the sampler saw snapshots while the writers raced")
        for (const snapshot of all) {
          assert.isAtMost(snapshot.version, streamVersion)
          assert.deepStrictEqual(
            Schema.decodeUnknownSync(LedgerState)(snapshot.state),
            yield* replayTo(inline, "hot", snapshot.version),
            `snapshot at version ${snapshot.version}`
          )
        }
        const loaded = yield* handlers[0]!.load("hot")
        assert.deepStrictEqual(loaded, { state: yield* replayTo(inline, "hot", streamVersion), version: streamVersion })
      }))
  }
)
