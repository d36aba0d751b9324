import { assert, describe, it } from "@effect/vitest"
import { MemoryEventfold } from "@eventfold/core"
import { PgDatabase, PgTest } from "@eventfold/postgres"
import * as Effect from "effect/Effect"
import { createOrderListTable, program, type ProjectionResult } from "../src/projection.js"

const check = (result: ProjectionResult) => {
  const { customerId } = result
  const [first, second] = [1, 2].map((n) => `order-${customerId.slice("customer-".length)}-${n}`) as [string, string]
  const created = (orderId: string, total: number) =>
    ({ orderId, customerId, total, status: "created", trackingNumber: null }) as const
  const shipped = { ...created(first, 15), status: "shipped", trackingNumber: "TRACK-1" } as const
  // Each command is in the read model as soon as waitFor(result) returns.
  assert.deepStrictEqual(result.live, [
    [created(first, 15)],
    [created(first, 15), created(second, 45)],
    [shipped, created(second, 45)]
  ])
  // After the reset, waitFor returns only once the rebuild has replayed every event and the read model is whole.
  assert.strictEqual(result.replayed, 3)
  assert.deepStrictEqual(result.rebuilt, [shipped, created(second, 45)])
}

describe("the projection example", () => {
  it.live("runs in memory, on a Subscription into a Ref", () =>
    Effect.map(program, check).pipe(Effect.provide(MemoryEventfold.layer())))

  it.live(`runs on PostgreSQL, on a PgProjection into a table (${PgTest.serverLabel()})`, () =>
    Effect.gen(function*() {
      const db = yield* PgTest.freshDatabase()
      // The table is the application's migration, run by the owner; the program runs as the application role.
      yield* createOrderListTable.pipe(Effect.provide(PgDatabase.layer({ url: db.adminUrl, maxConnections: 1 })))
      const stack = PgTest.eventfold(db)
      check(yield* program.pipe(Effect.provide(stack)))
    }).pipe(Effect.scoped))
})
