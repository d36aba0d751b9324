// PostgreSQL-specific behaviour of the store: joining the caller's transaction, and clear typed failures.
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it, layer } from "@effect/vitest"
import { Aggregate, CommandHandler, Decider, EventStore } from "@eventfold/core"
import { PgDatabase, PgEventStore, PgMigrations, PgRoles, PgTest } from "@eventfold/postgres"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as net from "node:net"

class Deposited extends Schema.TaggedClass<Deposited>()("Deposited", { amount: Schema.Number }) {}
const AccountEvent = Schema.Union(Deposited)

const Account = Aggregate.make({
  name: "Account",
  events: AccountEvent,
  decider: Decider.make({
    initialState: 0,
    evolve: (balance: number, event: Deposited) => balance + event.amount,
    decide: (amount: number) => Effect.succeed([new Deposited({ amount })])
  })
})

layer(PgTest.layerEventStore(), { excludeTestServices: true, timeout: "120 seconds" })(
  `PgEventStore (${PgTest.serverLabel()})`,
  (it) => {
    it.effect("an append joins the caller's transaction: both commit together or roll back together", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const sql = yield* SqlClient.SqlClient
        // The application's own table, created by its owner; the test's least-privilege role may write to it.
        yield* PgTest.asAdmin(
          Effect.flatMap(
            SqlClient.SqlClient,
            (admin) => admin`CREATE TABLE IF NOT EXISTS public.audit (note text NOT NULL)`
          )
        )
        const ref = { streamType: "Tx", streamId: crypto.randomUUID() }

        const failed = yield* sql.withTransaction(
          Effect.gen(function*() {
            yield* store.append({ ...ref, events: [{ type: "Rolled", payload: {} }] })
            yield* sql`INSERT INTO public.audit (note) VALUES (${ref.streamId})`
            return yield* Effect.fail("business rule says no" as const)
          })
        ).pipe(Effect.flip)
        assert.strictEqual(failed, "business rule says no")
        assert.strictEqual(yield* store.streamVersion(ref), 0)
        assert.strictEqual((yield* sql`SELECT 1 FROM public.audit WHERE note = ${ref.streamId}`).length, 0)

        yield* sql.withTransaction(
          Effect.gen(function*() {
            yield* store.append({ ...ref, events: [{ type: "Kept", payload: {} }] })
            yield* sql`INSERT INTO public.audit (note) VALUES (${ref.streamId})`
          })
        )
        assert.strictEqual(yield* store.streamVersion(ref), 1)
        assert.strictEqual((yield* sql`SELECT 1 FROM public.audit WHERE note = ${ref.streamId}`).length, 1)
      }))

    it.effect("a conflict inside a caller's transaction is a typed error and leaves the transaction usable", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const sql = yield* SqlClient.SqlClient
        const ref = { streamType: "Tx", streamId: crypto.randomUUID() }
        yield* store.append({ ...ref, events: [{ type: "First", payload: {} }] })
        const result = yield* sql.withTransaction(
          Effect.gen(function*() {
            const conflict = yield* Effect.flip(
              store.append({ ...ref, events: [{ type: "Second", payload: {} }], expectedVersion: { _tag: "NoStream" } })
            )
            // The conflict was reported as a status, not raised, so the transaction can carry on.
            const retried = yield* store.append({ ...ref, events: [{ type: "Second", payload: {} }] })
            return [conflict._tag, retried.version] as const
          })
        )
        assert.deepStrictEqual(result, ["ConcurrencyConflict", 2])
      }))

    it.effect("appends send a NOTIFY hint: after a standalone append, and at commit for one in a caller's transaction", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const pg = yield* PgClient.PgClient
        const received = yield* Queue.unbounded<string>()
        yield* pg.listen("eventfold_events").pipe(Stream.runForEach((m) => Queue.offer(received, m)), Effect.forkScoped)
        // LISTEN has no readiness signal: probe until a hint sent by hand arrives, then drain.
        yield* pg`SELECT pg_notify('eventfold_events', 'probe')`.pipe(
          Effect.zipRight(Queue.take(received).pipe(Effect.timeout("200 millis"))),
          Effect.retry(Schedule.recurs(50))
        )
        // A late probe (sent again after a slow delivery) is not a hint of the store's.
        const hint = Queue.take(received).pipe(Effect.repeat({ until: (payload) => payload !== "probe" }))

        yield* store.append({ streamType: "Notify", streamId: "solo", events: [{ type: "E", payload: {} }] })
        assert.strictEqual(yield* hint.pipe(Effect.timeout("5 seconds")), "1")

        const sql = yield* SqlClient.SqlClient
        const appended = yield* Deferred.make<void>()
        const commit = yield* Deferred.make<void>()
        const tx = yield* sql.withTransaction(
          Effect.zipRight(
            store.append({ streamType: "Notify", streamId: "tx", events: [{ type: "E", payload: {} }] }),
            Effect.zipRight(Deferred.succeed(appended, undefined), Deferred.await(commit))
          )
        ).pipe(Effect.fork)
        yield* Deferred.await(appended)
        // Nothing is announced while the transaction is open...
        assert.isTrue(Option.isNone(yield* hint.pipe(Effect.timeout("300 millis"), Effect.option)))
        yield* Deferred.succeed(commit, undefined)
        yield* Fiber.join(tx)
        // ...and the hint arrives with the commit.
        assert.strictEqual(yield* hint.pipe(Effect.timeout("5 seconds")), "1")
      }).pipe(Effect.scoped))

    it.effect("a corrupt stored payload and an unknown event type fail the load with EventDecodeError", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const handler = yield* CommandHandler.make(Account)
        yield* handler.handle("good", 5)
        assert.deepStrictEqual(yield* handler.load("good"), { state: 5, version: 1 })

        yield* store.append({
          streamType: "Account",
          streamId: "corrupt",
          events: [{ type: "Deposited", payload: { amount: "lots" } }]
        })
        const corrupt = yield* Effect.flip(handler.load("corrupt"))
        assert.strictEqual(corrupt._tag, "EventDecodeError")
        if (corrupt._tag === "EventDecodeError") {
          assert.strictEqual(corrupt.streamId, "corrupt")
          assert.strictEqual(corrupt.version, 1)
          assert.strictEqual(corrupt.type, "Deposited")
          assert.include(corrupt.issue, "amount")
        }
        yield* store.append({
          streamType: "Account",
          streamId: "unknown",
          events: [{ type: "Withdrawn", payload: { amount: 1 } }]
        })
        const unknown = yield* handler.handle("unknown", 1).pipe(Effect.flip)
        assert.strictEqual(unknown._tag, "EventDecodeError")
        // Nothing was appended on top of the undecodable stream.
        assert.strictEqual(yield* store.streamVersion({ streamType: "Account", streamId: "unknown" }), 1)
        const recovered = yield* handler.handle("unknown", 1).pipe(
          Effect.catchTag("EventDecodeError", (e) => Effect.succeed(`refused at version ${e.version}`))
        )
        assert.strictEqual(recovered, "refused at version 1")
      }))
  }
)

