// Subscriptions on real PostgreSQL: the shared contracts, the catch-up/live switch under concurrent appends and a
// held-open transaction, and the error policy of a transactional projection (retry, dead letter, continue).
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, layer } from "@effect/vitest"
import { CheckpointStore, EventStore, Position, RecordedEvent, Subscription } from "@eventfold/core"
import { CheckpointStoreContract, SubscriptionContract } from "@eventfold/core/testing"
import { PgCheckpointStore, PgFeedNotifier, PgProjection, PgTest } from "@eventfold/postgres"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"

const runtime = () =>
  Layer.mergeAll(PgCheckpointStore.layer(), PgFeedNotifier.layer({ probeInterval: "2 seconds" })).pipe(
    Layer.provideMerge(PgTest.layerEventStore())
  )

CheckpointStoreContract.suite(`postgres (${PgTest.serverLabel()})`, runtime())
SubscriptionContract.suite(`postgres (${PgTest.serverLabel()})`, runtime())

const unique = (prefix: string) => `${prefix}-${crypto.randomUUID()}`

// A read-model table is the application's own: its owner creates it, and the tests' least-privilege role writes it.
const asOwner = <A, E>(f: (admin: SqlClient.SqlClient) => Effect.Effect<A, E>) =>
  PgTest.asAdmin(Effect.flatMap(SqlClient.SqlClient, f))

