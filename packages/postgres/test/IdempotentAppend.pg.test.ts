// Appends with caller-supplied event ids (migration 0012): a fresh append pays one index probe, and every outcome of
// the retry check stays as it was. A retry waiting on the first attempt's stream lock resolves to its result (or
// writes, if the first rolled back); an id held anywhere in a batch is a 'duplicate' status that leaves the caller's
// transaction usable.
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, layer } from "@effect/vitest"
import { EventStore, ExpectedVersion } from "@eventfold/core"
import * as EventId from "@eventfold/core/EventId"
import { PgTest } from "@eventfold/postgres"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"

const unique = (prefix: string) => `${prefix}-${crypto.randomUUID()}`

const paid = (eventId: string, amount = 1) => ({ type: "Paid", payload: { amount }, eventId })

/** Runs an effect on a pooled connection of its own, even inside a transaction. */
const outsideTransaction = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
  Effect.mapInputContext(
    effect,
    (context: Context.Context<never>) => Context.omit(SqlClient.TransactionConnection)(context)
  )

/** Waits until a session of this database waits for an advisory lock (the stream's append lock). */
const someoneWaitsForTheStreamLock = PgTest.asAdmin(
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ readonly waiting: number }>`
      SELECT count(*)::integer AS waiting FROM pg_locks l JOIN pg_database d ON d.oid = l.database
       WHERE d.datname = current_database() AND l.locktype = 'advisory' AND NOT l.granted`)
).pipe(
  Effect.filterOrFail((rows) => (rows[0]?.waiting ?? 0) > 0, () => "not yet" as const),
  Effect.retry({ while: (e) => e === "not yet", schedule: Schedule.spaced("10 millis") }),
  Effect.timeout("20 seconds")
)

/**
 * The first attempt appends in a transaction that stays open; the retry (standalone, same ids) waits on the stream's
 * append lock; then the first attempt commits or rolls back. Returns both outcomes.
 */
const retryBehindOpenAttempt = (stream: EventStore.StreamRef, ids: ReadonlyArray<string>, commit: boolean) =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const sql = yield* SqlClient.SqlClient
    const appended = yield* Deferred.make<EventStore.AppendResult>()
    const release = yield* Deferred.make<void>()
    const events = ids.map((id, i) => paid(id, i + 1))
    const first = yield* sql.withTransaction(Effect.gen(function*() {
      const result = yield* store.append({ ...stream, events, expectedVersion: ExpectedVersion.NoStream })
      yield* Deferred.succeed(appended, result)
      yield* Deferred.await(release)
      if (!commit) return yield* Effect.fail("rolled back" as const)
      return result
    })).pipe(Effect.either, Effect.fork)
    const firstResult = yield* Deferred.await(appended)
    const retry = yield* outsideTransaction(
      store.append({ ...stream, events, expectedVersion: ExpectedVersion.NoStream })
    ).pipe(Effect.fork)
    yield* someoneWaitsForTheStreamLock
    yield* Deferred.succeed(release, undefined)
    return { first: yield* Fiber.join(first), firstResult, retry: yield* Fiber.join(retry) }
  })

