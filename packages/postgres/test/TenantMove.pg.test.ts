// PgTenantMove: one tenant's streams copied from one store to another, database to database and schema to schema in
// one database, with writers of that tenant and of another one running throughout; a move interrupted midway and
// resumed; refusals, a verification that catches a difference, and the source's block lifted again. The mover
// connects as the admin (the tables' owner); every writer as the least-privilege application role.
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import * as Aggregate from "@eventfold/core/Aggregate"
import * as CommandHandler from "@eventfold/core/CommandHandler"
import * as Decider from "@eventfold/core/Decider"
import * as Errors from "@eventfold/core/Errors"
import * as EventStore from "@eventfold/core/EventStore"
import * as ExpectedVersion from "@eventfold/core/ExpectedVersion"
import type * as SnapshotStore from "@eventfold/core/SnapshotStore"
import * as Tenant from "@eventfold/core/Tenant"
import {
  PgDatabase,
  PgEventStore,
  PgMigrations,
  PgRoles,
  PgSnapshotStore,
  PgTenantMove,
  PgTest
} from "@eventfold/postgres"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"

const ACME = "acme"
const OTHER = "other"

const connect = (url: string, maxConnections: number) =>
  Effect.map(Layer.build(PgDatabase.layer({ url, maxConnections })), Context.get(PgClient.PgClient))

/** One eventfold store: its schema in a test database, as the application role (stores) and as the admin. */
interface Store {
  readonly schema: string
  readonly app: PgClient.PgClient
  readonly admin: PgClient.PgClient
  readonly events: EventStore.EventStore["Type"]
  readonly snapshots: SnapshotStore.SnapshotStore["Type"]
  /** The mover's view: the admin's client. */
  readonly endpoint: PgTenantMove.Endpoint
}

const open = (
  database: PgTest.TestDatabase,
  schema = "eventfold"
): Effect.Effect<Store, Errors.StoreError | Errors.InvalidInput, Scope.Scope> =>
  Effect.gen(function*() {
    const app = yield* connect(database.url, 12)
    const admin = yield* connect(database.adminUrl, 4)
    const events = yield* PgEventStore.make({ schema, notify: false }).pipe(
      Effect.provideService(SqlClient.SqlClient, app)
    )
    const snapshots = yield* PgSnapshotStore.make({ schema }).pipe(Effect.provideService(SqlClient.SqlClient, app))
    return { schema, app, admin, events, snapshots, endpoint: { database: admin, schema } }
  })

/** A second eventfold schema in the same database, migrated by the admin and granted to the application role. */
const addSchema = (database: PgTest.TestDatabase, schema: string) =>
  Effect.gen(function*() {
    const admin = yield* connect(database.adminUrl, 1)
    yield* Effect.zipRight(PgMigrations.run({ schema }), PgRoles.grantApplicationRole({ schema, role: database.role }))
      .pipe(Effect.provideService(SqlClient.SqlClient, admin))
    return yield* open(database, schema)
  })

const append = (store: Store, tenantId: string, streamId: string, count: number, from = 0) =>
  store.events.append({
    tenantId,
    streamType: "Order",
    streamId,
    events: Array.from({ length: count }, (_, i) => ({
      type: i % 3 === 0 ? "OrderPlaced" : "ItemAdded",
      schemaVersion: 1 + (i % 2),
      payload: {
        n: from + i,
        sku: `sku-${(from + i) % 17}`,
        note: "ünïcødé \"quoted\" \\ slash",
        nested: { a: [1, 2.5] }
      },
      metadata: { correlationId: `corr-${from + i}`, actorId: `user-${i % 5}`, headers: { source: "test" } }
    }))
  })

/** `streams` streams of `perStream` events each, in appends of 25, plus one snapshot. */
const populate = (store: Store, tenantId: string, streams: number, perStream: number) =>
  Effect.gen(function*() {
    yield* Effect.forEach(
      Array.from({ length: streams }, (_, s) => s),
      (s) =>
        Effect.forEach(
          Array.from({ length: Math.ceil(perStream / 25) }, (_, c) => c),
          (c) => append(store, tenantId, `${tenantId}-${s}`, Math.min(25, perStream - c * 25), c * 25),
          { discard: true }
        ),
      { concurrency: 4, discard: true }
    )
    yield* store.snapshots.save({
      tenantId,
      streamType: "Order",
      streamId: `${tenantId}-0`,
      version: Math.min(100, perStream),
      schemaVersion: 3,
      state: { total: 12.5, lines: [{ sku: "a", qty: 2 }] }
    })
  })

