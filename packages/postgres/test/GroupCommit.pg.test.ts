// Group commit on PostgreSQL with deterministic batches: the store has one batch in flight and a pool of one
// connection, which the test holds in a transaction; a first append goes out alone and waits for the connection
// while the next appends queue, and those then go out as one batch. Each append keeps its own outcome, an append
// whose lock is held elsewhere goes out alone without holding back its batch, a batch that raises falls back to one
// append at a time, and a connection killed mid-batch fails exactly that batch's appends, retryable, writing nothing.
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import * as EventStore from "@eventfold/core/EventStore"
import * as ExpectedVersion from "@eventfold/core/ExpectedVersion"
import { PgConfig, PgDatabase, PgEventStore, PgTest } from "@eventfold/postgres"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import pg from "pg"

const TYPE = "Account"
const lockKey = (streamId: string, tenantId = "default") => `${tenantId}/${TYPE}/${streamId}`

/** An admin connection of its own, in an open transaction, holding the append locks of some streams. */
const holdLocks = (adminUrl: string, streamIds: ReadonlyArray<string>) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const client = new pg.Client({ connectionString: adminUrl })
      await client.connect()
      await client.query("BEGIN")
      for (const id of streamIds) {
        await client.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 7130))", [lockKey(id)])
      }
      return client
    }),
    (client) => Effect.promise(() => client.query("ROLLBACK").then(() => client.end(), () => client.end()))
  )

/**
 * The one backend of the application role waiting for a lock, in a statement started after `since`. pg_locks, not pg_stat_activity's query text: that text
 * can still show the connection's previous statement while the next one waits.
 */
const waiting = (admin: pg.Client, role: string, since = "-infinity") =>
  Effect.promise(() =>
    // In the admin's open transaction pg_stat_activity is read once and kept: discard that copy first.
    admin.query("SELECT pg_stat_clear_snapshot()").then(() =>
      admin.query<{ pid: number }>(
        `SELECT DISTINCT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE NOT l.granted AND a.usename = $1 AND a.query_start > $2::timestamptz`,
        [role, since]
      )
    )
  ).pipe(
    Effect.map((result) => result.rows.map((row) => row.pid)),
    Effect.filterOrFail((pids) => pids.length === 1, () => "not yet" as const),
    Effect.retry({ while: (e) => e === "not yet", schedule: Schedule.spaced("10 millis") }),
    Effect.timeout("10 seconds"),
    Effect.orDie,
    Effect.map((pids) => pids[0]!)
  )

const one = (streamId: string, extra: Partial<EventStore.AppendOptions> = {}): EventStore.AppendOptions => ({
  streamType: TYPE,
  streamId,
  events: [{ type: "Deposited", payload: { amount: 1 } }],
  ...extra
})

interface Harness {
  readonly store: EventStore.EventStore["Type"]
  readonly sql: SqlClient.SqlClient
  readonly connections: number
}

/** The store under test as the application role: one batch in flight, a pool of one connection (or more). */
const storeOn = (
  db: PgTest.TestDatabase,
  settings?: PgConfig.Options,
  options?: PgEventStore.Options,
  connections = 1
) =>
  Layer.build(
    PgEventStore.layer({ groupCommit: { concurrency: 1 }, notify: false, ...options }).pipe(
      Layer.provideMerge(
        Layer.merge(PgDatabase.layer({ url: db.url, maxConnections: connections }), PgConfig.layer(settings))
      )
    )
  ).pipe(
    Effect.map((context): Harness => ({
      store: Context.get(context, EventStore.EventStore),
      sql: Context.get(context, SqlClient.SqlClient),
      connections
    }))
  )

/**
 * Runs `first`, then `rest` as one batch: every connection of the pool is held while `first` goes out alone and
 * waits for one, and `rest` queues meanwhile; `during` runs just before the connections are given back.
 */
