// Events are append-only in the database too: the application role has no right to change them, and the owner is
// stopped by the guard trigger (SQLSTATE EF001) unless its transaction opens the escape hatch.
import * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlError from "@effect/sql/SqlError"
import { assert, describe, it, layer } from "@effect/vitest"
import { EventStore } from "@eventfold/core"
import { PgRoles, PgTest } from "@eventfold/postgres"
import * as Effect from "effect/Effect"
import * as internal from "../src/internal/sql.js"

const mutations = [
  "UPDATE eventfold.events SET payload = '{\"rewritten\": true}'",
  "DELETE FROM eventfold.events",
  "TRUNCATE eventfold.events"
] as const

const sqlState = (error: SqlError.SqlError) => internal.pgError(error).code

const eventCount = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) => Effect.map(sql<{ n: number }>`SELECT count(*)::int AS n FROM eventfold.events`, (rows) => rows[0]!.n)
)

layer(PgTest.layerEventStore(), { excludeTestServices: true, timeout: "60 seconds" })(
  `events are append-only (${PgTest.serverLabel()})`,
  (it) => {
    it.effect("the tests' client is the least-privilege role: no superuser, no DDL in the database or schema", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const [me] = yield* sql<{ super: boolean; createdb: boolean; db: boolean; schema: boolean; owns: number }>`
          SELECT r.rolsuper AS super, r.rolcreatedb OR r.rolcreaterole AS createdb,
                 has_database_privilege(current_database(), 'CREATE') AS db,
                 has_schema_privilege('eventfold', 'CREATE') AS schema,
                 (SELECT count(*)::int FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE n.nspname = 'eventfold' AND c.relowner = r.oid) AS owns
            FROM pg_roles r WHERE r.rolname = current_user`
        assert.deepStrictEqual(me, { super: false, createdb: false, db: false, schema: false, owns: 0 })
        const error = yield* Effect.flip(sql`CREATE TABLE eventfold.not_allowed (id integer)`)
        assert.strictEqual(sqlState(error), "42501")
      }))

    it.effect("as the application role, UPDATE, DELETE and TRUNCATE on events are permission denied, hatch or not", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const sql = yield* SqlClient.SqlClient
        yield* store.append({ streamType: "Ledger", streamId: "app", events: [{ type: "Opened", payload: {} }] })
        const before = yield* eventCount
        for (const statement of mutations) {
          const refused = yield* Effect.flip(sql.unsafe(statement))
          assert.strictEqual(sqlState(refused), "42501", statement)
          // The escape hatch opens the guard, not a privilege.
          const withHatch = yield* Effect.flip(sql.withTransaction(
            Effect.zipRight(sql`SELECT set_config(${PgRoles.ALLOW_EVENT_MUTATION}, 'on', true)`, sql.unsafe(statement))
          ))
          assert.strictEqual(sqlState(withHatch), "42501", `${statement} with the hatch`)
        }
        assert.strictEqual(yield* eventCount, before)
      }))

    it.effect("as the owner, the guard refuses UPDATE, DELETE and TRUNCATE with EF001 unless the transaction opens the hatch", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        yield* store.append({
          streamType: "Ledger",
          streamId: "owner",
          events: [{ type: "Opened", payload: {} }, { type: "Closed", payload: {} }]
        })
        yield* PgTest.asAdmin(Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const before = yield* eventCount
          for (const statement of mutations) {
            const refused = yield* Effect.flip(sql.unsafe(statement))
            assert.strictEqual(sqlState(refused), PgRoles.EVENT_MUTATION_REFUSED, statement)
            assert.include(internal.pgError(refused).message, "events are append-only")
          }
          // With the hatch, each statement works, inside a transaction that is then rolled back.
          const rollback = yield* Effect.flip(sql.withTransaction(Effect.gen(function*() {
            yield* sql.unsafe(`SET LOCAL ${PgRoles.ALLOW_EVENT_MUTATION} = 'on'`)
            const updated = yield* sql<{ n: number }>`WITH u AS (
              UPDATE eventfold.events SET payload = '{"rewritten": true}' RETURNING 1
            ) SELECT count(*)::int AS n FROM u`
            assert.strictEqual(updated[0]!.n, before)
            const deleted = yield* sql<{ n: number }>`WITH d AS (
              DELETE FROM eventfold.events WHERE stream_id = 'owner' RETURNING 1
            ) SELECT count(*)::int AS n FROM d`
            assert.strictEqual(deleted[0]!.n, 2)
            yield* sql`TRUNCATE eventfold.events`
            assert.strictEqual(yield* eventCount, 0)
            return yield* Effect.fail("roll back" as const)
          })))
          assert.strictEqual(rollback, "roll back")
          assert.strictEqual(yield* eventCount, before)
          const rewritten = yield* sql`SELECT 1 FROM eventfold.events WHERE payload ? 'rewritten'`
          assert.strictEqual(rewritten.length, 0)
          // SET LOCAL ended with that transaction: the guard is closed again.
          const again = yield* Effect.flip(sql.unsafe(mutations[1]))
          assert.strictEqual(sqlState(again), PgRoles.EVENT_MUTATION_REFUSED)
        }))
      }))

    it.effect("the guard's failure maps to a StoreError that says so and is not retryable", () =>
      PgTest.asAdmin(Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const error = yield* Effect.flip(
          sql.unsafe(mutations[0]).pipe(Effect.mapError(internal.toStoreError("purge", "eventfold")))
        )
        assert.isTrue(PgRoles.isEventMutationRefused(error))
        assert.isFalse(error.retryable ?? false)
        assert.include(error.message, "events are append-only")
      })))
  }
)

describe("PgRoles", () => {
  it.effect("renders grants.sql with the role and schema quoted as identifiers", () =>
    Effect.gen(function*() {
      const sql = yield* PgRoles.renderGrants({ schema: "tenant_a", role: "app_rw" })
      assert.include(sql, "GRANT INSERT ON \"tenant_a\".events TO \"app_rw\";")
      assert.include(sql, "GRANT USAGE ON SCHEMA \"tenant_a\" TO \"app_rw\";")
      assert.notInclude(sql, "\\")
      assert.notInclude(sql, ":\"")
      assert.notMatch(sql, /GRANT (UPDATE|DELETE|TRUNCATE|ALL)[^;]* ON "tenant_a"\.events /)
    }))

  it.effect("refuses role names that are not one plain role, before any SQL", () =>
    Effect.gen(function*() {
      for (
        const role of ["public", "PUBLIC", "none", "current_user", "pg_monitor", "", "app\"; DROP ROLE x; --", "a b"]
      ) {
        const error = yield* Effect.flip(PgRoles.renderGrants({ role }))
        assert.strictEqual(error._tag, "InvalidInput", role)
      }
    }))
})
