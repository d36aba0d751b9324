import * as PgClient from "@effect/sql-pg/PgClient"
import { assert, describe, it } from "@effect/vitest"
import { PgEventStore, PgMigrations, PgRoles, PgTest } from "@eventfold/postgres"
import * as Effect from "effect/Effect"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { grants as embeddedGrants, migrations as embedded } from "../src/internal/migrations.js"
import * as PgDatabase from "../src/PgDatabase.js"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..")

// Only numbered files are migrations; migrations/grants.sql is the application role's grants.
const migrationFiles = () =>
  fs.readdirSync(path.join(root, "migrations")).filter((f) => /^\d{4}_.*\.sql$/.test(f)).sort()

const catalog = (schema: string) =>
  Effect.flatMap(PgClient.PgClient, (sql) =>
    sql<{ item: string }>`
      SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable
             || ' ' || coalesce(column_default, '') AS item
        FROM information_schema.columns WHERE table_schema = ${schema}
      UNION ALL
      SELECT 'index ' || indexname || ' ' || replace(indexdef, ${schema} || '.', '') FROM pg_indexes WHERE schemaname = ${schema}
      UNION ALL
      SELECT 'function ' || p.proname || ' ' || pg_get_function_arguments(p.oid) || ' ' || md5(p.prosrc)
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = ${schema}
      UNION ALL
      SELECT 'constraint ' || conname || ' ' || pg_get_constraintdef(c.oid)
        FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = ${schema}
      UNION ALL
      SELECT 'trigger ' || replace(pg_get_triggerdef(t.oid), ${schema} || '.', '')
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = ${schema} AND NOT t.tgisinternal
      UNION ALL
      SELECT 'grant ' || a.privilege_type || ' on ' || c.relname || ' to ' || pg_get_userbyid(a.grantee)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(c.relacl) a
       WHERE n.nspname = ${schema} AND a.grantee <> c.relowner
      UNION ALL
      SELECT 'grant ' || a.privilege_type || ' on function ' || p.proname || ' to ' || pg_get_userbyid(a.grantee)
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace, aclexplode(p.proacl) a
       WHERE n.nspname = ${schema} AND a.grantee <> p.proowner
      UNION ALL
      SELECT 'grant ' || a.privilege_type || ' on schema to ' || pg_get_userbyid(a.grantee)
        FROM pg_namespace n, aclexplode(n.nspacl) a WHERE n.nspname = ${schema} AND a.grantee <> n.nspowner
      ORDER BY 1`).pipe(
      Effect.map((rows) => rows.map((r) => r.item).filter((i) => !i.includes("eventfold_migrations")))
    )

const hasPsql = (() => {
  try {
    execFileSync("psql", ["--version"], { stdio: "ignore" })
    return true
  } catch {
    return false
  }
})()