layer(PgTest.layerEventStore(), { excludeTestServices: true, timeout: "120 seconds" })(
  `idempotent appends (${PgTest.serverLabel()})`,
  (it) => {
    it.effect("a retry of an older append, with v4 or v7 ids, returns its result after other appends", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        for (const make of [() => crypto.randomUUID(), EventId.unsafeMake]) {
          const stream = { streamType: unique("Idem"), streamId: "s" }
          const ids = [make(), make(), make()]
          const first = yield* store.append({ ...stream, events: ids.map((id, i) => paid(id, i)) })
          yield* store.append({ ...stream, events: [paid(make(), 9)] })
          const retry = yield* store.append({ ...stream, events: ids.map((id, i) => paid(id, i)) })
          assert.isFalse(first.idempotent)
          assert.isTrue(retry.idempotent)
          assert.strictEqual(retry.version, 3)
          assert.deepStrictEqual(retry.position, first.position)
          assert.strictEqual(yield* store.streamVersion(stream), 4)
        }
      }))

    it.effect("a retry waiting on the first attempt's lock returns the first result once it commits", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const stream = { streamType: unique("Race"), streamId: "s" }
        const ids = [EventId.unsafeMake(), EventId.unsafeMake()]
        const { first, firstResult, retry } = yield* retryBehindOpenAttempt(stream, ids, true)
        assert.isTrue(Either.isRight(first))
        assert.isFalse(firstResult.idempotent)
        assert.isTrue(retry.idempotent)
        assert.strictEqual(retry.version, 2)
        assert.deepStrictEqual(retry.position, firstResult.position)
        const events = yield* store.readStream(stream)
        assert.deepStrictEqual(events.map((e) => e.eventId), ids)
      }))

    it.effect("a retry waiting on the first attempt's lock writes the events once it rolls back", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const stream = { streamType: unique("Race"), streamId: "s" }
        const ids = [crypto.randomUUID()]
        const { first, retry } = yield* retryBehindOpenAttempt(stream, ids, false)
        assert.deepStrictEqual(first, Either.left("rolled back" as const))
        assert.isFalse(retry.idempotent)
        assert.strictEqual(retry.version, 1)
        const events = yield* store.readStream(stream)
        assert.deepStrictEqual(events.map((e) => e.eventId), ids)
      }))

    it.effect("16 concurrent sends of one append write it once", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const stream = { streamType: unique("Race"), streamId: "s" }
        const events = [paid(EventId.unsafeMake(), 1), paid(EventId.unsafeMake(), 2)]
        const results = yield* Effect.forEach(
          Array.from({ length: 16 }, () => 0),
          () => store.append({ ...stream, events }),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(results.filter((r) => !r.idempotent).length, 1)
        assert.isTrue(results.every((r) => r.version === 2))
        assert.strictEqual(yield* store.streamVersion(stream), 2)
      }))

    it.effect("an id held by another stream, anywhere in the append, is a duplicate the caller's transaction survives", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const sql = yield* SqlClient.SqlClient
        const streamType = unique("Held")
        const taken = EventId.unsafeMake()
        yield* store.append({ streamType, streamId: "elsewhere", events: [paid(taken)] })
        const fresh = [EventId.unsafeMake(), EventId.unsafeMake()]
        const after = yield* sql.withTransaction(Effect.gen(function*() {
          const error = yield* Effect.flip(
            store.append({ streamType, streamId: "s", events: [paid(fresh[0]!), paid(fresh[1]!), paid(taken)] })
          )
          // Had the id reached the unique index, PostgreSQL would have aborted the transaction here.
          const next = yield* store.append({ streamType, streamId: "s", events: [paid(EventId.unsafeMake(), 7)] })
          return { error, next }
        }))
        assert.strictEqual(after.error._tag, "DuplicateEvent")
        if (after.error._tag === "DuplicateEvent") assert.strictEqual(after.error.eventId, taken)
        assert.strictEqual(after.next.version, 1)
        assert.isFalse(yield* store.eventExists(fresh[0]!))
        assert.strictEqual(yield* store.streamVersion({ streamType, streamId: "s" }), 1)
      }))

    it.effect("a retry that overlaps the first append only in part, or changes a payload, is a DuplicateEvent", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const stream = { streamType: unique("Overlap"), streamId: "s" }
        const ids = [EventId.unsafeMake(), EventId.unsafeMake()]
        yield* store.append({ ...stream, events: ids.map((id, i) => paid(id, i)) })
        const newer = EventId.unsafeMake()
        const partial = yield* Effect.flip(store.append({ ...stream, events: [paid(ids[1]!, 1), paid(newer, 2)] }))
        assert.strictEqual(partial._tag, "DuplicateEvent")
        const changed = yield* Effect.flip(store.append({ ...stream, events: ids.map((id, i) => paid(id, i + 5)) }))
        assert.strictEqual(changed._tag, "DuplicateEvent")
        if (changed._tag === "DuplicateEvent") assert.strictEqual(changed.eventId, ids[0])
        assert.strictEqual(yield* store.streamVersion(stream), 2)
        assert.isFalse(yield* store.eventExists(newer))
      }))
  }
)
