// Schema per tenant on real PostgreSQL: every call lands in its tenant's schema, over one pool; a tenant's first use
// migrates its schema once (DDL rights), or only verifies it (the least-privilege role, schemas migrated ahead).
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import {
  Aggregate,
  CheckpointStore,
  CommandHandler,
  Decider,
  EventStore,
  FeedNotifier,
  Outbox,
  type Position,
  SnapshotStore,
  Subscription,
  Tenant
} from "@eventfold/core"
import {
  PgDatabase,
  PgMigrations,
  PgProjection,
  PgRoles,
  PgSchemaPerTenant,
  PgTest,
  PgTransaction
} from "@eventfold/postgres"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"

/** The admin's client on a database, for looking behind the Layer and for what only an owner may do. */
const asAdmin = <A, E>(url: string, query: (sql: PgClient.PgClient) => Effect.Effect<A, E, SqlClient.SqlClient>) =>
  Effect.flatMap(PgClient.PgClient, query).pipe(Effect.provide(PgDatabase.layer({ url, maxConnections: 1 })))

/** Migrates a tenant's schema as its owner and grants it to the application role, as a provisioning job would. */
const provision = (db: PgTest.TestDatabase, schema: string) =>
  asAdmin(
    db.adminUrl,
    () => Effect.zipRight(PgMigrations.run({ schema }), PgRoles.grantApplicationRole({ schema, role: db.role }))
  )

const event = (type: string, payload: Record<string, unknown> = {}) => ({ type, payload })

/** A tenant's feed once `count` events are visible (the feed trails commits by the cluster's open transactions). */
const feedOf = (count: number) =>
  Effect.flatMap(EventStore.EventStore, (store) =>
    store.readAll({ limit: 1000 }).pipe(
      Effect.filterOrFail((events) => events.length >= count, () => "not yet" as const),
      Effect.retry({ while: (e) => e === "not yet", schedule: Schedule.spaced("20 millis") }),
      Effect.timeout("20 seconds"),
      Effect.orDie
    ))

class OrderCreated extends Schema.TaggedClass<OrderCreated>()("OrderCreated", { customer: Schema.String }) {}
class OrderShipped extends Schema.TaggedClass<OrderShipped>()("OrderShipped", {}) {}
const OrderEvent = Schema.Union(OrderCreated, OrderShipped)
const OrderState = Schema.Struct({ status: Schema.Literal("none", "open", "shipped"), customer: Schema.String })
class OrderNotFound extends Schema.TaggedError<OrderNotFound>()("OrderNotFound", {}) {}
type Command = { readonly _tag: "Create"; readonly customer: string } | { readonly _tag: "Ship" }

const Order = Aggregate.make({
  name: "Order",
  decider: Decider.make<typeof OrderState.Type, Command, typeof OrderEvent.Type, OrderNotFound>({
    initialState: { status: "none", customer: "" },
    evolve: (state, e) =>
      e._tag === "OrderCreated" ? { status: "open", customer: e.customer } : { ...state, status: "shipped" },
    decide: (command, state) =>
      command._tag === "Create"
        ? Effect.succeed([new OrderCreated({ customer: command.customer })])
        : state.status === "open"
        ? Effect.succeed([new OrderShipped()])
        : Effect.fail(new OrderNotFound())
  }),
  events: OrderEvent,
  state: OrderState,
  snapshot: { every: 1, schemaVersion: 1 }
})

