import { assert, describe, it } from "@effect/vitest"
import { StoreError } from "@eventfold/core/Errors"
import * as EventStore from "@eventfold/core/EventStore"
import * as MemoryEventfold from "@eventfold/core/MemoryEventfold"
import * as Outbox from "@eventfold/core/Outbox"
import * as OutboxPublisher from "@eventfold/core/OutboxPublisher"
import * as OutboxRelay from "@eventfold/core/OutboxRelay"
import { OutboxContract } from "@eventfold/core/testing"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"

OutboxContract.suite("memory", Outbox.layerMemory)

describe("OutboxRelay.retryDelay", () => {
  it.effect("follows the schedule and stops when it is done", () =>
    Effect.gen(function*() {
      const schedule = Schedule.exponential("100 millis").pipe(Schedule.intersect(Schedule.recurs(2)))
      const delays = yield* Effect.forEach([1, 2, 3], (n) => OutboxRelay.retryDelay(schedule, n, "e"))
      assert.deepStrictEqual(delays.map(Option.map(Duration.toMillis)), [
        Option.some(100),
        Option.some(200),
        Option.none()
      ])
    }))
})

OutboxContract.suiteOff("MemoryEventfold", MemoryEventfold.layer())

describe("an outbox configured off", () => {
  it.effect("an Outbox in context does not switch a plain in-memory EventStore's outbox writes on", () =>
    Effect.gen(function*() {
      const outbox = yield* Outbox.Outbox
      const store = yield* EventStore.makeMemory
      yield* store.append({ streamType: "T", streamId: "1", events: [{ type: "E", payload: {} }] })
      assert.strictEqual((yield* outbox.stats).pending, 0)
    }).pipe(Effect.provide(Outbox.layerMemory)))
})

describe("OutboxRelay lease guard", () => {
  it.live("a relay whose claim lease runs out mid-batch stops publishing that batch, so it cannot overtake", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      yield* store.append({
        streamType: "Order",
        streamId: "1",
        events: [1, 2, 3].map((n) => ({ type: "E", payload: { n } }))
      })
      const published: Array<number> = []
      const publisher = OutboxPublisher.OutboxPublisher.of({
        // The second publish stalls for longer than the lease, as a long GC pause or a hung broker would.
        publish: (message) =>
          Effect.sync(() => published.push(message.version)).pipe(
            Effect.zipRight(message.version === 2 ? Effect.sleep("600 millis") : Effect.void)
          )
      })
      // Renewals fail, so nothing extends the 300 ms lease.
      const outbox = yield* Outbox.Outbox
      const failingRenewals = Outbox.Outbox.of({
        ...outbox,
        renew: () => Effect.fail(new StoreError({ operation: "outbox.renew", reason: "connection lost" }))
      })
      yield* OutboxRelay.processBatch({ batchSize: 10, lease: "300 millis" }).pipe(
        Effect.provideService(Outbox.Outbox, failingRenewals),
        Effect.provideService(OutboxPublisher.OutboxPublisher, publisher)
      )
      assert.deepStrictEqual(published, [1, 2])
    }).pipe(Effect.provide(Outbox.layerMemory)))
})