/** An event whose payload JavaScript cannot hold (a 23-digit integer, a numeric's scale), through append_events. */
const appendPrecise = (store: Store, tenantId: string) =>
  store.app`SELECT status FROM ${store.app(`${store.schema}.append_events`)}(${tenantId}, 'Order', 'precise', 'any',
    0, false, ARRAY[gen_random_uuid()], ARRAY['Measured'], ARRAY[2],
    ARRAY['{"big": 12345678901234567890123, "f": 1.10}'::jsonb], ARRAY['{"actorId": "probe"}'::jsonb],
    false, false)`

/** Every stored column of the tenant's events, streams and snapshots, as text, in one order on both sides. */
const dump = (store: Store, tenantId: string) =>
  Effect.all({
    events: store.admin<Record<string, unknown>>`SELECT event_id::text, stream_type, stream_id, version, event_type,
        schema_version, payload::text, metadata::text, to_char(recorded_at AT TIME ZONE 'UTC',
        'YYYY-MM-DD HH24:MI:SS.US') AS recorded_at, actor_id, correlation_id, causation_id
      FROM ${store.admin(`${store.schema}.events`)} WHERE tenant_id = ${tenantId}
      ORDER BY stream_type, stream_id, version`,
    streams: store.admin<Record<string, unknown>>`SELECT stream_type, stream_id, version, archived, deleted,
        to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS created_at
      FROM ${store.admin(`${store.schema}.streams`)} WHERE tenant_id = ${tenantId} ORDER BY stream_type, stream_id`,
    snapshots: store.admin<Record<string, unknown>>`SELECT stream_type, stream_id, version, schema_version,
        state::text, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS created_at
      FROM ${store.admin(`${store.schema}.snapshots`)} WHERE tenant_id = ${tenantId} ORDER BY stream_type, stream_id`
  })

const moveRow = (store: Store, tenantId: string) =>
  store.admin<{ readonly status: string; readonly events_copied: string; readonly checksum: string | null }>`SELECT
      status, events_copied::text AS events_copied, checksum
    FROM ${store.admin(`${store.schema}.tenant_moves`)} WHERE tenant_id = ${tenantId}`.pipe(
    Effect.map((rows) => Option.fromNullable(rows[0]))
  )

const countEvents = (store: Store, tenantId: string) =>
  store.admin<{ readonly events: number; readonly ids: number }>`SELECT count(*)::integer AS events,
      count(DISTINCT event_id)::integer AS ids
    FROM ${store.admin(`${store.schema}.events`)} WHERE tenant_id = ${tenantId}`.pipe(Effect.map((rows) => rows[0]!))

/** Asserts both stores hold the same tenant, column for column. */
const assertIdentical = (source: Store, target: Store, tenantId: string) =>
  Effect.gen(function*() {
    const [fromSource, fromTarget] = yield* Effect.all([dump(source, tenantId), dump(target, tenantId)])
    assert.isAbove(fromSource.events.length, 0)
    assert.deepStrictEqual(fromTarget.events, fromSource.events)
    assert.deepStrictEqual(fromTarget.streams, fromSource.streams)
    assert.deepStrictEqual(fromTarget.snapshots, fromSource.snapshots)
  })

const blocked = (store: Store, tenantId: string) =>
  Effect.flip(append(store, tenantId, `${tenantId}-after`, 1)).pipe(
    Effect.map((error) => {
      assert.strictEqual(error._tag, "TenantUnavailable")
      return error instanceof Errors.TenantUnavailable ? error.reason : ""
    })
  )

/** Appends one event at a time for a tenant until told to stop; returns the acknowledged event ids. */
const writer = (store: Store, tenantId: string, stop: Deferred.Deferred<void>) =>
  Effect.gen(function*() {
    const acknowledged: Array<string> = []
    let n = 0
    while (!(yield* Deferred.isDone(stop))) {
      const result = yield* append(store, tenantId, `${tenantId}-live-${n % 3}`, 1, n)
      acknowledged.push(...result.eventIds)
      n++
    }
    return acknowledged
  })