describe("PgMigrations", () => {
  it("the SQL the library applies is exactly the files in migrations/", () => {
    const files = migrationFiles()
    assert.deepStrictEqual(embedded.map((m) => `${String(m.id).padStart(4, "0")}_${m.name}.sql`), files)
    for (const [i, file] of files.entries()) {
      assert.strictEqual(
        embedded[i]!.sql,
        fs.readFileSync(path.join(root, "migrations", file), "utf8"),
        `${file} drifted from the library: run node scripts/generate-migrations.mjs`
      )
    }
    assert.strictEqual(
      embeddedGrants,
      fs.readFileSync(path.join(root, "migrations", "grants.sql"), "utf8"),
      "grants.sql drifted from the library: run node scripts/generate-migrations.mjs"
    )
  })

  it.scopedLive("the owner migrates once, then it is a no-op, also as the application role; the store works on a custom schema", () =>
    Effect.gen(function*() {
      const first = yield* PgTest.asAdmin(PgMigrations.run({ schema: "tenant_a" }))
      assert.deepStrictEqual(first, PgMigrations.migrations)
      const second = yield* PgTest.asAdmin(PgMigrations.run({ schema: "tenant_a" }))
      assert.deepStrictEqual(second, [])
      const sql = yield* PgClient.PgClient
      const [{ role }] = yield* sql<{ role: string }>`SELECT current_user AS role`
      yield* PgTest.asAdmin(PgRoles.grantApplicationRole({ schema: "tenant_a", role }))
      // The application role has no DDL rights: with nothing pending it only reads the migrations table.
      assert.deepStrictEqual(yield* PgMigrations.run({ schema: "tenant_a" }), [])
      const store = yield* PgEventStore.make({ schema: "tenant_a" })
      const result = yield* store.append({
        streamType: "Order",
        streamId: "1",
        events: [{ type: "Created", payload: {} }]
      })
      assert.strictEqual(result.version, 1)
      const rows = yield* sql<{ n: string }>`SELECT count(*) AS n FROM tenant_a.events`
      assert.strictEqual(rows[0]!.n, "1")
      const inDefault = yield* sql<{ found: boolean }>`SELECT to_regclass('eventfold.events') IS NOT NULL AS found`
      assert.isFalse(inDefault[0]!.found)
    }).pipe(Effect.provide(PgTest.layerClient({ migrate: false }))))

  it.scopedLive("as the application role, a pending migration fails with a StoreError saying who must migrate", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(PgMigrations.run({ schema: "not_migrated" }))
      assert.strictEqual(error._tag, "StoreError")
      if (error._tag !== "StoreError") return
      assert.strictEqual(error.code, "42501")
      assert.isFalse(error.retryable)
      assert.include(error.reason, "apply migrations as the owner")
      assert.include(error.reason, "grants.sql")
    }).pipe(Effect.provide(PgTest.layerClient())))

  it.live("two processes migrating at once both succeed and apply each migration once", () =>
    Effect.gen(function*() {
      const url = (yield* PgTest.freshDatabase({ migrate: false })).adminUrl
      // Separate pools stand in for separate processes: they share nothing but the database.
      const runner = PgMigrations.run().pipe(Effect.provide(PgDatabase.layer({ url, maxConnections: 2 })))
      const results = yield* Effect.all([runner, runner, runner, runner], { concurrency: "unbounded" })
      assert.strictEqual(results.flat().length, PgMigrations.migrations.length)
      const rows = yield* Effect.flatMap(PgClient.PgClient, (sql) =>
        sql<{ migration_id: number }>`SELECT migration_id FROM eventfold.eventfold_migrations ORDER BY 1`).pipe(
          Effect.provide(PgDatabase.layer({ url, maxConnections: 1 }))
        )
      assert.deepStrictEqual(
        rows.map((r) =>
          r.migration_id
        ),
        PgMigrations.migrations.map(([id]) => id)
      )
    }).pipe(Effect.scoped))

  it.scopedLive("an invalid schema name is refused with InvalidInput before any SQL runs", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(PgMigrations.run({ schema: "x\"; DROP SCHEMA public; --" }))
      assert.strictEqual(error._tag, "InvalidInput")
      const storeError = yield* Effect.flip(PgEventStore.make({ schema: "Bad-Name" }))
      assert.strictEqual(storeError._tag, "InvalidInput")
    }).pipe(Effect.provide(PgTest.layerClient())))

  it.live.skipIf(!hasPsql)("plain psql builds the same schema and grants as the library", () =>
    Effect.gen(function*() {
      const { adminUrl: url, role } = yield* PgTest.freshDatabase({ migrate: false })
      for (const file of [...migrationFiles(), "grants.sql"]) {
        for (let run = 0; run < 2; run++) { // twice: the files are safe to re-apply by hand
          execFileSync("psql", [
            url,
            "-v",
            "ON_ERROR_STOP=1",
            "-q",
            "-v",
            "schema=by_psql",
            "-v",
            `role=${role}`,
            "-f",
            path.join(root, "migrations", file)
          ], {
            stdio: ["ignore", "ignore", "pipe"]
          })
        }
      }
      const client = PgDatabase.layer({ url, maxConnections: 2 })
      yield* PgMigrations.run({ schema: "by_library" }).pipe(Effect.provide(client))
      yield* PgRoles.grantApplicationRole({ schema: "by_library", role }).pipe(Effect.provide(client))
      const [byPsql, byLibrary] = yield* Effect.all([catalog("by_psql"), catalog("by_library")]).pipe(
        Effect.provide(client)
      )
      assert.isAbove(byPsql.length, 20)
      assert.include(byPsql, `grant INSERT on events to ${role}`)
      assert.include(
        byPsql,
        "trigger CREATE TRIGGER events_append_only BEFORE DELETE OR UPDATE OR TRUNCATE ON events FOR EACH STATEMENT EXECUTE FUNCTION refuse_event_mutation()"
      )
      assert.deepStrictEqual(byPsql, byLibrary)
    }).pipe(Effect.scoped))
})
