// Per-stream order in the feed: a caller's transaction that began writing before another append committed must not
// put a stream's later version ahead of its earlier one in the feed. Races are forced into a fixed order.
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlError from "@effect/sql/SqlError"
import { assert, describe, it, layer } from "@effect/vitest"
import {
  EventStore,
  ExpectedVersion,
  FeedNotifier,
  OutboxPublisher,
  OutboxRelay,
  Position,
  RecordedEvent,
  Subscription
} from "@eventfold/core"
import { PgDatabase, PgEventStore, PgMigrations, PgOutbox, PgTest, PgTransaction } from "@eventfold/postgres"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import { migrations as embedded } from "../src/internal/migrations.js"

const unique = (prefix: string) => `${prefix}-${crypto.randomUUID()}`

/** Runs a query on a pooled connection of its own, even inside a transaction. */
const outsidePool = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
  Effect.mapInputContext(
    effect,
    (context: Context.Context<never>) => Context.omit(SqlClient.TransactionConnection)(context)
  )

const feedOf = (streamType: string, count: number) =>
  Effect.flatMap(EventStore.EventStore, (store) =>
    store.readAll({ streamTypes: [streamType], limit: 10_000 }).pipe(
      Effect.filterOrFail((events) => events.length >= count, () => "not yet" as const),
      Effect.retry({ schedule: Schedule.spaced("20 millis"), while: (e) => e === "not yet" }),
      Effect.timeout("20 seconds")
    ))

/**
 * The race of the issue, forced into its order: A writes elsewhere first (so it holds the older transaction id), B
 * appends S's first event and commits, then A appends S's next version. `run` runs A's transaction (as it is, or
 * retried); returns A's outcome and how many times A's transaction ran.
 */
const olderTransactionRace = <E>(
  streamType: string,
  expectedVersion: ExpectedVersion.ExpectedVersion,
  run: (
    a: Effect.Effect<EventStore.AppendResult, EventStore.AppendError | SqlError.SqlError>
  ) => Effect.Effect<EventStore.AppendResult, E>
) =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const sql = yield* SqlClient.SqlClient
    const wroteFirst = yield* Deferred.make<void>()
    const bCommitted = yield* Deferred.make<void>()
    let attempts = 0
    const a = yield* run(sql.withTransaction(Effect.gen(function*() {
      attempts++
      yield* store.append({ streamType, streamId: "other", events: [{ type: "Elsewhere", payload: {} }] })
      yield* Deferred.succeed(wroteFirst, undefined)
      yield* Deferred.await(bCommitted)
      return yield* store.append({
        streamType,
        streamId: "s",
        expectedVersion,
        events: [{ type: "Second", payload: {} }]
      })
    }))).pipe(Effect.either, Effect.fork)
    yield* Deferred.await(wroteFirst)
    yield* store.append({ streamType, streamId: "s", events: [{ type: "First", payload: {} }] })
    yield* Deferred.succeed(bCommitted, undefined)
    return { outcome: yield* Fiber.join(a), attempts: () => attempts }
  })