describe("failures are typed and bounded", () => {
  it.live("an unreachable server fails within the connect timeout with a StoreError naming the host", () =>
    Effect.gen(function*() {
      // A port that accepts TCP but never speaks PostgreSQL: without a connect timeout the pool would wait forever.
      const server = net.createServer(() => {})
      yield* Effect.acquireRelease(
        Effect.async<void>((resume) => {
          server.listen(0, "127.0.0.1", () => resume(Effect.void))
        }),
        () => Effect.sync(() => server.close())
      )
      const address = server.address()
      const port = typeof address === "object" && address ? address.port : 0
      const error = yield* Layer.build(
        PgDatabase.layer({ url: `postgres://postgres@127.0.0.1:${port}/nowhere`, connectTimeout: "1 second" })
      ).pipe(
        Effect.flip,
        Effect.timeoutFail({ duration: "15 seconds", onTimeout: () => "hung" as const })
      )
      assert.strictEqual(error._tag, "StoreError")
      assert.include(error.message, `127.0.0.1:${port}/nowhere`)

      const refused = yield* Layer.build(
        PgDatabase.layer({ url: "postgres://postgres:secret@127.0.0.1:1/db", connectTimeout: "1 second" })
      ).pipe(
        Effect.flip,
        Effect.timeoutFail({ duration: "15 seconds", onTimeout: () => "hung" as const })
      )
      assert.strictEqual(refused._tag, "StoreError")
      assert.include(refused.message, "127.0.0.1:1/db")
      assert.notInclude(refused.message, "secret")
    }).pipe(Effect.scoped))

  it.live("a database that does not exist is a StoreError naming it", () =>
    Effect.gen(function*() {
      const admin = yield* PgTest.serverUrl
      const url = new URL(admin)
      url.pathname = "/eventfold_no_such_database"
      const error = yield* Layer.build(PgDatabase.layer({ url: url.toString(), connectTimeout: "3 seconds" })).pipe(
        Effect.flip
      )
      assert.strictEqual(error._tag, "StoreError")
      assert.include(error.message, "eventfold_no_such_database")
    }).pipe(Effect.scoped))

  it.live("a database without migrations: the store refuses to start, naming the table and how to migrate", () =>
    Effect.gen(function*() {
      const error = yield* Layer.build(PgEventStore.layer()).pipe(Effect.flip)
      assert.strictEqual(error._tag, "StoreError")
      assert.include(error.message, "eventfold.streams")
      assert.include(error.message, "eventfold.events")
      assert.include(error.message, "PgMigrations")
      // After the owner migrates and grants, the same Layer builds for the application role.
      const [me] = yield* Effect.flatMap(
        SqlClient.SqlClient,
        (sql) => sql<{ role: string }>`SELECT current_user AS role`
      )
      yield* PgTest.asAdmin(Effect.zipRight(PgMigrations.run(), PgRoles.grantApplicationRole({ role: me!.role })))
      const store = yield* Layer.build(PgEventStore.layer()).pipe(Effect.map((ctx) => ctx.unsafeMap.size))
      assert.isAbove(store, 0)
    }).pipe(Effect.scoped, Effect.provide(PgTest.layerClient({ migrate: false }))))

  it.scopedLive("dropping a table under a running store gives a typed StoreError with migration advice", () =>
    Effect.gen(function*() {
      const store = yield* PgEventStore.make({ schema: "dropped" })
      yield* PgTest.asAdmin(Effect.flatMap(SqlClient.SqlClient, (sql) => sql`DROP TABLE dropped.events CASCADE`))
      const error = yield* Effect.flip(
        store.append({ streamType: "X", streamId: "1", events: [{ type: "E", payload: {} }] })
      )
      assert.strictEqual(error._tag, "StoreError")
      assert.include(error.message, "PgMigrations.run")
      const readError = yield* Effect.flip(store.readAll())
      assert.strictEqual(readError._tag, "StoreError")
    }).pipe(Effect.provide(PgTest.layerClient({ schema: "dropped" }))))
})