layer(runtime(), { excludeTestServices: true, timeout: "120 seconds" })(
  `Subscription on PostgreSQL (${PgTest.serverLabel()})`,
  (it) => {
    it.effect("catch-up/live switch under 4 concurrent writers and a held-open transaction: every event once, in feed order", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const sql = yield* SqlClient.SqlClient
        const streamType = unique("Switch")
        const append = (writer: number, i: number) =>
          store.append({
            streamType,
            streamId: `w${writer}-${i % 5}`,
            events: Array.from({ length: 1 + (i % 3) }, (_, k) => ({ type: "Wrote", payload: { writer, i, k } }))
          })
        // History to catch up on.
        yield* Effect.forEach(Array.from({ length: 300 }, (_, i) => i), (i) => append(0, i), { discard: true })

        const seen = yield* Ref.make<Array<RecordedEvent.RecordedEvent>>([])
        const firstPage = yield* Deferred.make<void>()
        const subscription = yield* Subscription.make({
          id: unique("sub"),
          streamTypes: [streamType],
          batchSize: 50,
          pollInterval: "200 millis",
          handler: (event) =>
            Effect.zipRight(Ref.update(seen, (all) => [...all, event]), Deferred.succeed(firstPage, undefined))
        })
        yield* Effect.forkScoped(subscription.run)
        yield* Deferred.await(firstPage)

        // A transaction that appends and stays open across the switch to live.
        const heldAppended = yield* Deferred.make<void>()
        const releaseHeld = yield* Deferred.make<void>()
        const held = yield* sql.withTransaction(
          Effect.gen(function*() {
            yield* store.append({ streamType, streamId: "held", events: [{ type: "Held", payload: {} }] })
            yield* Deferred.succeed(heldAppended, undefined)
            yield* Deferred.await(releaseHeld)
          })
        ).pipe(Effect.fork)
        yield* Deferred.await(heldAppended)

        // Four writers append while the subscription catches up and goes live; none of it is visible yet.
        const writers = yield* Effect.forEach(
          [1, 2, 3, 4],
          (writer) =>
            Effect.fork(
              Effect.forEach(Array.from({ length: 60 }, (_, i) => i), (i) => append(writer, i), { discard: true })
            ),
          { concurrency: "unbounded" }
        )
        yield* Fiber.joinAll(writers)
        // Every event committed after the held transaction began is behind it in the feed: the subscription is
        // live and has seen only history.
        yield* Effect.sleep("500 millis")
        const beforeRelease = yield* Ref.get(seen)
        assert.isTrue(beforeRelease.every((e) => (e.payload as { writer?: number }).writer === 0))
        assert.isFalse(beforeRelease.some((e) => e.type === "Held"))

        yield* Deferred.succeed(releaseHeld, undefined)
        yield* Fiber.join(held)
        const last = yield* append(5, 0)
        yield* subscription.waitFor(last.position).pipe(Effect.timeout("30 seconds"))

        const delivered = yield* Ref.get(seen)
        const stored = yield* sql<{ event_id: string }>`SELECT event_id::text FROM eventfold.events
          WHERE stream_type = ${streamType} ORDER BY transaction_id, global_position`
        assert.strictEqual(delivered.length, stored.length)
        assert.deepStrictEqual(delivered.map((e) => e.eventId), stored.map((r) => r.event_id))
        assert.strictEqual(new Set(delivered.map((e) => e.eventId)).size, delivered.length)
        for (let i = 1; i < delivered.length; i++) {
          assert.isTrue(
            Position.isAfter(RecordedEvent.position(delivered[i]!), RecordedEvent.position(delivered[i - 1]!))
          )
        }
        // The held event comes before every event of the writers that committed while it was open.
        const heldIndex = delivered.findIndex((e) => e.type === "Held")
        const firstWriter = delivered.findIndex((e) => ((e.payload as { writer?: number }).writer ?? 0) > 0)
        assert.isTrue(heldIndex >= 0 && heldIndex < firstWriter)
        // Versions inside each stream arrive in order.
        const versions = new Map<string, number>()
        for (const e of delivered) {
          assert.strictEqual(e.version, (versions.get(e.streamId) ?? 0) + 1)
          versions.set(e.streamId, e.version)
        }
      }).pipe(Effect.scoped))

    it.effect("a stale owner's projection transaction cannot move the checkpoint: it rolls back, nothing is applied twice", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const sql = yield* SqlClient.SqlClient
        const streamType = unique("Stale")
        const id = unique("projection")
        const table = `rm_${crypto.randomUUID().replace(/-/g, "").slice(0, 12)}`
        yield* asOwner((admin) =>
          admin`CREATE TABLE ${admin(table)} (event_id uuid PRIMARY KEY, owner text NOT NULL, applied integer NOT NULL)`
        )
        const apply = (owner: string, eventId: string) =>
          sql`INSERT INTO ${sql(table)} (event_id, owner, applied) VALUES (${eventId}::uuid, ${owner}, 1)
            ON CONFLICT (event_id) DO UPDATE SET applied = ${sql(table)}.applied + 1, owner = EXCLUDED.owner`
        let last = Position.start
        for (let n = 1; n <= 3; n++) {
          last = (yield* store.append({ streamType, streamId: "s", events: [{ type: "Item", payload: { n } }] }))
            .position
        }
        const aInside = yield* Deferred.make<void>()
        const releaseA = yield* Deferred.make<void>()
        // A's lease outlives the test, so only the checkpoint's compare-and-set can stop it.
        const a = yield* PgProjection.make({
          id,
          owner: "a",
          lease: "5 minutes",
          streamTypes: [streamType],
          handler: (event) =>
            Effect.zipRight(
              Effect.zipRight(Deferred.succeed(aInside, undefined), Deferred.await(releaseA)),
              apply("a", event.eventId)
            )
        })
        yield* Effect.forkScoped(a.run)
        yield* Deferred.await(aInside)
        // A is inside its page transaction. Ownership moves to B (as after A's lease expired), and B projects.
        yield* sql`UPDATE eventfold.checkpoints SET owner = 'b' WHERE subscription_id = ${id}`
        const b = yield* PgProjection.make({
          id,
          owner: "b",
          lease: "5 minutes",
          pollInterval: "100 millis",
          streamTypes: [streamType],
          handler: (event) => apply("b", event.eventId)
        })
        yield* Effect.forkScoped(b.run)
        yield* b.waitFor(last).pipe(Effect.timeout("20 seconds"))
        yield* Deferred.succeed(releaseA, undefined)
        const standby = Effect.map(a.status, (st) => st.phase === "standby").pipe(
          Effect.filterOrFail((ok) => ok, () => "not yet"),
          Effect.retry(Schedule.spaced("20 millis")),
          Effect.timeout("20 seconds")
        )
        yield* standby
        const rows = yield* sql<{ owner: string; applied: number }>`SELECT owner, applied FROM ${sql(table)}`
        assert.deepStrictEqual(rows, [{ owner: "b", applied: 1 }, { owner: "b", applied: 1 }, {
          owner: "b",
          applied: 1
        }])
        const checkpoint = Option.getOrThrow(yield* Effect.flatMap(CheckpointStore.CheckpointStore, (st) => st.get(id)))
        assert.deepStrictEqual(checkpoint.position, last)
        assert.deepStrictEqual(checkpoint.owner, Option.some("b"))
      }).pipe(Effect.scoped))

    it.effect("a transactional projection retries a failing event, parks it in dead_letters, rolls back its writes, and continues", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const sql = yield* SqlClient.SqlClient
        const streamType = unique("Poison")
        const table = `rm_${crypto.randomUUID().replace(/-/g, "").slice(0, 12)}`
        yield* asOwner((admin) =>
          admin`CREATE TABLE ${admin(table)} (n integer PRIMARY KEY, attempts integer NOT NULL DEFAULT 1)`
        )
        const id = unique("projection")
        const projection = yield* PgProjection.make({
          id,
          streamTypes: [streamType],
          pollInterval: "100 millis",
          errorPolicy: {
            retry: Schedule.spaced("20 millis").pipe(Schedule.intersect(Schedule.recurs(2))),
            onExhausted: "park"
          },
          handler: (event) =>
            Effect.gen(function*() {
              const n = (event.payload as { readonly n: number }).n
              // The write happens, then the handler fails: the transaction must undo it.
              yield* sql`INSERT INTO ${sql(table)} (n) VALUES (${n})`
              if (n === 4) return yield* Effect.fail(`cannot project ${n}`)
            })
        })
        yield* Effect.forkScoped(projection.run)
        let last = Position.start
        for (let n = 1; n <= 8; n++) {
          last =
            (yield* store.append({ streamType, streamId: "p-1", events: [{ type: "Item", payload: { n } }] })).position
        }
        yield* projection.waitFor(last).pipe(Effect.timeout("30 seconds"))

        const rows = yield* sql<{ n: number; attempts: number }>`SELECT n, attempts FROM ${sql(table)} ORDER BY n`
        assert.deepStrictEqual(rows.map((r) => r.n), [1, 2, 3, 5, 6, 7, 8])
        assert.isTrue(rows.every((r) => r.attempts === 1))
        const parked = yield* Effect.flatMap(CheckpointStore.CheckpointStore, (s) => s.deadLetters(id))
        assert.strictEqual(parked.length, 1)
        assert.strictEqual(parked[0]!.attempts, 3)
        assert.strictEqual(parked[0]!.streamType, streamType)
        assert.include(parked[0]!.error, "cannot project 4")
        const dbRows = yield* sql<{ event_type: string; attempts: number }>`SELECT event_type, attempts
          FROM eventfold.dead_letters WHERE subscription_id = ${id}`
        assert.deepStrictEqual(dbRows, [{ event_type: "Item", attempts: 3 }])
        const status = yield* projection.status
        assert.strictEqual(status.parked, 1)
        assert.strictEqual(status.handled, 7)
        assert.strictEqual(status.phase, "live")
        const checkpoint = Option.getOrThrow(yield* Effect.flatMap(CheckpointStore.CheckpointStore, (s) => s.get(id)))
        assert.isFalse(Position.isAfter(last, checkpoint.position))
      }).pipe(Effect.scoped))

    it.effect("a projection rebuild: reset, then waitFor, returns once the read model table holds every event again", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const sql = yield* SqlClient.SqlClient
        const streamType = unique("Rebuild")
        const table = `rm_${crypto.randomUUID().replace(/-/g, "").slice(0, 12)}`
        yield* asOwner((admin) => admin`CREATE TABLE ${admin(table)} (n integer PRIMARY KEY)`)
        const projection = yield* PgProjection.make({
          id: unique("projection"),
          streamTypes: [streamType],
          batchSize: 5,
          pollInterval: "100 millis",
          onReset: sql`DELETE FROM ${sql(table)}`,
          // Not idempotent: a row that survived the reset would fail the replay with a duplicate key.
          handler: (event) => sql`INSERT INTO ${sql(table)} (n) VALUES (${(event.payload as { readonly n: number }).n})`
        })
        yield* Effect.forkScoped(projection.run)
        let last = Position.start
        for (let n = 1; n <= 40; n++) {
          last =
            (yield* store.append({ streamType, streamId: `r-${n % 3}`, events: [{ type: "Item", payload: { n } }] }))
              .position
        }
        const rows = Effect.map(
          sql<{ n: number }>`SELECT n FROM ${sql(table)} ORDER BY n`,
          (all) => all.map((r) => r.n)
        )
        yield* projection.waitFor(last).pipe(Effect.timeout("30 seconds"))
        assert.deepStrictEqual(yield* rows, Array.from({ length: 40 }, (_, i) => i + 1))
        yield* projection.reset
        yield* projection.waitFor(last).pipe(Effect.timeout("30 seconds"))
        assert.deepStrictEqual(yield* rows, Array.from({ length: 40 }, (_, i) => i + 1))
        assert.strictEqual((yield* projection.status).parked, 0)
      }).pipe(Effect.scoped))
  }
)

