// A rebuild started from another process while the owner's batch has moved the checkpoint but not yet committed:
// the batch must either be cleared with the rest of the read model or replayed, never applied twice.
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import { EventStore, Subscription } from "@eventfold/core"
import { PgProjection, PgTest } from "@eventfold/postgres"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"

describe(`a rebuild from another process (${PgTest.serverLabel()})`, () => {
  it.live("waits for the owner's batch in flight, so no event is applied twice after the rebuild", () =>
    Effect.gen(function*() {
      const db = yield* PgTest.freshDatabase()
      yield* PgTest.asAdmin(
        Effect.flatMap(
          SqlClient.SqlClient,
          (sql) => sql`CREATE TABLE applied (event_id uuid PRIMARY KEY, n int NOT NULL)`
        )
      ).pipe(Effect.provide(PgTest.layerAdmin(db)))
      yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const store = yield* EventStore.EventStore
        const append = (n: number) =>
          store.append({ streamType: "Order", streamId: `o-${n}`, events: [{ type: "Placed", payload: { n } }] })
        // The owner's batches pause after the checkpoint moved, before COMMIT, while `armed`.
        let armed = false
        const movedCheckpoint = yield* Deferred.make<void>()
        const mayCommit = yield* Deferred.make<void>()
        const gate = Effect.suspend(() => {
          if (!armed) return Effect.void
          armed = false
          return Effect.zipRight(Deferred.succeed(movedCheckpoint, undefined), Deferred.await(mayCommit))
        })
        const options = {
          id: "applied",
          pollInterval: "50 millis",
          lease: "3 seconds",
          handler: (event: { readonly eventId: string }) =>
            sql`INSERT INTO applied (event_id, n) VALUES (${event.eventId}::uuid, 1)
              ON CONFLICT (event_id) DO UPDATE SET n = applied.n + 1`,
          onReset: sql`DELETE FROM applied`
        } as const
        const owner = yield* Subscription.make({
          ...options,
          transaction: (effect) => PgProjection.transaction(sql)(Effect.zipLeft(effect, gate))
        })
        yield* Effect.forkScoped(owner.run)
        for (let n = 1; n <= 2; n++) yield* append(n)
        yield* owner.waitFor(yield* append(3))

        armed = true
        const last = yield* append(4)
        yield* Deferred.await(movedCheckpoint)
        // Another process rebuilds now: same subscription, its own instance.
        const rebuilder = yield* PgProjection.make(options)
        const reset = yield* Effect.fork(rebuilder.reset)
        yield* Effect.sleep("300 millis")
        yield* Deferred.succeed(mayCommit, undefined)
        yield* Fiber.join(reset)
        yield* owner.waitFor(last).pipe(Effect.timeout("20 seconds"))

        const rows = yield* sql<
          { rows: number; most: number }
        >`SELECT count(*)::int AS rows, max(n) AS most FROM applied`
        assert.deepStrictEqual(rows[0], { rows: 4, most: 1 })
      }).pipe(
        Effect.provide(PgTest.eventfold(db)),
        Effect.scoped
      )
    }).pipe(Effect.scoped))
})
