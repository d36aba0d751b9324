// The global feed never skips: proofs on real connections, with the races forced into a fixed order.
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, layer } from "@effect/vitest"
import { EventStore, ExpectedVersion, Position, RecordedEvent } from "@eventfold/core"
import { PgTest } from "@eventfold/postgres"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"

const unique = (prefix: string) => `${prefix}-${crypto.randomUUID()}`

const event = (type: string, payload: unknown = {}) => ({ type, payload })

/** Reads the feed for one stream type from `after`, retrying until `done` holds (other sessions on the server can
 * hold the horizon back for a moment; they may delay the feed, never reorder it). */
const readUntil = (
  streamType: string,
  done: (events: ReadonlyArray<RecordedEvent.RecordedEvent>) => boolean,
  after: Position.Position = Position.start
) =>
  Effect.flatMap(
    EventStore.EventStore,
    (store) =>
      store.readAll({ streamTypes: [streamType], after, limit: 10_000 }).pipe(
        Effect.filterOrFail(done, () => "not yet" as const),
        Effect.retry({ schedule: Schedule.spaced("20 millis"), while: (e) => e === "not yet" }),
        Effect.timeout("20 seconds")
      )
  )

/** Appends in a transaction that stays open until `end(commit)` is called; returns once the append is done. */
const appendInOpenTransaction = (streamType: string, streamId: string, type: string) =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const sql = yield* SqlClient.SqlClient
    const appended = yield* Deferred.make<void>()
    const decision = yield* Deferred.make<boolean>()
    const fiber = yield* sql.withTransaction(
      Effect.gen(function*() {
        yield* store.append({ streamType, streamId, events: [event(type)] })
        yield* Deferred.succeed(appended, undefined)
        if (!(yield* Deferred.await(decision))) return yield* Effect.fail("rolled back" as const)
      })
    ).pipe(Effect.fork)
    yield* Deferred.await(appended)
    /** Commits (true) or rolls back (false) the transaction and waits for it to end. */
    const end = (commit: boolean) => Effect.zipRight(Deferred.succeed(decision, commit), Fiber.await(fiber))
    return { end }
  })

