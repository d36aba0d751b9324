// xid8 feed positions belong to one cluster: a checkpoint carried over a logical restore must not skip events.
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, layer } from "@effect/vitest"
import { CheckpointStore, Position } from "@eventfold/core"
import { PgCheckpointStore, PgMigrations, PgTest } from "@eventfold/postgres"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

const Live = PgCheckpointStore.layer().pipe(
  Layer.provide(PgMigrations.layer()),
  Layer.provideMerge(PgTest.layerClient())
)

layer(Live, { excludeTestServices: true, timeout: "60 seconds" })(
  `checkpoints across a restore (${PgTest.serverLabel()})`,
  (it) => {
    it.effect("a checkpoint ahead of the server's transaction counter is refused, not silently skipped past", () =>
      Effect.gen(function*() {
        const store = yield* CheckpointStore.CheckpointStore
        const sql = yield* SqlClient.SqlClient
        const claim: CheckpointStore.ClaimOptions = {
          subscriptionId: "restored",
          owner: "w1",
          lease: "10 seconds",
          initial: Position.start
        }
        const first = yield* store.claim(claim)
        assert.isTrue(first._tag === "Some")
        // What a pg_dump of a busy cluster restored onto a fresh one looks like: the stored xid is in the future.
        yield* sql`UPDATE eventfold.checkpoints SET transaction_id = '900000000000'::xid8 WHERE subscription_id = 'restored'`
        const error = yield* Effect.flip(store.claim(claim))
        assert.strictEqual(error._tag, "StoreError")
        assert.include(error.message, "restored logically")
      }))
  }
)
