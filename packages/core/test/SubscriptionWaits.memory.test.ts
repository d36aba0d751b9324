// How often a caught-up subscription reads: once per hint when the hinted events are readable, even when its filter
// drops them (the feed head moved), and quick re-reads only while the head stays where it was.
import { assert, describe, it } from "@effect/vitest"
import { CheckpointStore, EventStore, FeedNotifier, Subscription } from "@eventfold/core"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"

describe("Subscription waits (memory)", () => {
  it.live("an append its filter drops costs a caught-up subscription one read, not a series of re-reads", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      let reads = 0
      const counting: EventStore.EventStore["Type"] = {
        ...store,
        readAll: (options) => Effect.suspend(() => (reads++, store.readAll(options)))
      }
      const subscription = yield* Subscription.make({
        id: "orders-only",
        streamTypes: ["Order"],
        pollInterval: "1 hour",
        handler: () => Effect.void
      }).pipe(Effect.provideService(EventStore.EventStore, counting))
      yield* Effect.forkScoped(subscription.run)
      yield* Effect.map(subscription.status, (s) => s.phase === "live").pipe(
        Effect.filterOrFail((live) => live, () => "not live"),
        Effect.retry(Schedule.spaced("10 millis")),
        Effect.timeout("10 seconds")
      )
      yield* Effect.sleep("100 millis")
      const before = reads
      yield* store.append({ streamType: "Invoice", streamId: "i-1", events: [{ type: "Issued", payload: {} }] })
      // Quick re-reads would come 20, 40, 80, 160, 320 and 640 ms after the first read.
      yield* Effect.sleep("1500 millis")
      assert.strictEqual(reads - before, 1)
    }).pipe(
      Effect.scoped,
      Effect.provide(Layer.merge(FeedNotifier.layerMemory, CheckpointStore.layerMemory))
    ))
})