/** Appends for a tenant until its writes are refused (TenantUnavailable); returns the acknowledged event ids. */
const writerUntilBlocked = (store: Store, tenantId: string) =>
  Effect.gen(function*() {
    const acknowledged: Array<string> = []
    for (let n = 0;; n++) {
      const result = yield* Effect.either(append(store, tenantId, `${tenantId}-live-${n % 3}`, 1, n))
      if (result._tag === "Left") {
        if (result.left._tag === "TenantUnavailable") return acknowledged
        return yield* result.left
      }
      acknowledged.push(...result.right.eventIds)
      yield* Effect.sleep("2 millis")
    }
  })

const presentIn = (store: Store, ids: ReadonlyArray<string>) =>
  store.admin<{ readonly found: number }>`SELECT count(*)::integer AS found
    FROM ${store.admin(`${store.schema}.events`)} WHERE event_id = ANY(${ids}::uuid[])`.pipe(
    Effect.map((rows) => rows[0]!.found)
  )

/** Polls until a backend waits for an advisory lock (an append held back by the cut-over). */
const someoneWaitsForTheTenantLock = (admin: PgClient.PgClient) =>
  admin<{ readonly waiting: number }>`SELECT count(*)::integer AS waiting FROM pg_locks
    WHERE locktype = 'advisory' AND NOT granted`.pipe(
    Effect.repeat({ schedule: Schedule.spaced("10 millis"), until: (rows) => rows[0]!.waiting > 0 }),
    Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("no append waited for the cut-over") })
  )

class Ticked extends Schema.TaggedClass<Ticked>()("Ticked", { n: Schema.Number }) {}

