import { assert, describe, it } from "@effect/vitest"
import { EventStore } from "@eventfold/core"
import { PgTest } from "@eventfold/postgres"
import * as Effect from "effect/Effect"
import { story } from "../src/story.js"

const check = (result: Effect.Effect.Success<typeof story>) => {
  assert.strictEqual(result.createdVersion, 1)
  assert.strictEqual(result.shippedVersion, 2)
  assert.deepStrictEqual(result.reloaded, { status: "shipped", version: 2 })
  assert.deepStrictEqual(result.storedTypes, ["OrderCreated", "OrderShipped"])
  assert.include(result.refusedWith, "CannotShipOrder")
}

describe("the flagship story", () => {
  it.effect("runs on the in-memory store", () => Effect.map(story, check).pipe(Effect.provide(EventStore.layerMemory)))

  it.live(`runs on PostgreSQL (${PgTest.serverLabel()})`, () =>
    Effect.map(story, check).pipe(Effect.provide(PgTest.layerEventStore())))
})
