import * as PgClient from "@effect/sql-pg/PgClient"
import { assert, describe, it } from "@effect/vitest"
import { PgDatabase, PgEventfold, PgTest } from "@eventfold/postgres"
import * as Effect from "effect/Effect"
import { program } from "../src/tenantMove.js"

// PostgreSQL only: moving a tenant copies rows between schemas. The mover needs the tables' owner and
// pg_read_all_stats, so the whole example runs as the test server's admin on a fresh database.
describe("the tenant move example", () => {
  it.live(
    `moves acme to a schema of its own while globex writes, on PostgreSQL (${PgTest.serverLabel()})`,
    () =>
      Effect.gen(function*() {
        const db = yield* PgTest.freshDatabase()
        const database = { url: db.adminUrl, maxConnections: 10 }
        const result = yield* Effect.provide(program(database), PgEventfold.layer({ database, tenancy: "multi" }))

        // Every acme event moved: the mover's counts, and the example's own digest over both schemas, agree.
        assert.isAbove(result.source.events, 0)
        assert.deepStrictEqual(result.target, result.source)
        assert.strictEqual(result.summary.events, result.source.events)
        assert.strictEqual(result.summary.streams, result.acmeOrders.length)
        assert.match(result.summary.checksum, /^[0-9a-f]{64}$/)
        // Acme's orders load from tenant_acme at the versions they had in the shared store (5 shipped: version 2).
        assert.deepStrictEqual(result.versionsAfter, result.versionsBefore)
        assert.strictEqual(result.versionsBefore.filter((v) => v === 2).length, 5)
        assert.strictEqual(result.shippedVersion, 2)
        // The shared store refuses acme; globex kept writing, through the cut-over too, and lost nothing.
        assert.strictEqual(result.acmeAtSource, "TenantUnavailable (moved)")
        assert.isAtLeast(result.globexDuringCutOver, 2)
        assert.isAtLeast(result.globexAcknowledged, result.globexDuringCutOver)
        assert.strictEqual(result.globexPresent, result.globexAcknowledged)

        // The example created tenant_acme, so it dropped it and lifted acme's block in the shared store.
        const left = yield* Effect.gen(function*() {
          const sql = yield* PgClient.PgClient
          return yield* sql<{ readonly schemas: number; readonly blocks: number }>`SELECT
          (SELECT count(*)::integer FROM pg_namespace WHERE nspname = 'tenant_acme') AS schemas,
          (SELECT count(*)::integer FROM eventfold.tenant_blocks WHERE tenant_id = 'acme') AS blocks`
        }).pipe(Effect.provide(PgDatabase.layer({ url: db.adminUrl, maxConnections: 1 })))
        assert.deepStrictEqual(left, [{ schemas: 0, blocks: 0 }])
      }).pipe(Effect.scoped),
    { timeout: 120_000 }
  )
})
