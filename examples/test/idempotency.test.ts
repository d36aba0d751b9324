import { assert, describe, it } from "@effect/vitest"
import { MemoryEventfold } from "@eventfold/core"
import { PgTest } from "@eventfold/postgres"
import * as Effect from "effect/Effect"
import { type IdempotencyResult, program } from "../src/idempotency.js"

const check = (result: IdempotencyResult) => {
  // The retry after the lost response gets the first result, and the create was written once.
  assert.strictEqual(result.lost.status, 200)
  assert.deepStrictEqual(result.created, result.lost)
  assert.strictEqual(result.created.status === 200 && result.created.body.version, 1)
  assert.strictEqual(result.created.status === 200 && result.created.body.eventIds.length, 1)
  assert.strictEqual(result.eventsAfterCreate, 1)
  // Eight concurrent repeats: one write, eight identical answers.
  assert.strictEqual(result.shipped.length, 8)
  for (const response of result.shipped) assert.deepStrictEqual(response, result.shipped[0])
  assert.deepStrictEqual(result.shipped[0]!.status === 200 && result.shipped[0]!.body.orderStatus, "shipped")
  assert.strictEqual(result.shipped[0]!.status === 200 && result.shipped[0]!.body.version, 2)
  assert.strictEqual(result.eventsAfterShip, 2)
  // The same key with another command is a typed refusal; a new key is a new command, refused by the domain.
  assert.strictEqual(result.reused.status, 422)
  assert.strictEqual(result.reused.status !== 200 && result.reused.body.error, "IdempotencyKeyReused")
  assert.strictEqual(result.retriedUnderNewKey.status, 409)
  assert.strictEqual(
    result.retriedUnderNewKey.status !== 200 && result.retriedUnderNewKey.body.error,
    "OrderAlreadyExists"
  )
  assert.strictEqual(result.storedKeys.length, 2)
  assert.notStrictEqual(result.storedKeys[0], result.storedKeys[1])
  for (const key of result.storedKeys) assert.match(key ?? "", /^req-/)
}

describe("the command API example", () => {
  it.live("runs in memory", () => Effect.map(program, check).pipe(Effect.provide(MemoryEventfold.layer())))

  it.live(`runs on PostgreSQL as the application role (${PgTest.serverLabel()})`, () =>
    Effect.map(Effect.provide(program, PgTest.layerEventfold()), check))
})
