// One embedded PostgreSQL for the whole run when no DATABASE_URL is given; each test file makes its own database.
import * as PgEmbedded from "@eventfold/postgres/PgEmbedded"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"

export default async function setup() {
  if (process.env.DATABASE_URL) return
  const scope = Effect.runSync(Scope.make())
  const server = await Effect.runPromise(Scope.extend(PgEmbedded.start(), scope))
  process.env.EVENTFOLD_TEST_ADMIN_URL = server.url
  return async () => {
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
}
