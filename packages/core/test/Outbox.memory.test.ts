import { assert, describe, it } from "@effect/vitest"
import * as EventStore from "@eventfold/core/EventStore"
import * as Outbox from "@eventfold/core/Outbox"
import * as OutboxRelay from "@eventfold/core/OutboxRelay"
import { OutboxContract } from "@eventfold/core/testing"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"

OutboxContract.suite("memory", EventStore.layerMemory.pipe(Layer.provideMerge(Outbox.layerMemory)))

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

describe("EventStore.layerMemory without an Outbox", () => {
  it.effect("writes no outbox rows", () =>
    Effect.gen(function*() {
      const outbox = yield* Outbox.Outbox
      const store = yield* EventStore.EventStore
      yield* store.append({ streamType: "T", streamId: "1", events: [{ type: "E", payload: {} }] })
      assert.strictEqual((yield* outbox.stats).pending, 0)
    }).pipe(Effect.provide(Layer.merge(EventStore.layerMemory, Outbox.layerMemory))))
})
