/**
 * The behaviour every `Outbox` implementation must have, with the relay running on it, as one exported test suite:
 * `OutboxContract.suite("memory", EventStore.layerMemory.pipe(Layer.provideMerge(Outbox.layerMemory)))`.
 *
 * @since 0.1.0
 */
import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as EventStore from "./EventStore.js"
import * as ExpectedVersion from "./ExpectedVersion.js"
import * as Outbox from "./Outbox.js"
import * as OutboxPublisher from "./OutboxPublisher.js"
import * as OutboxRelay from "./OutboxRelay.js"

const appendN = (streamType: string, streamId: string, count: number) =>
  Effect.flatMap(EventStore.EventStore, (store) =>
    store.append({
      streamType,
      streamId,
      events: Array.from({ length: count }, (_, i) => ({ type: "Numbered", payload: { i: i + 1 } }))
    }))

const fastRetries = Schedule.spaced("10 millis").pipe(Schedule.intersect(Schedule.recurs(4)))

/**
 * Registers the contract suite. Every test builds the Layer afresh (a fresh database for PostgreSQL), because
 * claims range over the whole outbox.
 *
 * @since 0.1.0
 * @category suites
 */
export const suite = <E>(name: string, outboxLayer: Layer.Layer<EventStore.EventStore | Outbox.Outbox, E>): void => {
  describe(`Outbox contract: ${name}`, () => {
    const withLayer = <A, E2>(
      body: Effect.Effect<
        A,
        E2,
        EventStore.EventStore | Outbox.Outbox | OutboxPublisher.OutboxPublisher | OutboxPublisher.Memory
      >
    ) => Effect.provide(body, Layer.merge(outboxLayer, OutboxPublisher.layerMemory))

    it.live(
      "an append writes one pending row per event, in the same transaction",
      () =>
        withLayer(Effect.gen(function*() {
          const outbox = yield* Outbox.Outbox
          const result = yield* appendN("Order", "o-1", 3)
          for (const [i, eventId] of result.eventIds.entries()) {
            const row = Option.getOrThrow(yield* outbox.get(eventId))
            assert.strictEqual(row.status, "pending")
            assert.strictEqual(row.streamType, "Order")
            assert.strictEqual(row.streamId, "o-1")
            assert.strictEqual(row.version, i + 1)
            assert.strictEqual(row.type, "Numbered")
            assert.deepStrictEqual(row.payload, { i: i + 1 })
            assert.strictEqual(row.retryCount, 0)
            assert.isNull(row.publishedAt)
          }
          const stats = yield* outbox.stats
          assert.strictEqual(stats.pending, 3)
          assert.strictEqual(stats.failed, 0)
          assert.isTrue(Option.isSome(stats.oldestPendingAge))
        })),
      60_000
    )

    it.live("a rejected append writes no rows", () =>
      withLayer(Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const outbox = yield* Outbox.Outbox
        yield* appendN("Order", "o-1", 1)
        const eventId = crypto.randomUUID()
        const conflict = yield* Effect.either(store.append({
          streamType: "Order",
          streamId: "o-1",
          expectedVersion: ExpectedVersion.NoStream,
          events: [{ type: "Numbered", payload: {}, eventId }]
        }))
        assert.isTrue(Either.isLeft(conflict))
        assert.isTrue(Option.isNone(yield* outbox.get(eventId)))
        assert.strictEqual((yield* outbox.stats).pending, 1)
      })), 60_000)

    it.live(
      "claims take each stream as a contiguous run from its head; a second relay cannot overtake",
      () =>
        withLayer(Effect.gen(function*() {
          const outbox = yield* Outbox.Outbox
          yield* appendN("Order", "a", 3)
          yield* appendN("Order", "b", 2)
          const first = yield* outbox.claim({ relayId: "r1", limit: 3, lease: "1 minute" })
          // Round-robin over streams keeps each stream's part a prefix: a1, a2, b1.
          assert.deepStrictEqual(first.map((e) => `${e.streamId}${e.version}`), ["a1", "a2", "b1"])
          const second = yield* outbox.claim({ relayId: "r2", limit: 10, lease: "1 minute" })
          assert.deepStrictEqual(second, [], "a3 and b2 wait behind rows r1 holds")
          // r2 may not mark r1's rows.
          assert.strictEqual(yield* outbox.markPublished("r2", first.map((e) => e.id)), 0)
          assert.strictEqual(yield* outbox.markPublished("r1", first.map((e) => e.id)), 3)
          const third = yield* outbox.claim({ relayId: "r2", limit: 10, lease: "1 minute" })
          assert.deepStrictEqual(third.map((e) => `${e.streamId}${e.version}`), ["a3", "b2"])
          const published = Option.getOrThrow(yield* outbox.get(first[0]!.eventId))
          assert.strictEqual(published.status, "published")
          assert.isNotNull(published.publishedAt)
        })),
      60_000
    )

    it.live("an expired lease lets another relay take the rows over", () =>
      withLayer(Effect.gen(function*() {
        const outbox = yield* Outbox.Outbox
        yield* appendN("Order", "a", 2)
        const first = yield* outbox.claim({ relayId: "dead", limit: 10, lease: "200 millis" })
        assert.strictEqual(first.length, 2)
        assert.deepStrictEqual(yield* outbox.claim({ relayId: "r2", limit: 10, lease: "1 minute" }), [])
        yield* Effect.sleep("400 millis")
        const taken = yield* outbox.claim({ relayId: "r2", limit: 10, lease: "1 minute" })
        assert.deepStrictEqual(taken.map((e) => e.version), [1, 2])
        assert.strictEqual(yield* outbox.markPublished("dead", first.map((e) => e.id)), 0, "the dead relay lost it")
      })), 60_000)

    it.live(
      "a relay id with a NUL or a lone surrogate fails the relay at once with InvalidInput",
      () =>
        withLayer(Effect.gen(function*() {
          const outbox = yield* Outbox.Outbox
          yield* appendN("Order", "a", 1)
          for (const relayId of ["relay-\u0000", "relay-\ud800", "relay-\udfff", `relay-${"中".repeat(1000)}`]) {
            // Before the fix PostgreSQL failed every claim with a StoreError that the relay logged and retried forever.
            const timedOut = () => `${JSON.stringify(relayId).slice(0, 20)} did not fail at once`
            const batch = yield* OutboxRelay.processBatch({ relayId }).pipe(Effect.flip)
            assert.strictEqual(batch._tag, "InvalidInput")
            const run = yield* OutboxRelay.run({ relayId, pollInterval: "20 millis" }).pipe(
              Effect.flip,
              Effect.timeoutFail({ duration: "3 seconds", onTimeout: timedOut })
            )
            assert.strictEqual(run._tag, "InvalidInput")
            const built = yield* Layer.build(OutboxRelay.layer({ relayId })).pipe(Effect.scoped, Effect.flip)
            assert.strictEqual(built._tag, "InvalidInput")
          }
          assert.strictEqual((yield* outbox.stats).pending, 1, "no row was claimed or published")
        })),
      60_000
    )

    it.live(
      "a publish error with a NUL or a lone surrogate is recorded, as U+FFFD, instead of failing",
      () =>
        withLayer(Effect.gen(function*() {
          const outbox = yield* Outbox.Outbox
          const { eventIds } = yield* appendN("Order", "a", 1)
          const [entry] = yield* outbox.claim({ relayId: "r1", limit: 10, lease: "1 minute" })
          assert.isTrue(yield* outbox.recordFailure("r1", entry!.id, "broker said \u0000 and \ud800", Option.none()))
          const row = Option.getOrThrow(yield* outbox.get(eventIds[0]!))
          assert.strictEqual(row.status, "failed")
          assert.strictEqual(row.lastError, "broker said \ufffd and \ufffd")
        })),
      60_000
    )

    it.live(
      "renew extends a held lease; a relay that does not hold the rows cannot renew them",
      () =>
        withLayer(Effect.gen(function*() {
          const outbox = yield* Outbox.Outbox
          yield* appendN("Order", "a", 2)
          const held = yield* outbox.claim({ relayId: "r1", limit: 10, lease: "300 millis" })
          assert.strictEqual(yield* outbox.renew("r2", held.map((e) => e.id), "1 minute"), 0)
          assert.strictEqual(yield* outbox.renew("r1", held.map((e) => e.id), "1 minute"), 2)
          yield* Effect.sleep("500 millis")
          assert.deepStrictEqual(yield* outbox.claim({ relayId: "r2", limit: 10, lease: "1 minute" }), [])
        })),
      60_000
    )

    it.live(
      "a batch slower than its lease keeps its claim: no second relay overtakes or duplicates",
      () =>
        withLayer(
          Effect.gen(function*() {
            const outbox = yield* Outbox.Outbox
            const { eventIds } = yield* appendN("Order", "slow", 6)
            const log: Array<{ readonly relay: string; readonly eventId: string }> = []
            const slow = (relay: string): OutboxPublisher.OutboxPublisher["Type"] => ({
              publish: (message) =>
                Effect.sleep("150 millis").pipe(
                  Effect.zipRight(Effect.sync(() => log.push({ relay, eventId: message.eventId })))
                )
            })
            const relay = (relayId: string) =>
              OutboxRelay.run({ relayId, lease: "300 millis", pollInterval: "20 millis" }).pipe(
                Effect.provideService(OutboxPublisher.OutboxPublisher, slow(relayId)),
                Effect.forkScoped
              )
            yield* relay("a")
            yield* relay("b")
            yield* Effect.repeat(outbox.stats, {
              until: (stats) => stats.pending === 0,
              schedule: Schedule.spaced("20 millis")
            }).pipe(Effect.timeout("20 seconds"))
            // 6 x 150 ms is three leases long; without renewal the other relay would take the stream over.
            assert.deepStrictEqual(log.map((e) => e.eventId), eventIds)
          }).pipe(Effect.scoped)
        ),
      60_000
    )

    it.live(
      "a recorded failure delays the row; a dead letter blocks its stream until retryFailed",
      () =>
        withLayer(Effect.gen(function*() {
          const outbox = yield* Outbox.Outbox
          yield* appendN("Order", "a", 2)
          yield* appendN("Order", "b", 1)
          const [a1, a2, b1] = yield* outbox.claim({ relayId: "r1", limit: 10, lease: "1 minute" })
          assert.isTrue(yield* outbox.recordFailure("r1", a1!.id, "broker down", Option.some(Duration.hours(1))))
          yield* outbox.release("r1", [a2!.id])
          assert.strictEqual(yield* outbox.markPublished("r1", [b1!.id]), 1)
          const delayed = Option.getOrThrow(yield* outbox.get(a1!.eventId))
          assert.strictEqual(delayed.status, "pending")
          assert.strictEqual(delayed.retryCount, 1)
          assert.strictEqual(delayed.lastError, "broker down")
          assert.isTrue(delayed.nextAttemptAt.getTime() > Date.now() + 30 * 60_000)
          assert.deepStrictEqual(yield* outbox.claim({ relayId: "r2", limit: 10, lease: "1 minute" }), [])

          yield* appendN("Order", "c", 1)
          const [c1] = yield* outbox.claim({ relayId: "r2", limit: 10, lease: "1 minute" })
          assert.strictEqual(c1!.streamId, "c")
          assert.isTrue(yield* outbox.recordFailure("r2", c1!.id, "poison", Option.none()))
          const dead = Option.getOrThrow(yield* outbox.get(c1!.eventId))
          assert.strictEqual(dead.status, "failed")
          assert.strictEqual(dead.lastError, "poison")
          const stats = yield* outbox.stats
          assert.strictEqual(stats.failed, 1)
          assert.strictEqual(stats.pending, 2)

          assert.strictEqual(yield* outbox.retryFailed({ streamType: "Order", streamId: "other" }), 0)
          assert.strictEqual(yield* outbox.retryFailed({ streamType: "Order" }), 1)
          const again = yield* outbox.claim({ relayId: "r3", limit: 10, lease: "1 minute" })
          assert.deepStrictEqual(again.map((e) => e.eventId), [c1!.eventId])
          assert.strictEqual(again[0]!.attempts, 0, "retryFailed starts a fresh retry count")
        })),
      60_000
    )

    it.live("cleanup deletes published rows past the retention only", () =>
      withLayer(Effect.gen(function*() {
        const outbox = yield* Outbox.Outbox
        const { eventIds } = yield* appendN("Order", "a", 2)
        const [a1] = yield* outbox.claim({ relayId: "r1", limit: 1, lease: "1 minute" })
        yield* outbox.markPublished("r1", [a1!.id])
        assert.strictEqual(yield* outbox.cleanup("1 hour"), 0)
        yield* Effect.sleep("50 millis")
        assert.strictEqual(yield* outbox.cleanup("10 millis"), 1)
        assert.isTrue(Option.isNone(yield* outbox.get(eventIds[0]!)))
        assert.isTrue(Option.isSome(yield* outbox.get(eventIds[1]!)), "pending rows are kept")
      })), 60_000)

    it.live("the relay publishes every event in stream order", () =>
      withLayer(Effect.gen(function*() {
        const memory = yield* OutboxPublisher.Memory
        const outbox = yield* Outbox.Outbox
        for (let s = 0; s < 5; s++) yield* appendN("Order", `s${s}`, 4)
        while ((yield* OutboxRelay.processBatch({ batchSize: 7 })) > 0) {
          // drain
        }
        const published = yield* memory.published
        assert.strictEqual(published.length, 20)
        for (let s = 0; s < 5; s++) {
          const versions = published.filter((m) => m.streamId === `s${s}`).map((m) => m.version)
          assert.deepStrictEqual(versions, [1, 2, 3, 4])
        }
        assert.strictEqual((yield* outbox.stats).pending, 0)
      })), 60_000)

    it.live(
      "a publisher that fails N times then succeeds: published after the retries, in order",
      () =>
        withLayer(
          Effect.gen(function*() {
            const memory = yield* OutboxPublisher.Memory
            const outbox = yield* Outbox.Outbox
            const { eventIds } = yield* appendN("Order", "a", 2)
            yield* memory.failNext(eventIds[0]!, 3, "timeout")
            yield* Effect.forkScoped(OutboxRelay.run({ pollInterval: "20 millis", retrySchedule: fastRetries }))
            yield* Effect.repeat(memory.published, {
              until: (all) => all.length >= 2,
              schedule: Schedule.spaced("20 millis")
            }).pipe(Effect.timeout("20 seconds"))
            assert.deepStrictEqual((yield* memory.published).map((m) => m.eventId), eventIds)
            // The relay marks its batch published after the publishes: wait for the mark, not only the delivery.
            const row = yield* outbox.get(eventIds[0]!).pipe(
              Effect.map(Option.getOrThrow),
              Effect.repeat({ until: (r) => r.status !== "pending", schedule: Schedule.spaced("20 millis") }),
              Effect.timeout("20 seconds"),
              Effect.zipRight(Effect.map(outbox.get(eventIds[0]!), Option.getOrThrow))
            )
            assert.strictEqual(row.status, "published")
            assert.strictEqual(row.retryCount, 3)
            assert.strictEqual(row.lastError, "timeout")
          }).pipe(Effect.scoped)
        ),
      60_000
    )

    it.live(
      "a permanent failure ends as failed with its error; the relay goes on with other streams",
      () =>
        withLayer(
          Effect.gen(function*() {
            const memory = yield* OutboxPublisher.Memory
            const outbox = yield* Outbox.Outbox
            const poisoned = yield* appendN("Order", "poisoned", 2)
            const healthy = yield* appendN("Order", "healthy", 2)
            yield* memory.failNext(poisoned.eventIds[0]!, Infinity, "schema rejected")
            yield* Effect.forkScoped(OutboxRelay.run({ pollInterval: "20 millis", retrySchedule: fastRetries }))
            yield* Effect.repeat(outbox.get(poisoned.eventIds[0]!), {
              until: (row) => Option.isSome(row) && row.value.status === "failed",
              schedule: Schedule.spaced("20 millis")
            }).pipe(Effect.timeout("20 seconds"))
            const dead = Option.getOrThrow(yield* outbox.get(poisoned.eventIds[0]!))
            assert.strictEqual(dead.lastError, "schema rejected")
            assert.strictEqual(dead.retryCount, 5, "the schedule allows 5 attempts")
            yield* Effect.repeat(memory.published, {
              until: (all) => all.length >= 2,
              schedule: Schedule.spaced("20 millis")
            }).pipe(Effect.timeout("20 seconds"))
            const published = yield* memory.published
            assert.deepStrictEqual(published.map((m) => m.eventId), healthy.eventIds)
            // The stream behind the dead letter waits; retryFailed (with a working broker) releases it in order.
            assert.strictEqual(Option.getOrThrow(yield* outbox.get(poisoned.eventIds[1]!)).status, "pending")
            yield* memory.failNext(poisoned.eventIds[0]!, 0)
            assert.strictEqual(yield* outbox.retryFailed(), 1)
            yield* Effect.repeat(memory.published, {
              until: (all) => all.length >= 4,
              schedule: Schedule.spaced("20 millis")
            }).pipe(Effect.timeout("20 seconds"))
            assert.deepStrictEqual(
              (yield* memory.published).slice(2).map((m) => m.eventId),
              poisoned.eventIds
            )
            assert.strictEqual((yield* OutboxRelay.refreshMetrics).failed, 0)
          }).pipe(Effect.scoped)
        ),
      60_000
    )
  })
}

/**
 * The behaviour of a stack assembled with the outbox off (`MemoryEventfold.layer()`, `PgEventfold.layer({ ... })`):
 * appends succeed, and a relay started against it stops at once with a non-retryable `StoreError` saying so, never
 * waiting for rows that cannot come.
 *
 * @since 0.2.0
 * @category suites
 */
export const suiteOff = <E>(name: string, stackLayer: Layer.Layer<EventStore.EventStore | Outbox.Outbox, E>): void => {
  describe(`Outbox contract, outbox off: ${name}`, () => {
    it.live("appends succeed, and a relay stops at once with a StoreError saying the outbox is off", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        yield* store.append({ streamType: "T", streamId: "1", events: [{ type: "E", payload: {} }] })
        const error = yield* OutboxRelay.run().pipe(
          Effect.provide(OutboxPublisher.layerMemory),
          Effect.flip,
          Effect.timeout("5 seconds")
        )
        assert.strictEqual(error._tag, "StoreError")
        assert.include(error.message, "the outbox is off")
        assert.isFalse(error._tag === "StoreError" && error.retryable)
      }).pipe(Effect.provide(stackLayer)))
  })
}
