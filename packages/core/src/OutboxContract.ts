/**
 * The behaviour every `Outbox` implementation must have, with the relay running on it, as one exported test suite:
 * `OutboxContract.suite("memory", EventStore.layerMemory.pipe(Layer.provideMerge(Outbox.layerMemory)))`.
 *
 * @since 0.1.0
 */
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
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
 * Counts the transactions that have written the outbox table so far, for a store that has transactions
 * (PostgreSQL). A suite Layer that also provides it gets one more check: that the relay commits once per batch, the
 * mark of a batch included.
 *
 * @since 0.4.0
 * @category suites
 */
export class OutboxTransactions extends Context.Tag("@eventfold/core/OutboxContract/OutboxTransactions")<
  OutboxTransactions,
  { readonly count: Effect.Effect<number> }
>() {}

/** The outbox calls that write, counted. */
interface Writes {
  claims: number
  nonEmptyClaims: number
  other: number
}

const countingWrites = (outbox: Outbox.Outbox["Type"], writes: Writes): Outbox.Outbox["Type"] => ({
  ...outbox,
  claim: (options) =>
    Effect.suspend(() => {
      writes.claims++
      return Effect.tap(outbox.claim(options), (entries) => {
        if (entries.length > 0) writes.nonEmptyClaims++
      })
    }),
  markPublished: (relayId, ids) => Effect.suspend(() => (writes.other++, outbox.markPublished(relayId, ids))),
  recordFailure: (relayId, id, error, retryIn) =>
    Effect.suspend(() => (writes.other++, outbox.recordFailure(relayId, id, error, retryIn))),
  renew: (relayId, ids, lease) => Effect.suspend(() => (writes.other++, outbox.renew(relayId, ids, lease))),
  release: (relayId, ids) => Effect.suspend(() => (writes.other++, outbox.release(relayId, ids)))
})

/** A publisher from `publish`, with or without `publishRun` (built on the same `publish`): the relay's two paths. */
const withRun = (
  publish: OutboxPublisher.OutboxPublisher["Type"]["publish"],
  run: boolean
): OutboxPublisher.OutboxPublisher["Type"] =>
  run
    ? {
      publish,
      publishRun: (messages, proceed) =>
        Effect.gen(function*() {
          const seconds: Array<number> = []
          for (let i = 0; i < messages.length; i++) {
            if (!proceed()) return { published: i, seconds }
            seconds.push(0)
            const outcome = yield* Effect.either(publish(messages[i]!))
            if (outcome._tag === "Left") return { published: i, failure: outcome.left, seconds }
          }
          return { published: messages.length, seconds }
        })
    }
    : { publish }