layer(PgTest.layerEventStore(), { excludeTestServices: true, timeout: "120 seconds" })(
  `global feed ordering (${PgTest.serverLabel()})`,
  (it) => {
    it.effect("an open transaction holds back later commits until it ends, then A is delivered before B", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const streamType = unique("Held")
        // Transaction A: append, then stay open until told to commit.
        const txA = yield* appendInOpenTransaction(streamType, "a", "A")

        // B commits while A is open; it has the larger global position and must not be visible yet.
        const b = yield* store.append({ streamType, streamId: "b", events: [event("B")] })
        assert.isFalse(b.idempotent)
        const whileOpen = yield* store.readAll({ streamTypes: [streamType] })
        assert.deepStrictEqual(whileOpen, [])
        // Not by position alone either: a reader that checkpointed "nothing yet" must not jump past A.
        const whileOpenAgain = yield* store.readAll({ streamTypes: [streamType] })
        assert.deepStrictEqual(whileOpenAgain, [])

        assert.strictEqual((yield* txA.end(true))._tag, "Success")
        const feed = yield* readUntil(streamType, (events) => events.length >= 2)
        assert.deepStrictEqual(feed.map((e) => e.type), ["A", "B"])
        // A was assigned its position first, but the order that matters is the feed order, which puts A's transaction first.
        assert.isTrue(Position.isAfter(RecordedEvent.position(feed[1]!), RecordedEvent.position(feed[0]!)))
      }))

    it.effect("a checkpoint taken before A committed still delivers A afterwards (no skip by position)", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const streamType = unique("Checkpoint")
        yield* store.append({ streamType, streamId: "first", events: [event("First")] })
        const [first] = yield* readUntil(streamType, (events) => events.length >= 1)
        const checkpoint = RecordedEvent.position(first!)

        const txA = yield* appendInOpenTransaction(streamType, "a", "A")
        yield* store.append({ streamType, streamId: "b", events: [event("B")] })
        assert.deepStrictEqual(yield* store.readAll({ streamTypes: [streamType], after: checkpoint }), [])
        assert.strictEqual((yield* txA.end(true))._tag, "Success")
        const rest = yield* readUntil(streamType, (events) => events.length >= 2, checkpoint)
        assert.deepStrictEqual(rest.map((e) => e.type), ["A", "B"])
      }))

    it.effect("a rolled-back append neither stalls nor skips the feed", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const streamType = unique("Rollback")
        yield* store.append({ streamType, streamId: "s", events: [event("Before")] })
        const doomed = yield* appendInOpenTransaction(streamType, "s", "RolledBack")
        yield* store.append({ streamType, streamId: "other", events: [event("During")] })
        assert.strictEqual((yield* doomed.end(false))._tag, "Failure")
        yield* store.append({ streamType, streamId: "s", events: [event("After")] })
        const feed = yield* readUntil(streamType, (events) => events.length >= 3)
        assert.deepStrictEqual(feed.map((e) => e.type), ["Before", "During", "After"])
        // The rolled-back version number was never used: the stream continues at 2.
        const stream = yield* store.readStream({ streamType, streamId: "s" })
        assert.deepStrictEqual(stream.map((e) => [e.version, e.type]), [[1, "Before"], [2, "After"]])
      }))

    it.effect("8 concurrent writers x 1,000 events with a live reader: every event is read exactly once", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const streamType = unique("Busy")
        const writers = 8
        const perWriter = 1000
        let stop = false
        const seen: Array<RecordedEvent.RecordedEvent> = []
        const reader = yield* Effect.gen(function*() {
          let after = Position.start
          while (seen.length < writers * perWriter) {
            const page = yield* store.readAll({ streamTypes: [streamType], after, limit: 500 })
            if (page.length === 0) {
              if (stop) yield* Effect.sleep("20 millis")
              else yield* Effect.sleep("2 millis")
              continue
            }
            seen.push(...page)
            after = RecordedEvent.position(page[page.length - 1]!)
          }
        }).pipe(Effect.timeout("90 seconds"), Effect.fork)

        yield* Effect.forEach(
          Array.from({ length: writers }, (_, w) => w),
          (w) =>
            Effect.gen(function*() {
              let version = 0
              let i = 0
              while (i < perWriter) {
                // Mixed batch sizes, two streams per writer, exact expected versions.
                const size = Math.min(1 + ((i + w) % 3), perWriter - i)
                const streamId = `w${w}`
                const result = yield* store.append({
                  streamType,
                  streamId,
                  expectedVersion: ExpectedVersion.Exact(version),
                  events: Array.from({ length: size }, (_, k) => event("Wrote", { w, n: i + k }))
                })
                version = result.version
                i += size
              }
            }),
          { concurrency: "unbounded", discard: true }
        )
        stop = true
        yield* Fiber.join(reader)

        assert.strictEqual(seen.length, writers * perWriter)
        assert.strictEqual(new Set(seen.map((e) => e.eventId)).size, writers * perWriter)
        for (let i = 1; i < seen.length; i++) {
          assert.isTrue(Position.isAfter(RecordedEvent.position(seen[i]!), RecordedEvent.position(seen[i - 1]!)))
        }
        // Per stream, versions arrive 1, 2, 3, ... with nothing missing or repeated.
        for (let w = 0; w < writers; w++) {
          const versions = seen.filter((e) => e.streamId === `w${w}`).map((e) => e.version)
          assert.deepStrictEqual(versions, Array.from({ length: perWriter }, (_, i) => i + 1))
        }
        // And the reader saw exactly what the table holds.
        const all = yield* store.readAll({ streamTypes: [streamType], limit: 100_000 })
        assert.deepStrictEqual(all.map((e) => e.eventId), seen.map((e) => e.eventId))
      }))
  }
)
