import { assert, describe, it } from "@effect/vitest"
import { PgTest } from "@eventfold/postgres"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import { inMemory, runnable } from "../src/readme.js"

describe("the README's example", () => {
  it.effect("runs in memory", () =>
    Effect.map(inMemory, (result) => assert.deepStrictEqual(result, { state: 100, version: 1 })))

  it.live(`runs on PostgreSQL with PgEventfold.layerConfig() (${PgTest.serverLabel()})`, () =>
    Effect.gen(function*() {
      const db = yield* PgTest.freshDatabase({ migrate: false })
      const env = ConfigProvider.fromMap(new Map([["DATABASE_URL", db.adminUrl]]))
      assert.deepStrictEqual(yield* runnable.pipe(Effect.withConfigProvider(env)), { state: 100, version: 1 })
    }).pipe(Effect.scoped))
})
