import { assert, describe, it } from "@effect/vitest"
import { MemoryEventfold } from "@eventfold/core"
import { SchemaGuard } from "@eventfold/core/testing"
import { PgTest } from "@eventfold/postgres"
import * as Effect from "effect/Effect"
import { fileURLToPath } from "node:url"
import { CatalogItemAggregate, type EvolutionResult, program } from "../src/evolution.js"

const check = (result: EvolutionResult) => {
  // Three releases wrote three shapes under two names; nothing was rewritten.
  assert.deepStrictEqual(result.stored, [
    `1: ItemListed v1 {"name":"Lamp"}`,
    `2: PriceSet v1 {"price":"12.50"}`,
    `3: PriceChanged v2 {"amountCents":1399}`,
    `4: PriceChanged v3 {"amountCents":1500,"currency":"USD"}`
  ])
  assert.deepStrictEqual(result.lamp, { name: "Lamp", priceCents: 1500, currency: "USD", priceChanges: 3 })
  assert.deepStrictEqual(result.history, [
    "12.50 EUR (stored as PriceSet v1)",
    "13.99 EUR (stored as PriceChanged v2)",
    "15.00 USD (stored as PriceChanged v3)"
  ])
  assert.strictEqual(result.allPriceChanges, 4)
  assert.deepStrictEqual(result.priceList, { Lamp: "15.00 USD", Desk: "199.00 EUR" })
  assert.deepStrictEqual(result.atVersion2, { name: "Lamp", priceCents: 1250, currency: "EUR", priceChanges: 1 })
  assert.deepStrictEqual(result.endOfRelease1, result.atVersion2)
}

describe("the event evolution example", () => {
  it.live("runs in memory", () => Effect.map(program, check).pipe(Effect.provide(MemoryEventfold.layer())))

  it.live(`runs on PostgreSQL (${PgTest.serverLabel()})`, () =>
    Effect.map(program, check).pipe(Effect.provide(PgTest.layerEventfold())))

  // The recorded shapes are committed in examples/schemas: changing a Schema there without a version bump (an
  // upcaster) fails here. In CI nothing new is recorded, so a new version must be committed with its upcaster.
  it.effect("its event Schemas match the recorded ones (the schema change guard)", () =>
    Effect.map(
      SchemaGuard.check(CatalogItemAggregate, {
        directory: fileURLToPath(new URL("../schemas", import.meta.url))
      }),
      (report) => assert.deepStrictEqual(report.unchanged.length + report.recorded.length, 2)
    ))
})