const runBatched = <A, E, B, E2>(
  harness: Harness,
  first: Effect.Effect<A, E>,
  rest: Effect.Effect<B, E2>,
  during: Effect.Effect<void> = Effect.void
) =>
  Effect.gen(function*() {
    const release = yield* Deferred.make<void>()
    const holders = yield* Effect.forEach(Array.from({ length: harness.connections }), () =>
      Effect.gen(function*() {
        const held = yield* Deferred.make<void>()
        const holder = yield* Effect.fork(
          harness.sql.withTransaction(Effect.zipRight(Deferred.succeed(held, void 0), Deferred.await(release)))
        )
        yield* Deferred.await(held)
        return holder
      }))
    const firstFiber = yield* Effect.fork(first)
    yield* Effect.sleep("100 millis")
    const restFiber = yield* Effect.fork(rest)
    yield* Effect.sleep("200 millis")
    yield* during
    yield* Deferred.succeed(release, void 0)
    yield* Fiber.joinAll(holders).pipe(Effect.orDie)
    return { first: firstFiber, rest: restFiber }
  })

describe(`group commit (${PgTest.serverLabel()})`, () => {
  it.live("appends queued behind a batch in flight go out together, each with its own outcome", () =>
    Effect.gen(function*() {
      const db = yield* PgTest.freshDatabase()
      const harness = yield* storeOn(db)
      const { store } = harness
      const taken = crypto.randomUUID()
      const repeated = crypto.randomUUID()
      yield* store.append(one("holder", { events: [{ type: "Deposited", payload: { n: 1 }, eventId: taken }] }))
      yield* store.append(one("repeat", { events: [{ type: "Deposited", payload: { n: 1 }, eventId: repeated }] }))
      yield* store.append(
        one("behind", { events: [{ type: "Deposited", payload: { n: 1 } }, { type: "Deposited", payload: { n: 2 } }] })
      )
      const fibers = yield* runBatched(
        harness,
        store.append(one("first")),
        Effect.all(
          [
            store.append(one("fresh-a")),
            store.append(one("behind", { expectedVersion: ExpectedVersion.Exact(1) })),
            store.append(one("dup", { events: [{ type: "Deposited", payload: { n: 2 }, eventId: taken }] })),
            store.append(one("repeat", { events: [{ type: "Deposited", payload: { n: 1 }, eventId: repeated }] })),
            store.append(one("fresh-b", { expectedVersion: ExpectedVersion.NoStream }))
          ].map(Effect.either),
          { concurrency: "unbounded" }
        )
      )
      const first = yield* Fiber.join(fibers.first)
      const [freshA, behind, dup, repeat, freshB] = yield* Fiber.join(fibers.rest)

      assert.isTrue(Either.isRight(freshA!) && Either.isRight(freshB!), "both fresh appends succeed")
      if (Either.isRight(freshA!) && Either.isRight(freshB!)) {
        // One batch: one transaction, and not the first append's.
        assert.strictEqual(freshA.right.position.transactionId, freshB.right.position.transactionId)
        assert.notStrictEqual(freshA.right.position.transactionId, first.position.transactionId)
      }
      assert.isTrue(Either.isLeft(behind!) && behind.left._tag === "ConcurrencyConflict")
      if (Either.isLeft(behind!) && behind.left._tag === "ConcurrencyConflict") {
        assert.strictEqual(behind.left.actual, 2)
      }
      assert.isTrue(Either.isLeft(dup!) && dup.left._tag === "DuplicateEvent")
      assert.isTrue(Either.isRight(repeat!) && repeat.right.idempotent)
      assert.isTrue(Either.isLeft(yield* Effect.either(store.readStream({ streamType: TYPE, streamId: "dup" }))))
      assert.strictEqual((yield* store.readStream({ streamType: TYPE, streamId: "behind" })).length, 2)
    }).pipe(Effect.scoped))

  it.live("an append whose stream lock is held elsewhere goes out alone, and never holds back its batch", () =>
    Effect.gen(function*() {
      const db = yield* PgTest.freshDatabase()
      // Two connections: one for the batches, one for the append that waits alone.
      const harness = yield* storeOn(db, undefined, undefined, 2)
      const { store } = harness
      const locks = yield* holdLocks(db.adminUrl, ["held"])
      const heldFiber = yield* Deferred.make<Fiber.RuntimeFiber<EventStore.AppendResult, EventStore.AppendError>>()
      const scope = yield* Effect.scope
      const fibers = yield* runBatched(
        harness,
        store.append(one("first")),
        Effect.zipRight(
          // Forked into the test's scope: a child of the batch's fiber would be interrupted when the batch is done.
          Effect.flatMap(
            Effect.forkIn(store.append(one("held")), scope),
            (fiber) => Deferred.succeed(heldFiber, fiber)
          ),
          Effect.all([store.append(one("free-1")), store.append(one("free-2"))], { concurrency: "unbounded" })
        )
      )
      yield* Fiber.join(fibers.first)
      const [free1, free2] = yield* Fiber.join(fibers.rest)
      assert.strictEqual(free1.position.transactionId, free2.position.transactionId, "one batch")
      // The held stream's append waits on a connection of its own, as without group commit.
      yield* waiting(locks, db.role)
      const batchedAgain = yield* store.append(one("free-3"))
      assert.strictEqual(batchedAgain.version, 1, "later appends go through while one waits")
      yield* Effect.promise(() => locks.query("COMMIT"))
      assert.strictEqual((yield* Fiber.join(yield* Deferred.await(heldFiber))).version, 1)
    }).pipe(Effect.scoped))

  it.live("a lone append whose stream lock is held elsewhere gives the batch slot back: later appends go through", () =>
    Effect.gen(function*() {
      const db = yield* PgTest.freshDatabase()
      // Two connections: one for the append that waits, one for the others.
      const { store } = yield* storeOn(db, undefined, undefined, 2)
      const locks = yield* holdLocks(db.adminUrl, ["held"])
      const scope = yield* Effect.scope
      // Nothing queued: it goes out alone, holding the one batch slot, finds its stream's lock taken, comes back
      // busy, and waits for the lock outside the slot.
      const held = yield* Effect.forkIn(store.append(one("held")), scope)
      yield* waiting(locks, db.role)
      // Were the slot still held, these would queue behind it for as long as the lock is.
      const free = yield* Effect.all([store.append(one("free-1")), store.append(one("free-2"))], {
        concurrency: "unbounded"
      }).pipe(Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => "held back by the waiting append" }))
      assert.deepStrictEqual(free.map((r) => r.version), [1, 1])
      assert.isTrue(Option.isNone(yield* Fiber.poll(held)), "the held stream's append still waits")
      yield* Effect.promise(() => locks.query("COMMIT"))
      assert.strictEqual((yield* Fiber.join(held)).version, 1)
    }).pipe(Effect.scoped))

  it.live("without migration 0015's try_append_events, lone and batched appends still go through", () =>
    Effect.gen(function*() {
      const db = yield* PgTest.freshDatabase()
      yield* Effect.promise(async () => {
        const owner = new pg.Client({ connectionString: db.adminUrl })
        await owner.connect()
        await owner.query("DROP FUNCTION eventfold.try_append_events")
        await owner.end()
      })
      const harness = yield* storeOn(db)
      const { store } = harness
      assert.strictEqual((yield* store.append(one("lone"))).version, 1)
      assert.strictEqual((yield* store.append(one("lone", { expectedVersion: ExpectedVersion.Exact(1) }))).version, 2)
      const fibers = yield* runBatched(
        harness,
        store.append(one("first")),
        Effect.all([store.append(one("b-1")), store.append(one("b-2"))], { concurrency: "unbounded" })
      )
      assert.strictEqual((yield* Fiber.join(fibers.first)).version, 1)
      const [b1, b2] = yield* Fiber.join(fibers.rest)
      assert.strictEqual(b1.position.transactionId, b2.position.transactionId, "one batch")
    }).pipe(Effect.scoped))

  it.live("a cancel request meant for another statement on the connection: the append is sent again, once", () =>
    Effect.gen(function*() {
      // @effect/sql-pg cancels an interrupted fiber's statement with pg_cancel_backend, a signal that can land on
      // the connection's next statement instead. Here the admin sends one to an append waiting on its stream's row.
      for (const groupCommit of [true, false]) {
        const db = yield* PgTest.freshDatabase()
        const { store } = yield* storeOn(db, undefined, { groupCommit })
        yield* store.append(one("s"))
        const cancelled = (times: number, expected: number) =>
          Effect.scoped(Effect.gen(function*() {
            const locks = yield* holdLocks(db.adminUrl, [])
            yield* Effect.promise(() => locks.query("SELECT 1 FROM eventfold.streams WHERE stream_id = 's' FOR UPDATE"))
            const append = yield* Effect.fork(
              store.append(one("s", { expectedVersion: ExpectedVersion.Exact(expected) }))
            )
            // Each cancel goes to a statement that started after the one before was cancelled: the one sent again.
            let since = "-infinity"
            for (let i = 0; i < times; i++) {
              const pid = yield* waiting(locks, db.role, since)
              since = yield* Effect.promise(() =>
                locks.query<{ t: string }>("SELECT clock_timestamp()::text AS t").then((r) => r.rows[0]!.t)
              )
              yield* Effect.promise(() => locks.query("SELECT pg_cancel_backend($1)", [pid]))
            }
            if (times === 1) {
              // Sent again, and waiting for the row again.
              yield* waiting(locks, db.role, since)
              assert.isTrue(Option.isNone(yield* Fiber.poll(append)), `group commit ${groupCommit}: still waiting`)
            }
            yield* Effect.promise(() => locks.query("ROLLBACK"))
            return yield* Effect.either(Fiber.join(append))
          }))
        // One cancel: nothing was written, the append is sent again and succeeds.
        const once = yield* cancelled(1, 1)
        assert.isTrue(
          Either.isRight(once),
          `group commit ${groupCommit}: ${Either.isLeft(once) ? once.left.message : "ok"}`
        )
        if (Either.isRight(once)) assert.strictEqual(once.right.version, 2)
        // Two: the second is the caller's, a retryable StoreError, with nothing written.
        const twice = yield* cancelled(2, 2)
        assert.isTrue(
          Either.isLeft(twice) && twice.left._tag === "StoreError" && twice.left.retryable === true &&
            twice.left.code === "57014",
          `group commit ${groupCommit}: ${Either.isLeft(twice) ? twice.left.message : "succeeded"}`
        )
        assert.lengthOf(yield* store.readStream({ streamType: TYPE, streamId: "s" }), 2)
      }
    }).pipe(Effect.scoped))

  it.live("a batch that raises (a version taken behind eventfold's back) falls back to one append at a time", () =>
    Effect.gen(function*() {
      const db = yield* PgTest.freshDatabase()
      const harness = yield* storeOn(db)
      const { store } = harness
      yield* store.append(one("bypassed"))
      // A writer that bypassed append_events took version 2: the unique key raises inside the batch.
      yield* Effect.promise(async () => {
        const owner = new pg.Client({ connectionString: db.adminUrl })
        await owner.connect()
        await owner.query(
          `INSERT INTO eventfold.events (tenant_id, stream_type, stream_id, version, event_id, event_type, payload, metadata)
           VALUES ('default', $1, 'bypassed', 2, gen_random_uuid(), 'Deposited', '{}', '{}')`,
          [TYPE]
        )
        await owner.end()
      })
      const fibers = yield* runBatched(
        harness,
        store.append(one("first")),
        Effect.all(
          [
            store.append(one("ok-1")),
            store.append(one("bypassed", { expectedVersion: ExpectedVersion.Exact(1) })),
            store.append(one("ok-2"))
          ].map(Effect.either),
          { concurrency: "unbounded" }
        )
      )
      yield* Fiber.join(fibers.first)
      const [ok1, bypassed, ok2] = yield* Fiber.join(fibers.rest)
      assert.isTrue(Either.isRight(ok1!) && Either.isRight(ok2!), "the neighbours succeed")
      if (Either.isRight(ok1!) && Either.isRight(ok2!)) {
        // One at a time after the batch failed: two transactions.
        assert.notStrictEqual(ok1.right.position.transactionId, ok2.right.position.transactionId)
      }
      assert.isTrue(Either.isLeft(bypassed!) && bypassed.left._tag === "ConcurrencyConflict")
      if (Either.isLeft(bypassed!) && bypassed.left._tag === "ConcurrencyConflict") {
        assert.strictEqual(bypassed.left.actual, 1)
      }
    }).pipe(Effect.scoped))

  it.live("a connection killed mid-batch fails exactly that batch's appends, retryable, and writes nothing", () =>
    Effect.gen(function*() {
      const db = yield* PgTest.freshDatabase()
      const harness = yield* storeOn(db)
      const { store } = harness
      yield* store.append(one("locked"))
      // The admin locks the stream's row: the batch's update of it waits, mid-statement.
      const locks = yield* holdLocks(db.adminUrl, [])
      const fibers = yield* runBatched(
        harness,
        store.append(one("first")),
        Effect.all(
          [store.append(one("b")), store.append(one("c")), store.append(one("locked"))].map(Effect.either),
          { concurrency: "unbounded" }
        ),
        Effect.promise(() => locks.query("SELECT 1 FROM eventfold.streams WHERE stream_id = 'locked' FOR UPDATE"))
      )
      assert.strictEqual((yield* Fiber.join(fibers.first)).version, 1)
      const batchPid = yield* waiting(locks, db.role)
      yield* Effect.promise(() => locks.query("SELECT pg_terminate_backend($1)", [batchPid]))
      const outcomes = yield* Fiber.join(fibers.rest)

      for (const outcome of outcomes) {
        assert.isTrue(Either.isLeft(outcome), "failed")
        if (Either.isLeft(outcome)) {
          assert.strictEqual(outcome.left._tag, "StoreError")
          if (outcome.left._tag === "StoreError") {
            assert.isTrue(outcome.left.retryable, "retryable")
            assert.strictEqual(outcome.left.kind, "connection")
          }
        }
      }
      const written = yield* Effect.promise(() =>
        locks.query<{ stream_id: string; n: string }>(
          "SELECT stream_id, count(*) AS n FROM eventfold.events GROUP BY stream_id ORDER BY stream_id"
        )
      )
      assert.deepStrictEqual(
        written.rows.map((row) => [row.stream_id, Number(row.n)]),
        [["first", 1], ["locked", 1]],
        "nothing of the batch written"
      )
      yield* Effect.promise(() => locks.query("ROLLBACK"))
      // Retried, every append succeeds (the pool replaces the dead connection).
      const retried = yield* Effect.all(
        [one("b"), one("c"), one("locked", { expectedVersion: ExpectedVersion.Exact(1) })].map((options) =>
          store.append(options).pipe(
            Effect.retry({ times: 3, while: (e) => e._tag === "StoreError" && e.retryable === true })
          )
        ),
        { concurrency: "unbounded" }
      )
      assert.deepStrictEqual(retried.map((r) => r.version), [1, 1, 2])
    }).pipe(Effect.scoped))

  it.live("one batch holds appends of several tenants, each written in its own tenant under row-level security", () =>
    Effect.gen(function*() {
      const db = yield* PgTest.freshDatabase({ rowLevelSecurity: true })
      const harness = yield* storeOn(db, { tenancy: "multi", rowLevelSecurity: true })
      const { store } = harness
      const tenants = ["t-a", "t-b", "t-c"]
      const fibers = yield* runBatched(
        harness,
        store.append(one("first", { tenantId: "t-a" })),
        Effect.all(
          tenants.map((tenantId) =>
            store.append(one("shared-id", { tenantId, events: [{ type: "Deposited", payload: { tenantId } }] }))
          ),
          { concurrency: "unbounded" }
        )
      )
      yield* Fiber.join(fibers.first)
      const results = yield* Fiber.join(fibers.rest)
      assert.strictEqual(new Set(results.map((r) => r.position.transactionId)).size, 1, "one batch")
      for (const tenantId of tenants) {
        const events = yield* store.readStream({ tenantId, streamType: TYPE, streamId: "shared-id" })
        assert.deepStrictEqual(events.map((e) => [e.tenantId, e.payload]), [[tenantId, { tenantId }]])
        const feed = yield* store.readAll({ tenantId })
        assert.isTrue(feed.every((e) => e.tenantId === tenantId), "a tenant's feed holds its own events only")
      }
      // Row-level security saw each row written in its own tenant: the owner counts one row per tenant.
      const admin = yield* holdLocks(db.adminUrl, [])
      const rows = yield* Effect.promise(() =>
        admin.query<{ tenant_id: string }>(
          "SELECT tenant_id FROM eventfold.events WHERE stream_id = 'shared-id' ORDER BY tenant_id"
        )
      )
      assert.deepStrictEqual(rows.rows.map((row) => row.tenant_id), tenants)
    }).pipe(Effect.scoped))

  it.live("the set-based batch gives every append the outcome append_events gives it alone (a differential test)", () =>
    Effect.gen(function*() {
      type Case = readonly [streamId: string, expected: ExpectedVersion.ExpectedVersion, events: number]
      const X = ExpectedVersion
      // Streams set up before the batch: [id, events, state].
      const setup: ReadonlyArray<readonly [string, number, "live" | "archived" | "deleted" | "soft"]> = [
        ["live-1", 2, "live"],
        ["live-2", 2, "live"],
        ["live-3", 2, "live"],
        ["live-4", 2, "live"],
        ["live-5", 2, "live"],
        ["live-6", 2, "live"],
        ["archived", 1, "archived"],
        ["deleted", 1, "deleted"],
        ["soft-1", 2, "soft"],
        ["soft-2", 2, "soft"],
        ["soft-3", 2, "soft"],
        ["soft-4", 2, "soft"]
      ]
      const cases: ReadonlyArray<Case> = [
        ["new-any", X.Any, 1],
        ["new-none", X.NoStream, 2],
        ["new-exact-0", X.Exact(0), 1],
        ["new-exact-3", X.Exact(3), 1],
        ["new-exists", X.StreamExists, 1],
        ["live-1", X.Exact(2), 1],
        ["live-2", X.Exact(1), 1],
        ["live-3", X.NoStream, 1],
        ["live-4", X.Any, 2],
        ["live-5", X.StreamExists, 1],
        ["live-6", X.Exact(0), 1],
        ["archived", X.Any, 1],
        ["deleted", X.Exact(1), 1],
        ["soft-1", X.NoStream, 1],
        ["soft-2", X.Exact(2), 1],
        ["soft-3", X.Any, 1],
        ["soft-4", X.StreamExists, 1]
      ]
      const run = (batched: boolean) =>
        Effect.gen(function*() {
          const db = yield* PgTest.freshDatabase()
          const harness = yield* storeOn(db, undefined, {
            groupCommit: batched ? { concurrency: 1 } : false,
            notify: true,
            outbox: true
          })
          const { store } = harness
          const admin = yield* holdLocks(db.adminUrl, [])
          yield* Effect.promise(() => admin.query("COMMIT"))
          for (const [id, count, state] of setup) {
            yield* store.append(
              one(id, { events: Array.from({ length: count }, (_, i) => ({ type: "Set", payload: { i } })) })
            )
            if (state !== "live") {
              const column = state === "soft" ? "soft_deleted" : state
              yield* Effect.promise(() =>
                admin.query(`UPDATE eventfold.streams SET ${column} = true WHERE stream_id = $1`, [id])
              )
            }
          }
          const append = ([id, expectedVersion, count]: Case) =>
            Effect.either(store.append(one(id, {
              expectedVersion,
              events: Array.from({ length: count }, (_, i) => ({ type: "Batched", payload: { id, i } }))
            })))
          let outcomes: ReadonlyArray<Either.Either<EventStore.AppendResult, unknown>>
          if (batched) {
            const fibers = yield* runBatched(
              harness,
              store.append(one("blocker")),
              Effect.all(cases.map(append), { concurrency: "unbounded" })
            )
            yield* Fiber.join(fibers.first)
            outcomes = yield* Fiber.join(fibers.rest)
            const ok = outcomes.filter(Either.isRight)
            assert.strictEqual(new Set(ok.map((o) => o.right.position.transactionId)).size, 1, "one batch")
          } else {
            outcomes = yield* Effect.forEach(cases, append)
          }
          const summary = outcomes.map((o) =>
            Either.isRight(o)
              ? ["ok", o.right.version]
              : [
                (o.left as { _tag: string })._tag,
                (o.left as { _tag: string; actual?: number })._tag === "ConcurrencyConflict"
                  ? (o.left as { actual: number }).actual
                  : null
              ]
          )
          const streams = yield* Effect.promise(() =>
            admin.query(
              `SELECT stream_id, version, archived, deleted, soft_deleted FROM eventfold.streams
                WHERE stream_id <> 'blocker' ORDER BY stream_id`
            )
          )
          const events = yield* Effect.promise(() =>
            admin.query(
              `SELECT stream_id, version, event_type, payload FROM eventfold.events
                WHERE stream_id <> 'blocker' ORDER BY stream_id, version`
            )
          )
          const outbox = yield* Effect.promise(() =>
            admin.query(
              `SELECT stream_id, version FROM eventfold.outbox WHERE stream_id <> 'blocker' ORDER BY global_position`
            )
          )
          return { summary, streams: streams.rows, events: events.rows, outbox: outbox.rows.length }
        })
      const batched = yield* run(true)
      const alone = yield* run(false)
      assert.deepStrictEqual(batched.summary, alone.summary)
      assert.deepStrictEqual(batched.streams, alone.streams)
      assert.deepStrictEqual(batched.events, alone.events)
      assert.strictEqual(batched.outbox, alone.outbox)
      // The expected outcomes themselves, so that both paths cannot be wrong alike.
      assert.deepStrictEqual(batched.summary, [
        ["ok", 1],
        ["ok", 2],
        ["ok", 1],
        ["ConcurrencyConflict", 0],
        ["ConcurrencyConflict", 0],
        ["ok", 3],
        ["ConcurrencyConflict", 2],
        ["ConcurrencyConflict", 2],
        ["ok", 4],
        ["ok", 3],
        ["ConcurrencyConflict", 2],
        ["StreamArchived", null],
        ["StreamDeleted", null],
        ["ok", 3],
        ["ConcurrencyConflict", 0],
        ["ok", 3],
        ["ConcurrencyConflict", 0]
      ])
    }).pipe(Effect.scoped))

  it.live("a blocked tenant's appends in a batch are each refused with TenantUnavailable", () =>
    Effect.gen(function*() {
      const db = yield* PgTest.freshDatabase()
      const harness = yield* storeOn(db)
      const { store } = harness
      const admin = yield* holdLocks(db.adminUrl, [])
      const fibers = yield* runBatched(
        harness,
        store.append(one("first")),
        Effect.all([store.append(one("x")), store.append(one("y"))].map(Effect.either), { concurrency: "unbounded" }),
        Effect.promise(() =>
          admin.query("INSERT INTO eventfold.tenant_blocks (tenant_id, reason) VALUES ('default', 'moving')")
        ).pipe(Effect.zipRight(Effect.promise(() => admin.query("COMMIT"))))
      )
      assert.strictEqual((yield* Effect.flip(Fiber.join(fibers.first)))._tag, "TenantUnavailable")
      for (const outcome of yield* Fiber.join(fibers.rest)) {
        assert.isTrue(Either.isLeft(outcome) && outcome.left._tag === "TenantUnavailable")
        if (Either.isLeft(outcome) && outcome.left._tag === "TenantUnavailable") {
          assert.strictEqual(outcome.left.reason, "moving")
        }
      }
    }).pipe(Effect.scoped))
})