const label = (m: { readonly streamId: string; readonly version: number }) => `${m.streamId}${m.version}`

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
        // A lease long enough that the next statement always runs inside it, even on a loaded machine.
        const first = yield* outbox.claim({ relayId: "dead", limit: 10, lease: "2 seconds" })
        assert.strictEqual(first.length, 2)
        assert.deepStrictEqual(yield* outbox.claim({ relayId: "r2", limit: 10, lease: "1 minute" }), [])
        yield* Effect.sleep("2500 millis")
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
                Effect.sleep("600 millis").pipe(
                  Effect.zipRight(Effect.sync(() => log.push({ relay, eventId: message.eventId })))
                )
            })
            const relay = (relayId: string) =>
              // Renewals run every lease / 3: a lease of 2.5 publishes leaves room for a renewal late by a publish.
              OutboxRelay.run({ relayId, lease: "1500 millis", pollInterval: "20 millis" }).pipe(
                Effect.provideService(OutboxPublisher.OutboxPublisher, slow(relayId)),
                Effect.forkScoped
              )
            yield* relay("a")
            yield* relay("b")
            yield* Effect.repeat(outbox.stats, {
              until: (stats) => stats.pending === 0,
              schedule: Schedule.spaced("20 millis")
            }).pipe(Effect.timeout("20 seconds"))
            // 6 x 600 ms is more than two leases long; without renewal the other relay would take the stream over.
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

    it.live(
      "a claim marks the relay's previous batch published first, in the same step, and claims behind it",
      () =>
        withLayer(Effect.gen(function*() {
          const outbox = yield* Outbox.Outbox
          const { eventIds } = yield* appendN("Order", "a", 4)
          const first = yield* outbox.claim({ relayId: "r1", limit: 2, lease: "1 minute" })
          assert.deepStrictEqual(first.map(label), ["a1", "a2"])
          // Another relay cannot mark r1's rows through its claim, nor take the stream.
          const stranger = yield* outbox.claim({
            relayId: "r2",
            limit: 10,
            lease: "1 minute",
            markPublished: first.map((e) => e.id)
          })
          assert.deepStrictEqual(stranger, [])
          assert.strictEqual(Option.getOrThrow(yield* outbox.get(eventIds[0]!)).status, "pending")
          const next = yield* outbox.claim({
            relayId: "r1",
            limit: 10,
            lease: "1 minute",
            markPublished: first.map((e) => e.id)
          })
          assert.deepStrictEqual(next.map(label), ["a3", "a4"])
          for (const eventId of eventIds.slice(0, 2)) {
            const row = Option.getOrThrow(yield* outbox.get(eventId))
            assert.strictEqual(row.status, "published")
            assert.isNotNull(row.publishedAt)
          }
          assert.strictEqual((yield* outbox.stats).pending, 2)
        })),
      60_000
    )

    it.live(
      "a claim continues the streams of the relay's batch in flight, behind it, and only those it still holds",
      () =>
        withLayer(Effect.gen(function*() {
          const outbox = yield* Outbox.Outbox
          yield* appendN("Order", "a", 5)
          yield* appendN("Order", "c", 2)
          const first = yield* outbox.claim({ relayId: "r1", limit: 3, lease: "1 minute" })
          assert.deepStrictEqual(first.map(label), ["a1", "a2", "c1"])
          const inFlight = first.map((e) => e.id)
          // Without the in-flight rows, the held streams are skipped, by their holder as by anyone else.
          assert.deepStrictEqual(yield* outbox.claim({ relayId: "r1", limit: 10, lease: "1 minute" }), [])
          assert.deepStrictEqual(yield* outbox.claim({ relayId: "r2", limit: 10, lease: "1 minute", inFlight }), [])
          // c1 failed meanwhile: its claim is gone, so stream c is not continued.
          assert.isTrue(yield* outbox.recordFailure("r1", first[2]!.id, "broker down", Option.some(Duration.hours(1))))
          const next = yield* outbox.claim({ relayId: "r1", limit: 2, lease: "1 minute", inFlight })
          assert.deepStrictEqual(next.map(label), ["a3", "a4"])
          // Only a stream whose head is in flight is continued: a1 and a2 are still unpublished ahead of a3 and a4.
          assert.deepStrictEqual(
            yield* outbox.claim({ relayId: "r1", limit: 10, lease: "1 minute", inFlight: next.map((e) => e.id) }),
            []
          )
          const last = yield* outbox.claim({
            relayId: "r1",
            limit: 10,
            lease: "1 minute",
            markPublished: inFlight.slice(0, 2),
            inFlight: next.map((e) => e.id)
          })
          assert.deepStrictEqual(last.map(label), ["a5"])
        })),
      60_000
    )

    for (const run of [false, true]) {
      const path = run ? "publishRun" : "publish"
      it.live(
        `streams go out at once, each in order: a slow first publish of one stream holds back no other (${path})`,
        () =>
          withLayer(Effect.gen(function*() {
            yield* appendN("Order", "a", 3)
            yield* appendN("Order", "b", 3)
            const log: Array<string> = []
            const bDone = yield* Deferred.make<void>()
            // a1 waits until all of b went out: a relay that published one stream at a time would never get there.
            const publisher = withRun((message) =>
              Effect.gen(function*() {
                if (label(message) === "a1") yield* Deferred.await(bDone)
                log.push(label(message))
                if (label(message) === "b3") yield* Deferred.succeed(bDone, undefined)
              }), run)
            yield* OutboxRelay.processBatch({ batchSize: 10, concurrency: 2 }).pipe(
              Effect.provideService(OutboxPublisher.OutboxPublisher, publisher),
              Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => "stream a held stream b back" })
            )
            assert.deepStrictEqual(log, ["b1", "b2", "b3", "a1", "a2", "a3"])

            // The same through `run`, over several claims: s0 waits for all of s5, which takes two claims or more.
            const more = yield* Deferred.make<void>()
            const streams = ["s0", "s1", "s2", "s3", "s4", "s5"]
            for (const streamId of streams) yield* appendN("Order", streamId, 12)
            const seen: Array<{ readonly streamId: string; readonly version: number }> = []
            const slow = withRun((message) =>
              Effect.gen(function*() {
                if (label(message) === "s01") yield* Deferred.await(more)
                seen.push(message)
                if (seen.filter((m) => m.streamId === "s5").length === 12) yield* Deferred.succeed(more, undefined)
              }), run)
            const relay = yield* Effect.fork(
              OutboxRelay.run({ batchSize: 7, pollInterval: "20 millis" }).pipe(
                Effect.provideService(OutboxPublisher.OutboxPublisher, slow)
              )
            )
            yield* Effect.repeat(Effect.sync(() => seen.length), {
              until: (n) => n >= 72,
              schedule: Schedule.spaced("10 millis")
            }).pipe(Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => "stream s0 held the others back" }))
            yield* Fiber.interrupt(relay)
            for (const streamId of streams) {
              assert.deepStrictEqual(
                seen.filter((m) => m.streamId === streamId).map((m) => m.version),
                Array.from({ length: 12 }, (_, i) => i + 1),
                `stream ${streamId}`
              )
            }
          })),
        60_000
      )
    }

    for (const pipelined of [false, true]) {
      it.live(
        `a failure mid-batch: what went out stays published, nothing is lost, the failed event is retried (${
          pipelined ? "run" : "processBatch"
        })`,
        () =>
          withLayer(Effect.gen(function*() {
            const memory = yield* OutboxPublisher.Memory
            const outbox = yield* Outbox.Outbox
            const a = yield* appendN("Order", "a", 6)
            const b = yield* appendN("Order", "b", 6)
            const c = yield* appendN("Order", "c", 6)
            yield* memory.failNext(b.eventIds[1]!, 1, "broker hiccup")
            const noDelay = Schedule.spaced("0 millis").pipe(Schedule.intersect(Schedule.recurs(4)))
            if (pipelined) {
              // Batches of 9: the relay claims the next batch (b3 and on among it) while b2 fails in this one.
              const relay = yield* Effect.fork(
                OutboxRelay.run({ batchSize: 9, pollInterval: "20 millis", retrySchedule: noDelay })
              )
              yield* Effect.repeat(outbox.stats, {
                until: (stats) => stats.pending === 0,
                schedule: Schedule.spaced("20 millis")
              }).pipe(Effect.timeout("20 seconds"))
              yield* Fiber.interrupt(relay)
            } else {
              yield* OutboxRelay.processBatch({ batchSize: 18, retrySchedule: noDelay })
              // What went out before and beside the failure is published; b2 waits for its retry, b3 behind it.
              const status = (eventId: string) => Effect.map(outbox.get(eventId), (row) => Option.getOrThrow(row))
              for (const eventId of [...a.eventIds, b.eventIds[0]!, ...c.eventIds]) {
                assert.strictEqual((yield* status(eventId)).status, "published")
              }
              const failed = yield* status(b.eventIds[1]!)
              assert.strictEqual(failed.status, "pending")
              assert.strictEqual(failed.retryCount, 1)
              assert.strictEqual(failed.lastError, "broker hiccup")
              const behind = yield* status(b.eventIds[2]!)
              assert.strictEqual(behind.status, "pending")
              assert.isNull(behind.claimedBy, "the rest of b was given back")
              while ((yield* OutboxRelay.processBatch({ batchSize: 18, retrySchedule: noDelay })) > 0) {
                // drain
              }
            }
            const published = yield* memory.published
            for (const stream of [a, b, c]) {
              // Each event exactly once, in stream order.
              assert.deepStrictEqual(
                published.filter((m) => stream.eventIds.includes(m.eventId)).map((m) => m.eventId),
                stream.eventIds
              )
            }
            const retried = Option.getOrThrow(yield* outbox.get(b.eventIds[1]!))
            assert.strictEqual(retried.status, "published")
            assert.strictEqual(retried.retryCount, 1)
            assert.strictEqual((yield* outbox.stats).pending, 0)
          })),
        60_000
      )
    }

    it.live(
      "rows claimed behind a stream before it failed are given back, and go out in order after the retry",
      () =>
        withLayer(Effect.gen(function*() {
          const outbox = yield* Outbox.Outbox
          const a = yield* appendN("Order", "a", 10)
          const b = yield* appendN("Order", "b", 10)
          const c = yield* appendN("Order", "c", 10)
          const log: Array<string> = []
          // Batches of 10: b1 to b3 first. The claim that continues them (b4 on) runs once b1 is going out, and b2
          // fails once, when that claim came back: b4 on wait behind a failed row, and must be given back.
          const bStarted = yield* Deferred.make<void>()
          const continued = yield* Deferred.make<void>()
          let continuations = 0
          const slowed: Outbox.Outbox["Type"] = {
            ...outbox,
            claim: (options) =>
              (options.inFlight?.length ?? 0) > 0 && ++continuations === 1
                ? Deferred.await(bStarted).pipe(
                  Effect.zipRight(outbox.claim(options)),
                  Effect.tap(() => Deferred.succeed(continued, undefined))
                )
                : outbox.claim(options)
          }
          let failed = false
          const publisher = withRun((message) =>
            Effect.gen(function*() {
              if (label(message) === "b1") yield* Deferred.succeed(bStarted, undefined)
              if (label(message) === "b2" && !failed) {
                yield* Deferred.await(continued)
                failed = true
                return yield* Effect.fail(
                  new OutboxPublisher.PublishError({ eventId: message.eventId, reason: "nack" })
                )
              }
              log.push(label(message))
            }), true)
          const noDelay = Schedule.spaced("0 millis").pipe(Schedule.intersect(Schedule.recurs(4)))
          const relay = yield* Effect.fork(
            OutboxRelay.run({ batchSize: 10, pollInterval: "20 millis", retrySchedule: noDelay }).pipe(
              Effect.provideService(Outbox.Outbox, slowed),
              Effect.provideService(OutboxPublisher.OutboxPublisher, publisher)
            )
          )
          yield* Effect.repeat(outbox.stats, {
            until: (stats) => stats.pending === 0,
            schedule: Schedule.spaced("20 millis")
          }).pipe(Effect.timeout("20 seconds"))
          yield* Fiber.interrupt(relay)
          assert.isTrue(failed)
          for (const [stream, ids] of [["a", a.eventIds], ["b", b.eventIds], ["c", c.eventIds]] as const) {
            assert.deepStrictEqual(
              log.filter((l) => l.startsWith(stream)),
              ids.map((_, i) => `${stream}${i + 1}`),
              `stream ${stream}, once each, in order`
            )
          }
        })),
      60_000
    )

    it.live(
      "the relay marks each batch in the claim of a later one: one store write, and one commit, per batch",
      () =>
        withLayer(Effect.gen(function*() {
          const memory = yield* OutboxPublisher.Memory
          const outbox = yield* Outbox.Outbox
          // Six streams of 4 rows, batches of 10: no stream ever holds half a batch and there is always room for new
          // streams, so no claim is held back by the relay's own limits (a held-back claim that finds nothing is tried
          // again as workers progress, which would add empty claims that depend on timing).
          for (let s = 0; s < 6; s++) yield* appendN("Order", `s${s}`, 4)
          const transactions = yield* Effect.serviceOption(OutboxTransactions)
          const committed = Option.match(transactions, { onNone: () => Effect.succeed(0), onSome: (t) => t.count })
          const before = yield* committed
          const writes: Writes = { claims: 0, nonEmptyClaims: 0, other: 0 }
          // No hint and a long poll: after the outbox is drained, the relay makes no further claim. (A store may send a
          // hint for the appends above after the relay started listening, e.g. PostgreSQL's trailing-edge NOTIFY; the
          // claim that hint starts is right, and finds nothing, but the count here is about batches.)
          const relay = yield* Effect.fork(
            OutboxRelay.run({ batchSize: 10, pollInterval: "1 hour", lease: "1 minute" }).pipe(
              Effect.provideService(Outbox.Outbox, { ...countingWrites(outbox, writes), wakeups: Stream.never })
            )
          )
          yield* Effect.repeat(Effect.zip(memory.published, outbox.stats), {
            until: ([published, stats]) => published.length === 24 && stats.pending === 0,
            schedule: Schedule.spaced("20 millis")
          }).pipe(Effect.timeout("20 seconds"))
          // Counted before the relay stops: stopped right after its last claim committed (before it noted the rows
          // as marked), its finalizer would mark them again, harmlessly, and that is not what is counted here.
          const counted = { ...writes }
          const commits = (yield* committed) - before
          yield* Fiber.interrupt(relay)
          assert.isAtLeast(counted.nonEmptyClaims, 3, "24 rows in claims of at most 10")
          // One claim per batch, plus the one that marks the last batch (and, when it was sent while that batch was
          // still going out, one that came back empty before it): no separate mark. A relay that marked each batch on
          // its own made two writes per batch, plus the last claim.
          assert.strictEqual(counted.other, 0, "no mark, renewal, failure or release of its own")
          assert.isAtLeast(counted.claims, counted.nonEmptyClaims + 1)
          assert.isAtMost(counted.claims, counted.nonEmptyClaims + 2)
          assert.isBelow(counted.claims, 2 * counted.nonEmptyClaims + 1)
          if (Option.isSome(transactions)) {
            // Each of those writes is one transaction: the mark commits with the claim that carries it.
            assert.strictEqual(commits, counted.claims)
          }
        })),
      60_000
    )

    it.live(
      "a relay that stops marks what it published and gives back what it did not, for another relay to take at once",
      () =>
        withLayer(Effect.gen(function*() {
          const outbox = yield* Outbox.Outbox
          const a = yield* appendN("Order", "a", 3)
          const b = yield* appendN("Order", "b", 3)
          const log: Array<string> = []
          const stuck = yield* Deferred.make<void>()
          // b2 never comes back, as with a hung broker.
          const publisher = withRun((message) =>
            label(message) === "b2"
              ? Effect.zipRight(Deferred.succeed(stuck, undefined), Effect.never)
              : Effect.sync(() => void log.push(label(message))), true)
          const relay = yield* Effect.fork(
            OutboxRelay.run({ pollInterval: "1 hour", lease: "1 minute" }).pipe(
              Effect.provideService(OutboxPublisher.OutboxPublisher, publisher)
            )
          )
          yield* Deferred.await(stuck).pipe(Effect.timeout("20 seconds"))
          yield* Effect.repeat(Effect.sync(() => log.length), {
            until: (n) => n === 4,
            schedule: Schedule.spaced("10 millis")
          }).pipe(Effect.timeout("20 seconds"))
          yield* Fiber.interrupt(relay)
          for (const eventId of [...a.eventIds, b.eventIds[0]!]) {
            assert.strictEqual(Option.getOrThrow(yield* outbox.get(eventId)).status, "published")
          }
          // Not a lease to wait out: the next relay takes b2 and b3 now.
          const taken = yield* outbox.claim({ relayId: "next", limit: 10, lease: "1 minute" })
          assert.deepStrictEqual(taken.map(label), ["b2", "b3"])
        })),
      60_000
    )

    it.live(
      "two relays at once share the streams: every event published once, each stream in order",
      () =>
        withLayer(Effect.gen(function*() {
          const outbox = yield* Outbox.Outbox
          const streams = Array.from({ length: 8 }, (_, s) => `s${s}`)
          for (const streamId of streams) yield* appendN("Order", streamId, 15)
          const log: Array<{ readonly relay: string; readonly streamId: string; readonly version: number }> = []
          // A relay holds no more streams than its batch size: with batches of 3, the other relay gets the rest.
          const relays = yield* Effect.forEach(["r1", "r2"], (relayId) =>
            Effect.fork(
              OutboxRelay.run({ relayId, batchSize: 3, concurrency: 3, pollInterval: "20 millis" }).pipe(
                Effect.provideService(
                  OutboxPublisher.OutboxPublisher,
                  withRun((message) =>
                    Effect.sync(() =>
                      void log.push({ relay: relayId, streamId: message.streamId, version: message.version })
                    ), true)
                )
              )
            ))
          yield* Effect.repeat(outbox.stats, {
            until: (stats) => stats.pending === 0,
            schedule: Schedule.spaced("20 millis")
          }).pipe(Effect.timeout("30 seconds"))
          yield* Fiber.interruptAll(relays)
          for (const streamId of streams) {
            assert.deepStrictEqual(
              log.filter((m) => m.streamId === streamId).map((m) => m.version),
              Array.from({ length: 15 }, (_, i) => i + 1),
              `stream ${streamId}`
            )
          }
          assert.isAbove(log.filter((m) => m.relay === "r1").length, 0, "r1 published")
          assert.isAbove(log.filter((m) => m.relay === "r2").length, 0, "r2 published")
        })),
      60_000
    )

    it.live(
      "a claim starts at most maxNewStreams streams, and continues a stream only while no older one waits",
      () =>
        withLayer(Effect.gen(function*() {
          const outbox = yield* Outbox.Outbox
          yield* appendN("Order", "a", 2)
          yield* appendN("Order", "b", 4)
          yield* appendN("Order", "c", 4)
          yield* Effect.flatMap(EventStore.EventStore, (store) =>
            store.append({
              streamType: "Order",
              streamId: "a",
              events: [3, 4].map((i) => ({ type: "Numbered", payload: { i } }))
            }))
          const first = yield* outbox.claim({ relayId: "r1", limit: 2, lease: "1 minute", maxNewStreams: 1 })
          assert.deepStrictEqual(first.map(label), ["a1", "a2"])
          // b1 and c1 are older than a3: with room for no new stream, a is not continued ahead of them.
          const held = yield* outbox.claim({
            relayId: "r1",
            limit: 10,
            lease: "1 minute",
            maxNewStreams: 0,
            inFlight: first.map((e) => e.id)
          })
          assert.deepStrictEqual(held, [])
          // With room, the older streams are started, and a continues behind its in-flight rows.
          const next = yield* outbox.claim({
            relayId: "r1",
            limit: 10,
            lease: "1 minute",
            inFlight: first.map((e) => e.id)
          })
          assert.sameMembers(next.map(label), ["a3", "a4", "b1", "b2", "b3", "b4", "c1", "c2", "c3", "c4"])
        })),
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
