// Stream lifecycle on PostgreSQL: the contract the memory stack passes, with the stores as the least-privilege
// application role and the lifecycle as the owner (truncation and expiry delete events, which the application role
// may not); and what the application role itself may do.
import { assert, describe, it } from "@effect/vitest"
import { EventStore, StreamLifecycle } from "@eventfold/core"
import { LifecycleContract } from "@eventfold/core/testing"
import { PgDatabase, PgStreamLifecycle, PgTest } from "@eventfold/postgres"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

/** The stack as the application role, with the owner's StreamLifecycle on the same database. */
const stack = Layer.unwrapScoped(
  Effect.map(PgTest.freshDatabase(), (database) => {
    const app = PgTest.eventfold(database)
    const owner = PgStreamLifecycle.layer().pipe(
      Layer.provide(PgDatabase.layer({ url: database.adminUrl, maxConnections: 4 }))
    )
    return Layer.merge(app, owner)
  })
)

LifecycleContract.suite(`postgres (${PgTest.serverLabel()})`, stack)

describe("StreamLifecycle as the application role", () => {
  it.effect("archives, deletes and recreates, but cannot delete events: a typed, non-retryable StoreError", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const lifecycle = yield* StreamLifecycle.StreamLifecycle
      const stream = { streamType: "Log", streamId: "1" }
      yield* store.append({ ...stream, events: [{ type: "E", payload: {} }, { type: "E", payload: {} }] })
      yield* lifecycle.archive(stream)
      yield* lifecycle.unarchive(stream)
      const truncate = yield* Effect.flip(lifecycle.truncateBefore(stream, 2))
      assert.strictEqual(truncate._tag, "StoreError")
      if (truncate._tag === "StoreError") assert.isFalse(truncate.retryable ?? false)
      const expire = yield* Effect.flip(lifecycle.expire({ streamTypes: ["Log"], maxAge: "1 millis" }))
      assert.strictEqual(expire._tag, "StoreError")
      // Nothing was deleted.
      assert.strictEqual((yield* store.readStream(stream)).length, 2)
      yield* lifecycle.delete(stream, { recreate: true })
      assert.strictEqual((yield* store.append({ ...stream, events: [{ type: "E", payload: {} }] })).version, 3)
    }).pipe(Effect.provide(PgTest.layerEventfold())))
})