describe("PgTenantMove", () => {
  it.scopedLive(
    "database to database, online: identical copy, other tenants untouched, only the moved tenant waits at the cut-over",
    () =>
      Effect.gen(function*() {
        const source = yield* open(yield* PgTest.freshDatabase())
        const target = yield* open(yield* PgTest.freshDatabase())
        yield* populate(source, ACME, 8, 250)
        yield* appendPrecise(source, ACME)
        yield* populate(source, OTHER, 3, 40)

        const stopOther = yield* Deferred.make<void>()
        const otherWriter = yield* Effect.fork(writer(source, OTHER, stopOther))
        const acmeWriter = yield* Effect.fork(writerUntilBlocked(source, ACME))
        const duringCopy: Array<string> = []
        let otherDuringCutOver = false
        const waitingAppend = yield* Deferred.make<
          Fiber.RuntimeFiber<EventStore.AppendResult, EventStore.AppendError>
        >()

        const summary = yield* PgTenantMove.run({
          tenantId: ACME,
          source: source.endpoint,
          target: target.endpoint,
          batchSize: 100,
          onBatch: (progress) =>
            progress.phase === "online" && progress.batch === 2
              // Appends acknowledged while the online copy runs.
              ? Effect.forEach([0, 1, 2], (i) => append(source, ACME, "acme-during", 2, i * 2)).pipe(
                Effect.map((results) => duringCopy.push(...results.flatMap((r) => r.eventIds))),
                Effect.orDie
              )
              : Effect.void,
          onCutOver: Effect.gen(function*() {
            // An append of the moved tenant waits for the cut-over; the other tenant's appends go through meanwhile.
            const fiber = yield* Effect.fork(append(source, ACME, "acme-waiting", 1))
            yield* Deferred.succeed(waitingAppend, fiber)
            yield* someoneWaitsForTheTenantLock(source.admin)
            yield* append(source, OTHER, "other-during-cut-over", 1)
            otherDuringCutOver = true
            assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)), "the moved tenant's append must wait")
          }).pipe(Effect.orDie)
        })

        assert.isTrue(otherDuringCutOver)
        // The append that waited at the cut-over saw the block.
        const waited = yield* Effect.flip(Fiber.join(yield* Deferred.await(waitingAppend)))
        assert.strictEqual(waited._tag, "TenantUnavailable")
        assert.strictEqual(yield* blocked(source, ACME), "moved")
        const acknowledged = yield* Fiber.join(acmeWriter)
        yield* Deferred.succeed(stopOther, undefined)
        const otherAppends = yield* Fiber.join(otherWriter)
        assert.isAbove(otherAppends.length, 0)

        // Every acknowledged append of the moved tenant is in the target, and the copy is identical.
        assert.lengthOf(duringCopy, 6)
        assert.strictEqual(yield* presentIn(target, duringCopy), duringCopy.length)
        assert.strictEqual(yield* presentIn(target, acknowledged), acknowledged.length)
        yield* assertIdentical(source, target, ACME)
        const counts = yield* countEvents(target, ACME)
        assert.strictEqual(counts.events, 2001 + 6 + acknowledged.length)
        assert.strictEqual(counts.ids, counts.events)
        assert.deepInclude(summary, { tenantId: ACME, events: counts.events, snapshots: 1, resumed: false })
        assert.strictEqual(summary.streams, 8 + 1 + 1 + Math.min(acknowledged.length, 3))
        assert.isAtLeast(summary.batches, 21)
        const precise = yield* target.admin<{ readonly payload: string }>`SELECT payload::text AS payload
          FROM eventfold.events WHERE tenant_id = ${ACME} AND stream_id = 'precise'`
        assert.strictEqual(precise[0]?.payload, "{\"f\": 1.10, \"big\": 12345678901234567890123}")

        // The other tenant stayed where it was.
        assert.deepStrictEqual(yield* countEvents(target, OTHER), { events: 0, ids: 0 })
        assert.deepStrictEqual(yield* dump(target, OTHER), { events: [], streams: [], snapshots: [] })

        // The move is recorded as done, with the checksum; the target accepts the tenant's writes.
        const move = yield* moveRow(target, ACME)
        assert.deepStrictEqual(Option.map(move, (m) => [m.status, m.checksum]), Option.some(["done", summary.checksum]))
        const next = yield* target.events.append({
          tenantId: ACME,
          streamType: "Order",
          streamId: "acme-0",
          expectedVersion: ExpectedVersion.Exact(250),
          events: [{ type: "ItemAdded", payload: { n: 250 } }]
        })
        assert.strictEqual(next.version, 251)

        // A second run finds the move done and changes nothing.
        const again = yield* PgTenantMove.run({ tenantId: ACME, source: source.endpoint, target: target.endpoint })
        assert.deepInclude(again, { checksum: summary.checksum, events: summary.events, batches: 0, resumed: true })

        // A command handler hands the refusal over at once: it is not a conflict to retry.
        let decisions = 0
        const Counter = Aggregate.make({
          name: "Counter",
          decider: Decider.make<number, { readonly _tag: "Tick" }, Ticked>({
            initialState: 0,
            evolve: (n) => n + 1,
            decide: () =>
              Effect.sync(() => {
                decisions++
                return [new Ticked({ n: decisions })]
              })
          }),
          events: Ticked
        })
        const handler = yield* CommandHandler.make(Counter).pipe(
          Effect.provideService(EventStore.EventStore, source.events)
        )
        const refused = yield* Effect.flip(handler.handle("counter-1", { _tag: "Tick" }).pipe(Tenant.with(ACME)))
        assert.strictEqual(refused._tag, "TenantUnavailable")
        assert.strictEqual(decisions, 1)

        // The source takes the tenant back: the old "done" no longer stands for a move out of it.
        assert.isTrue(yield* PgTenantMove.unblock({ tenantId: ACME, source: source.endpoint }))
        const stale = yield* Effect.flip(
          PgTenantMove.run({ tenantId: ACME, source: source.endpoint, target: target.endpoint })
        )
        assert.strictEqual(stale._tag, "TenantMoveConflict")
      }),
    120_000
  )

  it.scopedLive(
    "schema to schema, interrupted twice midway: the rerun resumes and the copy is identical",
    () =>
      Effect.gen(function*() {
        const database = yield* PgTest.freshDatabase()
        const source = yield* open(database)
        const target = yield* addSchema(database, "moved_in")
        yield* populate(source, ACME, 5, 400)
        yield* populate(source, OTHER, 2, 30)

        // Interrupted right after its third batch committed.
        const first = yield* Effect.exit(PgTenantMove.run({
          tenantId: ACME,
          source: source.endpoint,
          target: target.endpoint,
          batchSize: 100,
          onBatch: (progress) => progress.batch === 3 ? Effect.interrupt : Effect.void
        }))
        assert.isTrue(Exit.isInterrupted(first))
        const afterFirst = yield* moveRow(target, ACME)
        assert.deepStrictEqual(
          Option.map(afterFirst, (m) => [m.status, m.events_copied]),
          Option.some(["copying", "300"])
        )
        assert.strictEqual((yield* countEvents(target, ACME)).events, 300)
        // Until the move is done, the target refuses the tenant's own writes; the source still takes them.
        assert.strictEqual(yield* blocked(target, ACME), "moving")
        yield* append(source, ACME, "acme-between", 3)

        // Interrupted from outside wherever it is once its third batch committed: reading, or inside a batch's
        // transaction, which rolls back.
        const thirdBatch = yield* Deferred.make<void>()
        const second = yield* Effect.fork(
          PgTenantMove.run({
            tenantId: ACME,
            source: source.endpoint,
            target: target.endpoint,
            batchSize: 50,
            onBatch: (progress) => progress.batch === 3 ? Deferred.succeed(thirdBatch, undefined) : Effect.void
          })
        )
        yield* Deferred.await(thirdBatch)
        yield* Fiber.interrupt(second)
        const copied = yield* moveRow(target, ACME)
        const counts = yield* countEvents(target, ACME)
        assert.strictEqual(String(counts.events), Option.getOrThrow(copied).events_copied)
        assert.isBelow(counts.events, 2003)

        const summary = yield* PgTenantMove.run({
          tenantId: ACME,
          source: source.endpoint,
          target: target.endpoint,
          batchSize: 100
        })
        assert.deepInclude(summary, { events: 2003, streams: 6, resumed: true })
        assert.strictEqual(summary.batches, Math.ceil((2003 - counts.events) / 100))
        yield* assertIdentical(source, target, ACME)
        assert.deepStrictEqual(yield* countEvents(target, ACME), { events: 2003, ids: 2003 })
        assert.deepStrictEqual(yield* countEvents(target, OTHER), { events: 0, ids: 0 })
        assert.strictEqual(yield* blocked(source, ACME), "moved")
        // Another tenant of the same database is not blocked in either schema.
        yield* append(source, OTHER, "other-after", 1)
        yield* append(target, "third", "third-0", 1)
      }),
    120_000
  )

  it.scopedLive(
    "the cut-over waits out a repeatable-read transaction older than the block, which can still append; on timeout it lifts the block",
    () =>
      Effect.gen(function*() {
        const source = yield* open(yield* PgTest.freshDatabase())
        const target = yield* open(yield* PgTest.freshDatabase())
        yield* populate(source, ACME, 2, 50)

        // A transaction whose snapshot predates any block: it cannot see one, so append_events lets it through.
        const snapshotTaken = yield* Deferred.make<number>()
        const mayAppend = yield* Deferred.make<void>()
        const mayCommit = yield* Deferred.make<void>()
        const old = yield* Effect.fork(
          Effect.gen(function*() {
            yield* source.app`SET TRANSACTION ISOLATION LEVEL REPEATABLE READ`
            const [me] = yield* source.app<{ readonly pid: number }>`SELECT pg_backend_pid() AS pid`
            yield* Deferred.succeed(snapshotTaken, me!.pid)
            yield* Deferred.await(mayAppend)
            const appended = yield* append(source, ACME, "acme-repeatable-read", 2)
            yield* Deferred.await(mayCommit)
            return appended
          }).pipe(source.app.withTransaction)
        )
        const pid = yield* Deferred.await(snapshotTaken)

        // Bounded: the old transaction stays open, so the move gives up and lifts its block again.
        const timedOut = yield* Effect.flip(PgTenantMove.run({
          tenantId: ACME,
          source: source.endpoint,
          target: target.endpoint,
          drainTimeout: "300 millis"
        }))
        assert.strictEqual(timedOut._tag, "TenantMoveDrainTimeout")
        assert.include(timedOut._tag === "TenantMoveDrainTimeout" ? timedOut.backends : [], pid)
        yield* append(source, ACME, "acme-0", 1)
        assert.deepStrictEqual(Option.map(yield* moveRow(target, ACME), (m) => m.status), Option.some("copying"))

        // Unbounded: once the block is committed, the old transaction appends (unaware of it) and the move waits.
        const move = yield* Effect.fork(
          PgTenantMove.run({
            tenantId: ACME,
            source: source.endpoint,
            target: target.endpoint,
            drainTimeout: "1 minute"
          })
        )
        yield* moveRow(target, ACME).pipe(
          Effect.repeat({
            schedule: Schedule.spaced("10 millis"),
            until: (row) => Option.isSome(row) && row.value.status === "cut-over"
          })
        )
        assert.strictEqual(yield* blocked(source, ACME), "moved")
        yield* Deferred.succeed(mayAppend, undefined)
        const late = yield* Fiber.join(old).pipe(Effect.fork)
        // Give the move every chance to finish early: it must not, while that transaction is open.
        yield* Effect.sleep("300 millis")
        assert.isTrue(Option.isNone(yield* Fiber.poll(move)), "the move must wait for the older transaction")
        yield* Deferred.succeed(mayCommit, undefined)
        const appended = yield* Fiber.join(late)
        const summary = yield* Fiber.join(move)

        assert.strictEqual(yield* presentIn(target, appended.eventIds), 2)
        assert.strictEqual(summary.events, 100 + 1 + 2)
        yield* assertIdentical(source, target, ACME)
      }),
    120_000
  )

  it.scopedLive("refusals, a verification that catches a difference, and unblock", () =>
    Effect.gen(function*() {
      const source = yield* open(yield* PgTest.freshDatabase())
      const target = yield* open(yield* PgTest.freshDatabase())
      yield* populate(source, ACME, 3, 60)

      // A role that cannot see other sessions' transactions cannot run the drain safely: refused before anything.
      const unprivileged = yield* Effect.flip(
        PgTenantMove.run({ tenantId: ACME, source: { database: source.app }, target: target.endpoint })
      )
      assert.strictEqual(unprivileged._tag, "StoreError")
      assert.strictEqual(unprivileged._tag === "StoreError" ? unprivileged.kind : undefined, "permission")

      // The target already holds the tenant's rows, which no move accounts for.
      yield* append(target, ACME, "acme-already-here", 1)
      const refused = yield* Effect.flip(
        PgTenantMove.run({ tenantId: ACME, source: source.endpoint, target: target.endpoint })
      )
      assert.strictEqual(refused._tag, "TenantMoveConflict")
      assert.isTrue(Option.isNone(yield* moveRow(target, ACME)))
      yield* append(source, ACME, "acme-0", 1)

      // Same tenant, another target: the copy is changed behind the move's back after the cut-over.
      const other = yield* addSchema(yield* PgTest.freshDatabase(), "eventfold_b")
      const mismatch = yield* Effect.flip(PgTenantMove.run({
        tenantId: ACME,
        source: source.endpoint,
        target: other.endpoint,
        batchSize: 50,
        onCutOver: other.admin.withTransaction(
          Effect.zipRight(
            other.admin`SET LOCAL eventfold.allow_event_mutation = 'on'`,
            other.admin`UPDATE eventfold_b.events SET payload = '{"tampered": true}'
              WHERE tenant_id = ${ACME} AND stream_id = 'acme-1' AND version = 7`
          )
        ).pipe(Effect.orDie)
      }))
      assert.strictEqual(mismatch._tag, "TenantMoveMismatch")
      if (mismatch._tag === "TenantMoveMismatch") {
        assert.deepStrictEqual([mismatch.source.events, mismatch.target.events], [181, 181])
        assert.notStrictEqual(mismatch.source.checksum, mismatch.target.checksum)
      }
      const stuck = yield* moveRow(other, ACME)
      assert.deepStrictEqual(Option.map(stuck, (m) => m.status), Option.some("verifying"))
      assert.strictEqual(yield* blocked(source, ACME), "moved")
      assert.strictEqual(yield* blocked(other, ACME), "moving")
      // The rerun verifies again and still refuses to finish.
      const rerun = yield* Effect.flip(
        PgTenantMove.run({ tenantId: ACME, source: source.endpoint, target: other.endpoint })
      )
      assert.strictEqual(rerun._tag, "TenantMoveMismatch")

      // Aborting: the source takes the tenant's writes again; a second unblock finds nothing to lift.
      assert.isTrue(yield* PgTenantMove.unblock({ tenantId: ACME, source: source.endpoint }))
      assert.isFalse(yield* PgTenantMove.unblock({ tenantId: ACME, source: source.endpoint }))
      const resumedWrite = yield* append(source, ACME, "acme-0", 1)
      assert.strictEqual(resumedWrite.version, 62)
    }), 120_000)
})