describe(`PgSchemaPerTenant (${PgTest.serverLabel()})`, () => {
  it.live("the same stream id in two tenants lands in two schemas, each from version 1", () =>
    Effect.gen(function*() {
      const db = yield* PgTest.freshDatabase({ migrate: false })
      const stream = { streamType: "Order", streamId: "o-1" }
      const ids = yield* Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const outbox = yield* Outbox.Outbox
        const a = yield* Tenant.with(store.append({ ...stream, events: [event("Created", { t: "a" })] }), "a")
        const b = yield* Tenant.with(store.append({ ...stream, events: [event("Created", { t: "b" })] }), "b")
        assert.deepStrictEqual([a.tenantId, a.version, b.tenantId, b.version], ["a", 1, "b", 1])
        yield* Tenant.with(store.append({ ...stream, events: [event("Shipped")] }), "a")
        assert.strictEqual(yield* Tenant.with(store.streamVersion(stream), "a"), 2)
        assert.strictEqual(yield* Tenant.with(store.streamVersion(stream), "b"), 1)
        // An explicit tenant routes like the ambient one, and must agree with it.
        const readB = yield* store.readStream({ ...stream, tenantId: "b" })
        assert.deepStrictEqual(readB.map((e) => [e.tenantId, e.version, e.payload, e.metadata.tenantId]), [
          ["b", 1, { t: "b" }, "b"]
        ])
        const clash = yield* Tenant.with(store.readStream({ ...stream, tenantId: "b" }), "a").pipe(Effect.flip)
        assert.strictEqual(clash._tag, "InvalidInput")
        // Each tenant's feed is its schema's.
        const feedA = yield* Tenant.with(feedOf(2), "a")
        assert.deepStrictEqual(feedA.map((e) => [e.tenantId, e.type]), [["a", "Created"], ["a", "Shipped"]])
        const feedB = yield* store.readAll({ tenantId: "b" })
        assert.deepStrictEqual(feedB.map((e) => e.eventId), [b.eventIds[0]])
        // The outbox row is in its tenant's schema only.
        assert.isTrue(Option.isSome(yield* Tenant.with(outbox.get(b.eventIds[0]!), "b")))
        assert.isTrue(Option.isNone(yield* Tenant.with(outbox.get(b.eventIds[0]!), "a")))
        return { a: a.eventIds[0]!, b: b.eventIds[0]! }
      }).pipe(Effect.provide(PgSchemaPerTenant.layer({ database: { url: db.adminUrl }, outbox: true })))

      const rows = yield* asAdmin(db.adminUrl, (sql) =>
        sql<{ schema: string; tenant_id: string; stream_id: string; version: number; event_type: string }>`
          SELECT 'tenant_a' AS schema, tenant_id, stream_id, version, event_type FROM tenant_a.events
          UNION ALL
          SELECT 'tenant_b', tenant_id, stream_id, version, event_type FROM tenant_b.events
          ORDER BY 1, 4`)
      assert.deepStrictEqual(rows.map((r) => ({ ...r })), [
        { schema: "tenant_a", tenant_id: "a", stream_id: "o-1", version: 1, event_type: "Created" },
        { schema: "tenant_a", tenant_id: "a", stream_id: "o-1", version: 2, event_type: "Shipped" },
        { schema: "tenant_b", tenant_id: "b", stream_id: "o-1", version: 1, event_type: "Created" }
      ])
      const outboxRows = yield* asAdmin(db.adminUrl, (sql) =>
        sql<{ a: string; b: string; shared: boolean }>`SELECT
          (SELECT string_agg(event_id::text, ',') FROM tenant_a.outbox WHERE event_id = ${ids.b}::uuid) AS a,
          (SELECT string_agg(event_id::text, ',') FROM tenant_b.outbox) AS b,
          to_regclass('eventfold.events') IS NOT NULL AS shared`)
      assert.deepStrictEqual({ ...outboxRows[0] }, { a: null, b: ids.b, shared: false })
    }).pipe(Effect.scoped))

  it.live("no tenant: TenantRequired (a StoreError where only that is typed); no cross-tenant feed; nothing created", () =>
    Effect.gen(function*() {
      const db = yield* PgTest.freshDatabase({ migrate: false })
      yield* Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const snapshots = yield* SnapshotStore.SnapshotStore
        const checkpoints = yield* CheckpointStore.CheckpointStore
        const outbox = yield* Outbox.Outbox
        const handler = yield* CommandHandler.make(Order)
        const stream = { streamType: "Order", streamId: "o-1" }
        assert.strictEqual(store.tenancy, "multi")
        const required = [
          yield* Effect.flip(store.append({ ...stream, events: [event("Created")] })),
          yield* Effect.flip(store.readStream(stream)),
          yield* Effect.flip(store.streamVersion(stream)),
          yield* Effect.flip(store.readAll()),
          yield* Effect.flip(snapshots.load(stream)),
          yield* Effect.flip(snapshots.save({ ...stream, version: 1, schemaVersion: 1, state: {} })),
          yield* Effect.flip(handler.handle("o-1", { _tag: "Create", customer: "x" })),
          yield* Effect.flip(Subscription.run({ id: "projection", handler: () => Effect.void }))
        ]
        assert.deepStrictEqual(required.map((e) => e._tag), Array(required.length).fill("TenantRequired"))
        const storeOnly = [
          yield* Effect.flip(store.headPosition),
          yield* Effect.flip(store.eventExists(crypto.randomUUID())),
          yield* Effect.flip(checkpoints.get("projection")),
          yield* Effect.flip(outbox.stats)
        ]
        for (const error of storeOnly) {
          assert.strictEqual(error._tag, "StoreError")
          assert.isFalse(error.retryable)
          assert.include(error.message, "Tenant.with")
        }
        // Each tenant's feed lives in its own schema: there is no feed over every tenant.
        const all = yield* Effect.flip(store.readAll({ allTenants: true }))
        assert.strictEqual(all._tag, "InvalidInput")
        assert.include(all.message, "own schema")
        const across = yield* Subscription.run({ id: "all", allTenants: true, handler: () => Effect.void }).pipe(
          Effect.flip
        )
        assert.strictEqual(across._tag, "StoreError")
        assert.include(across.message, "no store over every tenant")
      }).pipe(
        Effect.provide(PgSchemaPerTenant.layer({ database: { url: db.adminUrl }, outbox: true }))
      )
      const schemas = yield* asAdmin(
        db.adminUrl,
        (sql) =>
          sql<{ n: number }>`SELECT count(*)::integer AS n FROM pg_namespace
          WHERE nspname LIKE 'tenant%' OR nspname = 'eventfold'`
      )
      assert.strictEqual(schemas[0]!.n, 0)
    }).pipe(Effect.scoped))

  it.live("schemaOf: ids that do not fit tenant_<id> are InvalidInput; a custom mapping is validated and may share a schema", () =>
    Effect.gen(function*() {
      const db = yield* PgTest.freshDatabase({ migrate: false })
      assert.strictEqual(yield* PgSchemaPerTenant.schemaFor("acme_01"), "tenant_acme_01")
      for (const bad of ["Acme", "a-b", "x".repeat(56)]) {
        const error = yield* Effect.flip(PgSchemaPerTenant.schemaFor(bad))
        assert.include(error.message, "schemaOf", bad)
      }
      const stream = { streamType: "Order", streamId: "o-1" }
      // The default mapping, through the Layer: refused before anything is created.
      const refused = yield* Effect.flatMap(
        EventStore.EventStore,
        (store) => Tenant.with(store.append({ ...stream, events: [event("Created")] }), "Acme Corp")
      ).pipe(
        Effect.provide(PgSchemaPerTenant.layer({ database: { url: db.adminUrl } })),
        Effect.flip
      )
      assert.strictEqual(refused._tag, "InvalidInput")
      assert.include(refused.message, "schemaOf")

      const schemaOf = (tenantId: string): string => {
        if (tenantId === "ghost") throw new Error("unknown tenant")
        if (tenantId === "evil") return "Bad-Name"
        return tenantId.startsWith("small-") ? "shared_small" : `org_${tenantId.toLowerCase().replace(/\W/g, "_")}`
      }
      yield* Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const acme = yield* Tenant.with(store.append({ ...stream, events: [event("Created")] }), "Acme Corp")
        assert.deepStrictEqual([acme.tenantId, acme.version], ["Acme Corp", 1])
        const ghost = yield* Tenant.with(store.append({ ...stream, events: [event("Created")] }), "ghost").pipe(
          Effect.flip
        )
        assert.strictEqual(ghost._tag, "InvalidInput")
        assert.include(ghost.message, "unknown tenant")
        const evil = yield* Tenant.with(store.append({ ...stream, events: [event("Created")] }), "evil").pipe(
          Effect.flip
        )
        assert.strictEqual(evil._tag, "InvalidInput")
        assert.include(evil.message, "Bad-Name")
        // Two tenants mapped to one schema are still two streams, told apart by the tenant column.
        for (const tenant of ["small-1", "small-2"]) {
          const appended = yield* Tenant.with(store.append({ ...stream, events: [event("Created")] }), tenant)
          assert.strictEqual(appended.version, 1)
          const feed = yield* Tenant.with(feedOf(1), tenant)
          assert.deepStrictEqual(feed.map((e) => e.tenantId), [tenant])
        }
      }).pipe(Effect.provide(PgSchemaPerTenant.layer({ database: { url: db.adminUrl }, schemaOf })))
      const rows = yield* asAdmin(db.adminUrl, (sql) =>
        sql<{ schema: string; tenant_id: string }>`
          SELECT 'org_acme_corp' AS schema, tenant_id FROM org_acme_corp.events
          UNION ALL SELECT 'shared_small', tenant_id FROM shared_small.events
          ORDER BY 1, 2`)
      assert.deepStrictEqual(rows.map((r) => [r.schema, r.tenant_id]), [
        ["org_acme_corp", "Acme Corp"],
        ["shared_small", "small-1"],
        ["shared_small", "small-2"]
      ])
    }).pipe(Effect.scoped))

  it.live("CommandHandler through the Layer: each tenant's aggregate and snapshot in its schema", () =>
    Effect.gen(function*() {
      const db = yield* PgTest.freshDatabase({ migrate: false })
      yield* Effect.gen(function*() {
        const handler = yield* CommandHandler.make(Order)
        yield* Tenant.with(handler.handle("o-1", { _tag: "Create", customer: "alice" }), "a")
        const created = yield* Tenant.with(handler.handle("o-1", { _tag: "Create", customer: "bob" }), "b")
        assert.strictEqual(created.version, 1)
        yield* Tenant.with(handler.handle("o-1", { _tag: "Ship" }), "a")
        // B never sees A's order o-2.
        yield* Tenant.with(handler.handle("o-2", { _tag: "Create", customer: "carol" }), "a")
        const refused = yield* Tenant.with(handler.handle("o-2", { _tag: "Ship" }), "b").pipe(Effect.flip)
        assert.strictEqual(refused._tag, "OrderNotFound")
        const a1 = yield* Tenant.with(handler.load("o-1"), "a")
        const b1 = yield* Tenant.with(handler.load("o-1"), "b")
        assert.deepStrictEqual([a1.state, a1.version, b1.state, b1.version], [
          { status: "shipped", customer: "alice" },
          2,
          { status: "open", customer: "bob" },
          1
        ])
      }).pipe(Effect.provide(PgSchemaPerTenant.layer({ database: { url: db.adminUrl } })))
      const snapshots = yield* asAdmin(
        db.adminUrl,
        (sql) =>
          sql<{ schema: string; tenant_id: string; stream_id: string; version: number }>`
          SELECT 'tenant_a' AS schema, tenant_id, stream_id, version FROM tenant_a.snapshots
          UNION ALL SELECT 'tenant_b', tenant_id, stream_id, version FROM tenant_b.snapshots
          ORDER BY 1, 3`
      )
      assert.deepStrictEqual(snapshots.map((r) => [r.schema, r.tenant_id, r.stream_id, r.version]), [
        ["tenant_a", "a", "o-1", 2],
        ["tenant_a", "a", "o-2", 1],
        ["tenant_b", "b", "o-1", 1]
      ])
    }).pipe(Effect.scoped))

  it.live("a projection per tenant reads its schema's feed, keeps its checkpoint there, and handles in its tenant", () =>
    Effect.gen(function*() {
      const db = yield* PgTest.freshDatabase({ migrate: false })
      const id = "order-list"
      yield* Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const checkpoints = yield* CheckpointStore.CheckpointStore
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE seen (projection text, ambient text, tenant_id text, event_id uuid PRIMARY KEY)`
        const tenants = ["a", "b"] as const
        // The same projection id once per tenant; its handler's writes and checkpoint commit in one transaction.
        const projections = yield* Effect.forEach(tenants, (tenant) =>
          Tenant.with(
            PgProjection.make({
              id,
              pollInterval: "50 millis",
              handler: (e) =>
                Effect.flatMap(Tenant.current, (ambient) =>
                  sql`INSERT INTO seen VALUES (${tenant}, ${
                    Option.getOrElse(ambient, () =>
                      "-")
                  }, ${e.tenantId}, ${e.eventId}::uuid)`)
            }),
            tenant
          ))
        const fibers = yield* Effect.forEach(projections, (p) => Effect.forkScoped(p.run))
        const last: Record<string, Position.Position> = {}
        const written: Array<string> = []
        for (let i = 0; i < 10; i++) {
          const tenant = tenants[i % 2]!
          const result = yield* Tenant.with(
            store.append({ streamType: "Order", streamId: `o-${i % 3}`, events: [event("Noted", { i })] }),
            tenant
          )
          written.push(`${tenant}|${tenant}|${tenant}|${result.eventIds[0]}`)
          last[tenant] = result.position
        }
        yield* Effect.forEach(projections, (p, i) => p.waitFor(last[tenants[i]!]!).pipe(Effect.timeout("30 seconds")))
        const seen = yield* sql<{ projection: string; ambient: string; tenant_id: string; event_id: string }>`
          SELECT * FROM seen`
        assert.deepStrictEqual(
          seen.map((r) => `${r.projection}|${r.ambient}|${r.tenant_id}|${r.event_id}`).sort(),
          written.slice().sort()
        )
        for (const tenant of tenants) {
          const checkpoint = yield* Tenant.with(checkpoints.get(id), tenant)
          assert.isTrue(Option.isSome(checkpoint), tenant)
        }
        yield* Effect.forEach(fibers, Fiber.interrupt)
      }).pipe(Effect.provide(PgSchemaPerTenant.layer({ database: { url: db.adminUrl } })))
      const stored = yield* asAdmin(
        db.adminUrl,
        (sql) =>
          sql<{ schema: string; subscription_id: string; tenant_id: string }>`
          SELECT 'tenant_a' AS schema, subscription_id, tenant_id FROM tenant_a.checkpoints
          UNION ALL SELECT 'tenant_b', subscription_id, tenant_id FROM tenant_b.checkpoints
          ORDER BY 1`
      )
      assert.deepStrictEqual(stored.map((r) => [r.schema, r.subscription_id, r.tenant_id]), [
        ["tenant_a", id, "a"],
        ["tenant_b", id, "b"]
      ])
    }).pipe(Effect.scoped))

  it.live("feed hints route too: a tenant's subscriber listens on its schema's channel", () =>
    Effect.gen(function*() {
      const db = yield* PgTest.freshDatabase({ migrate: false })
      yield* Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const notifier = yield* FeedNotifier.FeedNotifier
        const hintsA = yield* Tenant.with(notifier.subscribe, "a")
        const hintsB = yield* Tenant.with(notifier.subscribe, "b")
        // Poked until woken: the LISTEN starts in the background, so the first pokes may come before it.
        const wokenBy = <E>(hints: Queue.Dequeue<void>, poke: Effect.Effect<unknown, E>) =>
          Effect.raceFirst(
            Queue.take(hints),
            Effect.zipRight(Effect.repeat(poke, Schedule.spaced("100 millis")), Effect.never)
          ).pipe(Effect.timeout("15 seconds"))
        yield* wokenBy(hintsA, Tenant.with(store.append({ streamType: "T", streamId: "1", events: [event("E")] }), "a"))
        yield* wokenBy(
          hintsB,
          asAdmin(db.adminUrl, (sql) => sql`SELECT pg_notify('tenant_b_events', '1')`)
        )
      }).pipe(
        Effect.scoped,
        Effect.provide(PgSchemaPerTenant.layer({ database: { url: db.adminUrl } }))
      )
    }).pipe(Effect.scoped))

  it.live("concurrent first use of a new tenant: 8 fibers in one process and 2 processes migrate it once, without error", () =>
    Effect.gen(function*() {
      const db = yield* PgTest.freshDatabase({ migrate: false })
      // The build of a schema's stack logs once when it is ready.
      const readyLines: Array<string> = []
      const logger = Logger.make(({ message }) => {
        const text = Array.isArray(message) ? message.join(" ") : String(message)
        if (text.startsWith("PgSchemaPerTenant: schema")) readyLines.push(text)
      })
      const appendMany = (tenant: string, fibers: number) =>
        Effect.flatMap(EventStore.EventStore, (store) =>
          Effect.forEach(
            Array.from({ length: fibers }, (_, i) => i),
            (i) => Tenant.with(store.append({ streamType: "T", streamId: `s-${i}`, events: [event("E")] }), tenant),
            { concurrency: "unbounded" }
          ))
      const layer = () => PgSchemaPerTenant.layer({ database: { url: db.adminUrl, maxConnections: 8 } })
      const inOne = yield* appendMany("fresh", 8).pipe(
        Effect.provide(layer()),
        Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
        Logger.withMinimumLogLevel(LogLevel.Debug)
      )
      assert.deepStrictEqual(inOne.map((r) => r.version), Array(8).fill(1))
      assert.deepStrictEqual(readyLines, ["PgSchemaPerTenant: schema tenant_fresh ready"])
      // Two Layers, as two processes would: PgMigrations' advisory lock per schema serialises their migrations.
      const inTwo = yield* Effect.all([
        appendMany("twice", 4).pipe(Effect.provide(layer())),
        appendMany("twice", 4).pipe(Effect.provide(layer()))
      ], { concurrency: "unbounded" })
      assert.strictEqual(inTwo.flat().length, 8)
      const counts = yield* asAdmin(
        db.adminUrl,
        (sql) =>
          sql<{ schema: string; events: number; migrations: number; distinct_migrations: number }>`
          SELECT 'tenant_fresh' AS schema, (SELECT count(*)::integer FROM tenant_fresh.events) AS events,
            count(*)::integer AS migrations, count(DISTINCT migration_id)::integer AS distinct_migrations
            FROM tenant_fresh.eventfold_migrations
          UNION ALL
          SELECT 'tenant_twice', (SELECT count(*)::integer FROM tenant_twice.events),
            count(*)::integer, count(DISTINCT migration_id)::integer FROM tenant_twice.eventfold_migrations`
      )
      const expected = PgMigrations.migrations.length
      assert.deepStrictEqual(counts.map((r) => [r.schema, r.events, r.migrations, r.distinct_migrations]), [
        ["tenant_fresh", 8, expected, expected],
        ["tenant_twice", 8, expected, expected]
      ])
    }).pipe(Effect.scoped))

  it.live("a first use inside a transaction that rolls back migrates outside it: the tenant works afterwards", () =>
    Effect.gen(function*() {
      const db = yield* PgTest.freshDatabase({ migrate: false })
      yield* Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const append = Tenant.with(store.append({ streamType: "T", streamId: "1", events: [event("E")] }), "late")
        const rolledBack = yield* PgTransaction.withTransaction(
          Effect.zipRight(append, Effect.fail("roll back" as const))
        ).pipe(Effect.flip)
        assert.strictEqual(rolledBack, "roll back")
        const appended = yield* append
        assert.strictEqual(appended.version, 1)
      }).pipe(Effect.provide(PgSchemaPerTenant.layer({ database: { url: db.adminUrl } })))
    }).pipe(Effect.scoped))

  it.live("row-level security as defence in depth inside each schema, as the least-privilege role", () =>
    Effect.gen(function*() {
      const db = yield* PgTest.freshDatabase({ migrate: false })
      for (const schema of ["tenant_a", "tenant_b"]) {
        yield* asAdmin(db.adminUrl, () =>
          PgMigrations.run({ schema }).pipe(
            Effect.zipRight(PgMigrations.enableRowLevelSecurity({ schema })),
            Effect.zipRight(PgRoles.grantApplicationRole({ schema, role: db.role }))
          ))
      }
      yield* Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const checkpoints = yield* CheckpointStore.CheckpointStore
        const stream = { streamType: "Order", streamId: "o-1" }
        for (const tenant of ["a", "b"]) {
          const appended = yield* Tenant.with(store.append({ ...stream, events: [event("Created")] }), tenant)
          assert.strictEqual(appended.version, 1)
          const read = yield* Tenant.with(store.readStream(stream), tenant)
          assert.deepStrictEqual(read.map((e) => e.tenantId), [tenant])
          const feed = yield* Tenant.with(feedOf(1), tenant)
          assert.deepStrictEqual(feed.map((e) => e.tenantId), [tenant])
          const claimed = yield* Tenant.with(
            checkpoints.claim({ subscriptionId: "p", owner: "me", lease: "1 second", initial: appended.position }),
            tenant
          )
          assert.isTrue(Option.isSome(claimed))
        }
      }).pipe(
        Effect.provide(
          PgSchemaPerTenant.layer({ database: { url: db.url }, migrations: "verify", rowLevelSecurity: true })
        )
      )
    }).pipe(Effect.scoped))

  it.live("verify as the least-privilege role: tenants migrated ahead work, others fail typed until provisioned", () =>
    Effect.gen(function*() {
      const db = yield* PgTest.freshDatabase({ migrate: false })
      yield* provision(db, "tenant_a")
      const stream = { streamType: "Order", streamId: "o-1" }
      yield* Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const a = yield* Tenant.with(store.append({ ...stream, events: [event("Created")] }), "a")
        assert.deepStrictEqual([a.tenantId, a.version], ["a", 1])
        const missing = yield* Tenant.with(store.append({ ...stream, events: [event("Created")] }), "c").pipe(
          Effect.flip
        )
        assert.isTrue(missing._tag === "StoreError" && missing.kind === "schema", missing.message)
        assert.include(missing.message, `schema "tenant_c" is not migrated`)
        // The failure is not kept: once provisioned, the tenant works in the same process.
        yield* provision(db, "tenant_c")
        const c = yield* Tenant.with(store.append({ ...stream, events: [event("Created")] }), "c")
        assert.deepStrictEqual([c.tenantId, c.version], ["c", 1])
      }).pipe(
        Effect.provide(PgSchemaPerTenant.layer({ database: { url: db.url }, migrations: "verify" }))
      )
      // "run" needs DDL rights: the application role may not create a tenant's schema, and is told so.
      const denied = yield* Effect.flatMap(
        EventStore.EventStore,
        (store) => Tenant.with(store.append({ ...stream, events: [event("Created")] }), "d")
      ).pipe(
        Effect.provide(PgSchemaPerTenant.layer({ database: { url: db.url } })),
        Effect.flip
      )
      assert.isTrue(denied._tag === "StoreError" && denied.code === "42501", denied.message)
      assert.include(denied.message, "owner")
    }).pipe(Effect.scoped))
})