layer(Layer.provideMerge(PgOutbox.layer(), PgTest.layerEventStore({ outbox: true })), {
  excludeTestServices: true,
  timeout: "120 seconds"
})(
  `per-stream order in the feed (${PgTest.serverLabel()})`,
  (it) => {
    it.effect("a transaction that wrote before a committed append to S cannot append S's next version", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const streamType = unique("Order")
        const { outcome } = yield* olderTransactionRace(streamType, ExpectedVersion.Exact(1), (a) => a)

        // A is refused as a conflict that asks for the whole transaction to be retried, and wrote nothing.
        assert.isTrue(outcome._tag === "Left")
        if (outcome._tag === "Left") {
          const error = outcome.left
          assert.strictEqual(error._tag, "ConcurrencyConflict")
          if (error._tag === "ConcurrencyConflict") {
            assert.strictEqual(error.reason, "transaction-order")
            assert.strictEqual(error.actual, 1)
          }
        }
        // Whatever committed, the feed shows each stream in version order.
        const feed = yield* feedOf(streamType, 1)
        const s = feed.filter((e) => e.streamId === "s").map((e) => e.version)
        assert.deepStrictEqual(s, [...s].sort((x, y) => x - y))
        assert.deepStrictEqual((yield* store.readStream({ streamType, streamId: "s" })).map((e) => e.type), ["First"])
      }))

    it.effect("retried in a new transaction, A's append succeeds and the feed keeps version order", () =>
      Effect.gen(function*() {
        const streamType = unique("Order")
        const { attempts, outcome } = yield* olderTransactionRace(
          streamType,
          ExpectedVersion.Any,
          (a) => Effect.retry(a, { while: (e) => e._tag === "ConcurrencyConflict", times: 3 })
        )
        assert.isTrue(outcome._tag === "Right")
        const result = Either.getOrThrow(outcome)
        assert.strictEqual(result.version, 2)
        assert.strictEqual(attempts(), 2)
        const feed = yield* feedOf(streamType, 3)
        assert.deepStrictEqual(
          feed.filter((e) => e.streamId === "s").map((e) => [e.version, e.type]),
          [[1, "First"], [2, "Second"]]
        )
        // The rolled-back first attempt left nothing: "other" has one event, from the retry.
        assert.deepStrictEqual(feed.filter((e) => e.streamId === "other").map((e) => e.version), [1])
        assert.isTrue(
          feed.every((e, i) =>
            i === 0 || Position.isAfter(RecordedEvent.position(e), RecordedEvent.position(feed[i - 1]!))
          )
        )
      }))

    it.effect("an append that writes nothing (idempotent repeat, conflict) gives its transaction no id", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const sql = yield* SqlClient.SqlClient
        const streamType = unique("NoWrite")
        const eventId = crypto.randomUUID()
        yield* store.append({ streamType, streamId: "x", events: [{ type: "Once", payload: {}, eventId }] })
        yield* store.append({ streamType, streamId: "y", events: [{ type: "First", payload: {} }] })
        const result = yield* sql.withTransaction(Effect.gen(function*() {
          const repeat = yield* store.append({
            streamType,
            streamId: "x",
            events: [{ type: "Once", payload: {}, eventId }]
          })
          assert.isTrue(repeat.idempotent)
          const conflict = yield* Effect.flip(
            store.append({
              streamType,
              streamId: "x",
              expectedVersion: ExpectedVersion.Exact(7),
              events: [{ type: "No", payload: {} }]
            })
          )
          assert.strictEqual(conflict._tag, "ConcurrencyConflict")
          const [{ assigned }] = yield* sql<
            { assigned: boolean }
          >`SELECT pg_current_xact_id_if_assigned() IS NOT NULL AS assigned`
          assert.isFalse(assigned, "a transaction that wrote nothing holds no id (it would hold the feed back)")
          // Another writer appends to y meanwhile; this transaction's first real write is still not refused.
          yield* outsidePool(store.append({ streamType, streamId: "y", events: [{ type: "Meanwhile", payload: {} }] }))
          return yield* store.append({ streamType, streamId: "y", events: [{ type: "Mine", payload: {} }] })
        }))
        assert.strictEqual(result.version, 3)
      }))

    it.effect("under REPEATABLE READ a losing append is a serialization conflict, and a retried transaction wins", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const sql = yield* SqlClient.SqlClient
        const streamType = unique("Serial")
        yield* store.append({ streamType, streamId: "s", events: [{ type: "First", payload: {} }] })
        const snapshotTaken = yield* Deferred.make<void>()
        const otherCommitted = yield* Deferred.make<void>()
        let attempts = 0
        const body = Effect.gen(function*() {
          attempts++
          yield* sql`SET TRANSACTION ISOLATION LEVEL REPEATABLE READ`
          yield* store.streamVersion({ streamType, streamId: "s" }) // takes the transaction's snapshot
          yield* Deferred.succeed(snapshotTaken, undefined)
          yield* Deferred.await(otherCommitted)
          return yield* store.append({ streamType, streamId: "s", events: [{ type: "Mine", payload: {} }] })
        })
        const raw = yield* sql.withTransaction(body).pipe(Effect.either, Effect.fork)
        yield* Deferred.await(snapshotTaken)
        yield* store.append({ streamType, streamId: "s", events: [{ type: "Theirs", payload: {} }] })
        yield* Deferred.succeed(otherCommitted, undefined)
        const outcome = yield* Fiber.join(raw)
        assert.isTrue(outcome._tag === "Left" && outcome.left._tag === "ConcurrencyConflict")
        if (outcome._tag === "Left" && outcome.left._tag === "ConcurrencyConflict") {
          assert.strictEqual(outcome.left.reason, "serialization")
          assert.isTrue(outcome.left.retriesTransaction)
          assert.strictEqual(outcome.left.actual, -1, "unknown: nothing can be read in an aborted transaction")
        }
        // The same unit of work under PgTransaction with a retry: the second attempt gets a fresh snapshot and wins.
        // (Both latches are already set, so the retry runs straight through.)
        attempts = 0
        const retried = yield* PgTransaction.withTransaction(body, { retry: Schedule.recurs(3) })
        assert.strictEqual(retried.version, 3)
        assert.strictEqual(attempts, 1)
        const types = (yield* store.readStream({ streamType, streamId: "s" })).map((e) => e.type)
        assert.deepStrictEqual(types, ["First", "Theirs", "Mine"])
      }))

    it.effect("PgTransaction refuses to report success for a transaction a caught failure aborted", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const sql = yield* SqlClient.SqlClient
        const streamType = unique("Aborted")
        // The body appends, then catches a failing statement: PostgreSQL has aborted the transaction by then, and
        // its COMMIT would quietly roll the append back.
        const body = Effect.zipRight(
          store.append({ streamType, streamId: "audit", events: [{ type: "Noted", payload: {} }] }),
          Effect.ignore(sql`SELECT 1 / 0`)
        )
        const error = yield* Effect.flip(PgTransaction.withTransaction(body))
        assert.strictEqual(error._tag, "StoreError")
        if (error._tag === "StoreError") {
          assert.strictEqual(error.code, "25P02")
          assert.isTrue(error.retryable)
        }
        assert.strictEqual(yield* store.streamVersion({ streamType, streamId: "audit" }), 0)
      }))

    it.effect("PgTransaction types a COMMIT on a lost connection (raw sql.withTransaction dies)", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const sql = yield* SqlClient.SqlClient
        const streamType = unique("Lost")
        // Ends this transaction's backend from another connection, so the COMMIT that follows has no server.
        const killOwnBackend = Effect.gen(function*() {
          const [{ pid }] = yield* sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`
          yield* outsidePool(sql`SELECT pg_terminate_backend(${pid})`)
          yield* Effect.sleep("100 millis")
        })
        const body = Effect.zipRight(
          store.append({ streamType, streamId: "s", events: [{ type: "Lost", payload: {} }] }),
          killOwnBackend
        )
        const raw = yield* Effect.exit(sql.withTransaction(body))
        assert.isTrue(raw._tag === "Failure" && Cause.isDie(raw.cause), "raw @effect/sql turns it into a defect")

        const typed = yield* Effect.flip(PgTransaction.withTransaction(body))
        assert.strictEqual(typed._tag, "StoreError")
        if (typed._tag === "StoreError") {
          assert.strictEqual(typed.operation, "commit")
          assert.isFalse(typed.retryable, "the outcome of a COMMIT on a lost connection is unknown")
        }
        // A body that fails after losing its connection gets its own failure back, not a ROLLBACK defect.
        const failing = Effect.zipRight(body, Effect.fail("mine" as const))
        assert.strictEqual(yield* Effect.flip(PgTransaction.withTransaction(failing)), "mine")
        // Nothing committed: the kill landed before any COMMIT.
        assert.strictEqual(yield* store.streamVersion({ streamType, streamId: "s" }), 0)
      }))

    it.effect(
      "12 writers, multi-stream caller transactions with sleeps and rollbacks: a live subscriber sees each stream in order",
      () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const streamType = unique("Mixed")
          const streamIds = Array.from({ length: 6 }, (_, i) => `s${i}`)
          const writers = 12
          const transactionsPerWriter = 25
          const committed = new Set<string>()
          const rolledBack = new Set<string>()
          let conflicts = 0
          const delivered: Array<RecordedEvent.RecordedEvent> = []
          const subscriber = yield* Subscription.stream({ streamTypes: [streamType], pollInterval: "10 millis" }).pipe(
            Stream.runForEach((event) => Effect.sync(() => delivered.push(event))),
            Effect.provide(FeedNotifier.layerPolling),
            Effect.fork
          )
          // Two or three shared streams per transaction, taken in a fixed order as a careful application does (in
          // random order they deadlock, which PostgreSQL resolves after a second; that is not what this test is about).
          const pickStreams = () =>
            [...streamIds].sort(() => Math.random() - 0.5).slice(0, 2 + Math.floor(Math.random() * 2)).sort()
          const unitOfWork = (w: number) =>
            Effect.gen(function*() {
              const ids: Array<string> = []
              const write = (streamId: string) => {
                const eventId = crypto.randomUUID()
                ids.push(eventId)
                return store.append({ streamType, streamId, events: [{ type: "Wrote", payload: { w }, eventId }] })
              }
              // Half the transactions write something of their own first, so they hold an older transaction id.
              if (Math.random() < 0.5) yield* write(`own-${w}`)
              for (const streamId of pickStreams()) {
                yield* Effect.sleep(Math.floor(Math.random() * 4))
                yield* write(streamId)
              }
              if (Math.random() < 0.1) {
                for (const id of ids) rolledBack.add(id)
                return yield* Effect.fail("rollback" as const)
              }
              return ids
            }).pipe(
              Effect.tapError((e) =>
                Effect.sync(() => e !== "rollback" && e._tag === "ConcurrencyConflict" && conflicts++)
              )
            )
          yield* Effect.forEach(
            Array.from({ length: writers }, (_, w) => w),
            (w) =>
              Effect.forEach(
                Array.from({ length: transactionsPerWriter }),
                () =>
                  PgTransaction.withTransaction(unitOfWork(w), { retry: Schedule.recurs(100) }).pipe(
                    Effect.tap((ids) => Effect.sync(() => ids.forEach((id) => committed.add(id)))),
                    Effect.catchIf((e) => e === "rollback", () => Effect.void)
                  ),
                { discard: true }
              ),
            { concurrency: "unbounded", discard: true }
          )
          yield* Effect.sync(() => delivered.length).pipe(
            Effect.repeat({ until: (n) => n >= committed.size, schedule: Schedule.spaced("20 millis") }),
            Effect.timeout("60 seconds")
          )
          yield* Effect.sleep("200 millis") // anything extra (a duplicate, a rolled-back event) would arrive by now
          yield* Fiber.interrupt(subscriber)

          // Every committed event exactly once, nothing rolled back, and per stream the versions 1, 2, 3, ...
          const deliveredIds = delivered.map((e) => e.eventId)
          assert.strictEqual(new Set(deliveredIds).size, deliveredIds.length, "no event delivered twice")
          assert.deepStrictEqual(new Set(deliveredIds), committed)
          assert.isTrue(deliveredIds.every((id) => !rolledBack.has(id)))
          const allStreams = [...streamIds, ...Array.from({ length: writers }, (_, w) => `own-${w}`)]
          for (const streamId of allStreams) {
            const versions = delivered.filter((e) => e.streamId === streamId).map((e) => e.version)
            assert.deepStrictEqual(versions, Array.from({ length: versions.length }, (_, i) => i + 1), streamId)
          }
          // The outbox, written in the same transactions, publishes each stream in version order too.
          const published = yield* Effect.gen(function*() {
            while ((yield* OutboxRelay.processBatch({ relayId: "order-test", batchSize: 500 })) > 0) {
              // drain
            }
            return (yield* Effect.flatMap(OutboxPublisher.Memory, (m) => m.published)).filter((m) =>
              m.streamType === streamType
            )
          }).pipe(Effect.provide(OutboxPublisher.layerMemory))
          assert.deepStrictEqual(new Set(published.map((m) => m.eventId)), committed)
          for (const streamId of allStreams) {
            const versions = published.filter((m) => m.streamId === streamId).map((m) => m.version)
            assert.deepStrictEqual(versions, Array.from({ length: versions.length }, (_, i) => i + 1), streamId)
          }
          // The race really happened: some transactions were refused and retried.
          assert.isAbove(conflicts, 0)
          yield* Effect.logInfo(
            `${committed.size} events committed, ${rolledBack.size} rolled back, ${conflicts} retried`
          )
        }),
      { timeout: 120_000 }
    )
  }
)

describe("migration 0005 on a database built by the previous schema", () => {
  it.live("keeps every event and number, records each stream's last transaction, and guards the order from then on", () =>
    Effect.gen(function*() {
      const database = yield* PgTest.freshDatabase({ migrate: false })
      const admin = yield* Effect.map(
        Layer.build(PgDatabase.layer({ url: database.adminUrl, maxConnections: 2 })),
        Context.get(PgClient.PgClient)
      )
      // 0001-0004 as the previous release applied them, then appends through its append_events.
      for (const file of embedded.filter((m) => m.id <= 4)) {
        yield* admin.unsafe(PgMigrations.render(file.sql, "eventfold"))
      }
      const oldAppend = (streamId: string, n: number) =>
        admin`SELECT status FROM eventfold.append_events('Account', ${streamId}, 'any', 0, false,
          ${Array.from({ length: n }, () => crypto.randomUUID())}::uuid[], ${
          Array.from({ length: n }, () => "Old")
        }::text[],
          ${Array.from({ length: n }, () => 1)}::integer[], ${
          Array.from({ length: n }, (_, i) => JSON.stringify({ i }))
        }::jsonb[],
          ${Array.from({ length: n }, () => "{}")}::jsonb[], false, false)`
      yield* oldAppend("a", 3)
      yield* oldAppend("b", 2)
      yield* oldAppend("a", 1)
      const before = yield* admin<
        { stream_id: string; version: number; global_position: string; transaction_id: string }
      >`
        SELECT stream_id, version, global_position::text, transaction_id::text FROM eventfold.events ORDER BY global_position`

      yield* PgMigrations.run().pipe(Effect.provideService(SqlClient.SqlClient, admin))

      const after = yield* admin<
        { stream_id: string; version: number; global_position: string; transaction_id: string }
      >`
        SELECT stream_id, version, global_position::text, transaction_id::text FROM eventfold.events ORDER BY global_position`
      assert.deepStrictEqual(after, before)
      const streams = yield* admin<{ stream_id: string; version: number; last: string }>`
        SELECT stream_id, version, last_transaction_id::text AS last FROM eventfold.streams ORDER BY stream_id`
      const lastOf = (id: string) => before.filter((e) => e.stream_id === id).at(-1)!.transaction_id
      assert.deepStrictEqual(streams, [
        { stream_id: "a", version: 4, last: lastOf("a") },
        { stream_id: "b", version: 2, last: lastOf("b") }
      ])

      // From now on the guard holds: a transaction that wrote before stream a's next append committed is refused.
      const store = yield* PgEventStore.make().pipe(Effect.provideService(SqlClient.SqlClient, admin))
      const wroteFirst = yield* Deferred.make<void>()
      const otherCommitted = yield* Deferred.make<void>()
      const older = yield* admin.withTransaction(Effect.gen(function*() {
        yield* store.append({ streamType: "Account", streamId: "b", events: [{ type: "New", payload: {} }] })
        yield* Deferred.succeed(wroteFirst, undefined)
        yield* Deferred.await(otherCommitted)
        return yield* store.append({ streamType: "Account", streamId: "a", events: [{ type: "New", payload: {} }] })
      })).pipe(Effect.flip, Effect.fork)
      yield* Deferred.await(wroteFirst)
      yield* store.append({ streamType: "Account", streamId: "a", events: [{ type: "New", payload: {} }] })
      yield* Deferred.succeed(otherCommitted, undefined)
      const refused = yield* Fiber.join(older)
      assert.isTrue(refused._tag === "ConcurrencyConflict" && refused.reason === "transaction-order")
      assert.strictEqual(yield* store.streamVersion({ streamType: "Account", streamId: "a" }), 5)
    }).pipe(Effect.scoped))
})
