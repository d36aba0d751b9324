// Classified store failures on a real server: a killed connection is retryable and a subscription carries on; a
// revoked permission is not, and the subscription stops with the typed error instead of retrying forever.
import * as PgClient from "@effect/sql-pg/PgClient"
import { assert, describe, it } from "@effect/vitest"
import { EventStore, isRetryableStoreError, Subscription } from "@eventfold/core"
import { PgDatabase, PgTest } from "@eventfold/postgres"
import * as Effect from "effect/Effect"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"

const admin = <A>(url: string, query: (sql: PgClient.PgClient) => Effect.Effect<A, unknown>) =>
  Effect.flatMap(PgClient.PgClient, query).pipe(Effect.provide(PgDatabase.layer({ url, maxConnections: 1 })))

const append = (n: number) =>
  Effect.flatMap(
    EventStore.EventStore,
    (store) =>
      store.append({ streamType: "Order", streamId: `o-${n}`, events: [{ type: "Placed", payload: { n } }] }).pipe(
        // The first query on a pooled connection the server killed fails; that failure is retryable.
        Effect.retry({ while: isRetryableStoreError, schedule: Schedule.spaced("50 millis"), times: 10 })
      )
  )

describe(`classified store errors (${PgTest.serverLabel()})`, () => {
  it.live("killed connections are retryable: the subscription goes on and delivers everything", () =>
    Effect.gen(function*() {
      const db = yield* PgTest.freshDatabase()
      yield* Effect.gen(function*() {
        // Delivery is at least once: a handler may see an event again when its checkpoint's commit was cut off.
        const seen = yield* Ref.make(new Set<string>())
        const subscription = yield* Subscription.make({
          id: "orders",
          pollInterval: "100 millis",
          storeRetry: Schedule.spaced("100 millis"),
          handler: (event) => Ref.update(seen, (ids) => new Set(ids).add(event.eventId))
        })
        yield* Effect.forkScoped(subscription.run)
        const first = yield* append(1)
        const appended = [...first.eventIds]
        yield* subscription.waitFor(first.position)
        const killed = yield* admin(
          db.adminUrl,
          (sql) =>
            sql<{ n: number }>`SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
            WHERE usename = ${db.role}`
        )
        assert.isAbove(killed[0]!.n, 0)
        let last = first.position
        for (let n = 2; n <= 5; n++) {
          const result = yield* append(n)
          appended.push(...result.eventIds)
          last = result.position
        }
        yield* subscription.waitFor(last).pipe(Effect.timeout("20 seconds"))
        assert.deepStrictEqual([...(yield* Ref.get(seen))].sort(), appended.sort())
        assert.notStrictEqual((yield* subscription.status).phase, "failed")
      }).pipe(Effect.provide(PgTest.eventfold(db)), Effect.scoped)
    }).pipe(Effect.scoped))

  it.live("a revoked permission is not retryable: the subscription stops with a typed StoreError", () =>
    Effect.gen(function*() {
      const db = yield* PgTest.freshDatabase()
      yield* Effect.gen(function*() {
        yield* append(1)
        yield* admin(db.adminUrl, (sql) => sql`REVOKE SELECT ON eventfold.events FROM ${sql(db.role)}`)
        const subscription = yield* Subscription.make({
          id: "orders",
          pollInterval: "100 millis",
          handler: () => Effect.void
        })
        const error = yield* subscription.run.pipe(Effect.flip, Effect.timeout("10 seconds"))
        assert.strictEqual(error._tag, "StoreError")
        if (error._tag === "StoreError") {
          assert.strictEqual(error.code, "42501")
          assert.strictEqual(error.kind, "permission")
          assert.isFalse(error.retryable)
        }
        assert.strictEqual((yield* subscription.status).phase, "failed")
      }).pipe(Effect.provide(PgTest.eventfold(db)))
    }).pipe(Effect.scoped))
})