/** The sessions that ran a LISTEN in this database, other than the caller's. */
const listeners = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql<{ pid: number }>`SELECT pid FROM pg_stat_activity
    WHERE datname = current_database() AND query LIKE 'LISTEN %' AND pid <> pg_backend_pid()`)

/**
 * A live subscription to one stream type that only a hint can wake (it polls once a minute), counting events;
 * returned once the notifier's LISTEN is in place, so no hint of the test's appends can be lost to its setup.
 */
const liveCountingSubscription = (streamType: string) =>
  Effect.gen(function*() {
    yield* listeners.pipe(
      Effect.filterOrFail((rows) => rows.length === 1),
      Effect.retry(Schedule.spaced("20 millis")),
      Effect.timeout("30 seconds")
    )
    const seen = yield* Ref.make(0)
    const subscription = yield* Subscription.make({
      id: unique("sub"),
      streamTypes: [streamType],
      pollInterval: "60 seconds",
      handler: () => Ref.update(seen, (n) => n + 1)
    })
    yield* Effect.forkScoped(subscription.run)
    yield* Effect.map(subscription.status, (s) => s.phase === "live").pipe(
      Effect.filterOrFail((ok) => ok, () => "not live"),
      Effect.retry(Schedule.spaced("20 millis"))
    )
    return { subscription, seen }
  })

