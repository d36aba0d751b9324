// Loads on PostgreSQL: the contract the memory stack passes, with the stores as the least-privilege application
// role and the lifecycle as the owner (truncation deletes events, which the application role may not).
import { LoadContract } from "@eventfold/core/testing"
import { PgDatabase, PgStreamLifecycle, PgTest } from "@eventfold/postgres"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

/** The stack as the application role, with the owner's StreamLifecycle on the same database. */
const stack = Layer.unwrapScoped(
  Effect.map(PgTest.freshDatabase(), (database) => {
    const app = PgTest.eventfold(database)
    const owner = PgStreamLifecycle.layer().pipe(
      Layer.provide(PgDatabase.layer({ url: database.adminUrl, maxConnections: 4 }))
    )
    return Layer.merge(app, owner)
  })
)

LoadContract.suite(`postgres (${PgTest.serverLabel()})`, stack)
