import { assert, describe, it } from "@effect/vitest"
import { PgTest } from "@eventfold/postgres"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { fromEnvironment, layer, layerMemory, malformed, program, refusal } from "../src/configuration.js"

describe("the configuration example", () => {
  it.effect("configures the in-memory stack from the same variables", () =>
    Effect.gen(function*() {
      const on = yield* program.pipe(
        Effect.provide(layerMemory),
        Effect.withConfigProvider(fromEnvironment({ EVENTFOLD_OUTBOX: "true", EVENTFOLD_NOTIFY: "false" }))
      )
      assert.deepStrictEqual(on.settings, {
        schema: "eventfold",
        outbox: true,
        notify: false,
        pooler: "none",
        tenancy: "single",
        rowLevelSecurity: false,
        groupCommit: true,
        groupCommitMaxBatch: 64
      })
      assert.isTrue(Option.isNone(on.session))
      assert.deepStrictEqual(on.outbox, { on: true, pending: 1 })

      const off = yield* program.pipe(Effect.provide(layerMemory), Effect.withConfigProvider(fromEnvironment({})))
      assert.isFalse(off.settings.outbox)
      assert.isFalse(off.outbox.on)
      assert.include(off.outbox.on ? "" : off.outbox.reason, "the outbox is off")
    }))

  it.live(`configures the PostgreSQL stack, pool and sessions included (${PgTest.serverLabel()})`, () =>
    Effect.gen(function*() {
      const db = yield* PgTest.freshDatabase({ schema: "shop" })
      const result = yield* program.pipe(
        Effect.provide(layer),
        Effect.withConfigProvider(fromEnvironment({
          DATABASE_URL: db.url,
          EVENTFOLD_SCHEMA: "shop",
          EVENTFOLD_OUTBOX: "true",
          EVENTFOLD_POOLER: "transaction",
          EVENTFOLD_GROUP_COMMIT_MAX_BATCH: "64",
          EVENTFOLD_MIGRATIONS: "verify",
          EVENTFOLD_PG_MAX_CONNECTIONS: "3",
          EVENTFOLD_PG_APPLICATION_NAME: "orders-api",
          EVENTFOLD_PG_STATEMENT_TIMEOUT: "30 seconds",
          EVENTFOLD_PG_LOCK_TIMEOUT: "5000",
          EVENTFOLD_PG_IDLE_IN_TRANSACTION_TIMEOUT: "1 minute"
        }))
      )
      assert.deepStrictEqual(result.settings, {
        schema: "shop",
        outbox: true,
        notify: true,
        pooler: "transaction",
        tenancy: "single",
        rowLevelSecurity: false,
        groupCommit: true,
        groupCommitMaxBatch: 64
      })
      assert.deepStrictEqual(
        result.session,
        Option.some({
          application_name: "orders-api",
          statement_timeout: "30s",
          lock_timeout: "5s",
          idle_in_transaction_session_timeout: "1min"
        })
      )
      assert.deepStrictEqual(result.outbox, { on: true, pending: 1 })
    }).pipe(Effect.scoped))

  it.effect("refuses malformed values with a ConfigError naming the variable", () =>
    Effect.gen(function*() {
      const [pooler, timeout, url] = yield* Effect.forEach(malformed, refusal)
      assert.strictEqual(
        pooler,
        `ConfigError (Invalid data at EVENTFOLD_POOLER: "Expected one of (none, transaction) but received "bogus"")`
      )
      assert.match(timeout!, /^ConfigError \(Invalid data at EVENTFOLD_PG_STATEMENT_TIMEOUT: .*got "soon"/)
      assert.match(url!, /^ConfigError \(Invalid data at DATABASE_URL: "malformed PostgreSQL URL/)
      assert.notInclude(url!, "cret", "the password is never quoted")
    }))
})
