import { assert, describe, it } from "@effect/vitest"
import { PgTest } from "@eventfold/postgres"
import * as Effect from "effect/Effect"
import { program } from "../src/transactions.js"

// PostgreSQL only: the example is about database transactions, which the in-memory stack does not have.
describe("the multi-stream transactions example", () => {
  it.live(`moves money atomically and keeps the feed in order, on PostgreSQL (${PgTest.serverLabel()})`, () =>
    Effect.gen(function*() {
      const result = yield* Effect.provide(program, PgTest.layerEventfold())
      assert.strictEqual(result.balances.reduce((a, b) => a + b, 0), 300)
      assert.isTrue(result.balances.every((b) => b >= 0))
      // Every account's events reach the feed as versions 1, 2, 3, ...: opening plus each transfer in or out.
      for (const versions of result.feedVersions) {
        assert.deepStrictEqual(versions, Array.from({ length: versions.length }, (_, i) => i + 1))
      }
      const done = result.transfers - result.refused
      assert.strictEqual(result.feedVersions.flat().length, 3 + 2 * done)
    }))
})
