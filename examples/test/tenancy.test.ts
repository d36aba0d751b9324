import { assert, describe, it } from "@effect/vitest"
import { MemoryEventfold } from "@eventfold/core"
import { PgTest } from "@eventfold/postgres"
import * as Effect from "effect/Effect"
import { program, type TenancyResult } from "../src/tenancy.js"

const check = (result: TenancyResult) => {
  // The same order id in two tenants: two orders, each at version 1, each with its own customer.
  assert.deepStrictEqual([result.acmeVersion, result.globexVersion], [1, 1])
  assert.deepStrictEqual([result.acmeCustomer, result.globexCustomer], ["alice", "bob"])
  // Globex cannot ship acme's order: for globex it does not exist.
  assert.strictEqual(result.crossShip, "CannotShipOrder")
  assert.strictEqual(result.withoutTenant, "TenantRequired")
  assert.deepStrictEqual(result.perTenant, { acme: 2, globex: 1 })
  assert.strictEqual(result.allTenants, 3)
}

describe("the multi-tenant example", () => {
  it.live("runs in memory", () =>
    Effect.map(program, check).pipe(Effect.provide(MemoryEventfold.layer({ tenancy: "multi" }))))

  it.live(`runs on PostgreSQL as the application role, with row-level security (${PgTest.serverLabel()})`, () =>
    Effect.map(program, check).pipe(
      Effect.provide(PgTest.layerEventfold({ tenancy: "multi", rowLevelSecurity: true }))
    ))
})
