/**
 * The flagship example (`npm start`): the seed tutorial's order story on PostgreSQL. It uses `DATABASE_URL` when set,
 * and otherwise starts a throwaway embedded PostgreSQL, so a fresh clone needs no database setup.
 */
import { NodeRuntime } from "@effect/platform-node"
import { PgDatabase, PgEventStore, PgMigrations } from "@eventfold/postgres"
import * as Config from "effect/Config"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { database } from "./run.js"
import { story } from "./story.js"

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
