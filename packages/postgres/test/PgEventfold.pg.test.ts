// The assembled PostgreSQL stack: every contract suite, one schema for every Layer, migrations run or verified,
// the outbox switched by configuration only, and no LISTEN behind a transaction-mode pooler.
import * as PgClient from "@effect/sql-pg/PgClient"
import { assert, describe, it } from "@effect/vitest"
import {
  CheckpointStore,
  EventStore,
  FeedNotifier,
  Outbox,
  OutboxPublisher,
  OutboxRelay,
  Position,
  SnapshotStore
} from "@eventfold/core"
import {
  CheckpointStoreContract,
  EventStoreContract,
  OutboxContract,
  SnapshotStoreContract,
  SubscriptionContract
} from "@eventfold/core/testing"
import { PgDatabase, PgEventfold, PgTest } from "@eventfold/postgres"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"

/** The stack as an application role without DDL rights runs it: on a database migrated beforehand, verified. */
const stack = () => PgTest.layerEventfold({ outbox: true })

const label = `PgEventfold (${PgTest.serverLabel()})`
EventStoreContract.suite(label, stack())
SnapshotStoreContract.suite(label, stack())
CheckpointStoreContract.suite(label, stack())
SubscriptionContract.suite(label, stack())
OutboxContract.suite(label, stack())
OutboxContract.suiteOff(label, PgTest.layerEventfold())

/** The admin's client on a database, for looking behind the stack. */
const adminQuery = <A>(url: string, query: (sql: PgClient.PgClient) => Effect.Effect<A, unknown>) =>
  Effect.flatMap(PgClient.PgClient, query).pipe(Effect.provide(PgDatabase.layer({ url, maxConnections: 1 })))

/** Sessions of the database that ran a LISTEN. */
const listenersOf = (adminUrl: string) =>
  adminQuery(adminUrl, (sql) =>
    sql<{ n: string }>`SELECT count(*)::text AS n FROM pg_stat_activity
      WHERE datname = current_database() AND query ILIKE 'LISTEN%'`).pipe(Effect.map((rows) => Number(rows[0]!.n)))

/** Waits until some session of the database listens (a LISTEN is set up asynchronously, on its own connection). */
const untilListening = (adminUrl: string) =>
  listenersOf(adminUrl).pipe(
    Effect.filterOrFail((n) => n > 0, () => "no LISTEN yet"),
    Effect.retry(Schedule.spaced("50 millis")),
    Effect.timeout("30 seconds")
  )

describe("PgEventfold", () => {
  it.live("layerConfig: one schema from the environment for every Layer, migrated at startup", () =>
    Effect.gen(function*() {
      const db = yield* PgTest.freshDatabase({ migrate: false })
      const env = ConfigProvider.fromMap(
        new Map([["DATABASE_URL", db.adminUrl], ["EVENTFOLD_SCHEMA", "billing"], ["EVENTFOLD_OUTBOX", "true"]])
      )
      yield* Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const appended = yield* store.append({
          streamType: "Invoice",
          streamId: "i-1",
          events: [{ type: "Issued", payload: {} }]
        })
        yield* (yield* SnapshotStore.SnapshotStore).save({
          streamType: "Invoice",
          streamId: "i-1",
          version: 1,
          schemaVersion: 1,
          state: { issued: true }
        })
        yield* (yield* CheckpointStore.CheckpointStore).claim({
          subscriptionId: "invoices",
          owner: "me",
          lease: "1 second",
          initial: Position.start
        })
        assert.isTrue(Option.isSome(yield* (yield* Outbox.Outbox).get(appended.eventIds[0]!)))
      }).pipe(Effect.provide(PgEventfold.layerConfig()), Effect.withConfigProvider(env))
      const counts = yield* adminQuery(
        db.adminUrl,
        (sql) =>
          sql<{ events: string; snapshots: string; checkpoints: string; outbox: string; elsewhere: boolean }>`SELECT
          (SELECT count(*) FROM billing.events)::text AS events,
          (SELECT count(*) FROM billing.snapshots)::text AS snapshots,
          (SELECT count(*) FROM billing.checkpoints)::text AS checkpoints,
          (SELECT count(*) FROM billing.outbox)::text AS outbox,
          to_regclass('eventfold.events') IS NOT NULL AS elsewhere`
      )
      assert.deepStrictEqual(counts[0], {
        events: "1",
        snapshots: "1",
        checkpoints: "1",
        outbox: "1",
        elsewhere: false
      })
    }).pipe(Effect.scoped))

  it.live("verify on a schema that is not migrated fails typed, naming the schema the migrations went to", () =>
    Effect.gen(function*() {
      const db = yield* PgTest.freshDatabase({ schema: "orders" })
      const error = yield* Layer.build(
        PgEventfold.layer({ database: { url: db.url }, schema: "billing", migrations: "verify" })
      ).pipe(Effect.flip)
      assert.strictEqual(error._tag, "StoreError")
      assert.include(error.message, `schema "billing" is not migrated`)
      assert.include(error.message, "applied to schema orders")
      assert.isTrue(error._tag === "StoreError" && error.kind === "schema" && error.retryable === false)
    }).pipe(Effect.scoped))

  it.live("outbox off: appends write no outbox rows", () =>
    Effect.gen(function*() {
      const db = yield* PgTest.freshDatabase()
      yield* Effect.flatMap(EventStore.EventStore, (store) =>
        store.append({ streamType: "T", streamId: "1", events: [{ type: "E", payload: {} }] })).pipe(
          Effect.provide(PgTest.eventfold(db))
        )
      const rows = yield* adminQuery(
        db.adminUrl,
        (sql) =>
          sql<{ n: string }>`SELECT count(*)::text AS n FROM eventfold.outbox`
      )
      assert.strictEqual(rows[0]!.n, "0")
    }).pipe(Effect.scoped))

  it.live("pooler: transaction opens no LISTEN anywhere; the default stack does", () =>
    Effect.gen(function*() {
      const db = yield* PgTest.freshDatabase()
      // The default stack listens (waited for: a LISTEN is set up on its own connection); with a pooler in
      // transaction mode nothing does, well after the same work.
      const listening = (pooler: "none" | "transaction") =>
        Effect.gen(function*() {
          yield* Effect.flatMap(OutboxRelay.processBatch(), () => Effect.void).pipe(
            Effect.provide(OutboxPublisher.layerMemory)
          )
          if (pooler === "none") return yield* untilListening(db.adminUrl)
          yield* Effect.sleep("1 second")
          return yield* listenersOf(db.adminUrl)
        }).pipe(
          Effect.provide(PgTest.eventfold(db, { outbox: true, pooler })),
          Effect.scoped
        )
      assert.isAbove(yield* listening("none"), 0)
      assert.strictEqual(yield* listening("transaction"), 0)
    }).pipe(Effect.scoped))

  it.live("the longest schema name (63 bytes) still gets its NOTIFY hints", () =>
    Effect.gen(function*() {
      const schema = `s${"x".repeat(62)}`
      const db = yield* PgTest.freshDatabase({ schema })
      yield* Effect.gen(function*() {
        const hints = yield* (yield* FeedNotifier.FeedNotifier).subscribe
        yield* untilListening(db.adminUrl)
        const store = yield* EventStore.EventStore
        yield* store.append({ streamType: "T", streamId: "1", events: [{ type: "E", payload: {} }] })
        yield* Queue.take(hints).pipe(Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => "no hint" }))
      }).pipe(Effect.provide(PgEventfold.layer({ database: { url: db.url }, schema, migrations: "verify" })))
    }).pipe(Effect.scoped))
})