layer(
  Layer.mergeAll(PgCheckpointStore.layer(), PgFeedNotifier.layer({ probeInterval: "1 second" })).pipe(
    Layer.provideMerge(PgTest.layerEventStore())
  ),
  { excludeTestServices: true, timeout: "120 seconds" }
)(`PgFeedNotifier (${PgTest.serverLabel()})`, (it) => {
  it.effect("a hint that arrives while another transaction holds the horizon is followed up, not dropped", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const sql = yield* SqlClient.SqlClient
      const streamType = unique("Held")
      const { seen, subscription } = yield* liveCountingSubscription(streamType)
      // A writing transaction stays open while the event commits, so the hint wakes a reader that cannot see it yet.
      const opened = yield* Deferred.make<void>()
      const close = yield* Deferred.make<void>()
      const holder = yield* sql.withTransaction(
        Effect.zipRight(
          sql`SELECT pg_current_xact_id()`,
          Effect.zipRight(Deferred.succeed(opened, undefined), Deferred.await(close))
        )
      ).pipe(Effect.fork)
      yield* Deferred.await(opened)
      const appended = yield* store.append({ streamType, streamId: "a", events: [{ type: "Ping", payload: {} }] })
      yield* Effect.sleep("100 millis")
      assert.strictEqual(yield* Ref.get(seen), 0)
      yield* Deferred.succeed(close, undefined)
      yield* Fiber.join(holder)
      // No second hint comes and polling is a minute away: only the follow-up re-reads can deliver it in time.
      yield* subscription.waitFor(appended.position).pipe(Effect.timeout("5 seconds"))
      assert.strictEqual(yield* Ref.get(seen), 1)
    }).pipe(Effect.scoped))

  it.effect("NOTIFY wakes a live subscription; after its LISTEN connection is killed it listens again", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const sql = yield* SqlClient.SqlClient
      const streamType = unique("Wake")
      // Polling every minute: within the test only a hint can wake the subscription.
      const { seen, subscription } = yield* liveCountingSubscription(streamType)

      const first = yield* store.append({ streamType, streamId: "a", events: [{ type: "Ping", payload: {} }] })
      yield* subscription.waitFor(first.position).pipe(Effect.timeout("10 seconds"))

      const [killed] = yield* listeners
      yield* sql`SELECT pg_terminate_backend(${killed!.pid})`
      // The probe notices within a few seconds and listens on a new connection.
      yield* listeners.pipe(
        Effect.filterOrFail((rows) => rows.length === 1 && rows[0]!.pid !== killed!.pid),
        Effect.retry(Schedule.spaced("50 millis")),
        Effect.timeout("15 seconds")
      )
      yield* Effect.sleep("200 millis")
      const second = yield* store.append({ streamType, streamId: "a", events: [{ type: "Ping", payload: {} }] })
      yield* subscription.waitFor(second.position).pipe(Effect.timeout("10 seconds"))
      assert.strictEqual(yield* Ref.get(seen), 2)
    }).pipe(Effect.scoped))
})
