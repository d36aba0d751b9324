// The README's example, kept compiling by `npm run typecheck` (README.md quotes this file).
import { Aggregate, CommandHandler, Decider } from "@eventfold/core"
import { PgDatabase, PgEventStore, PgMigrations } from "@eventfold/postgres"
import { Effect, Layer, Schema } from "effect"

class Deposited extends Schema.TaggedClass<Deposited>()("Deposited", { amount: Schema.Number }) {}
class Overdrawn extends Schema.TaggedError<Overdrawn>()("Overdrawn", { balance: Schema.Number }) {}

const Account = Aggregate.make({
  name: "Account",
  events: Schema.Union(Deposited),
  decider: Decider.make({
    initialState: 0,
    evolve: (balance: number, e: Deposited) => balance + e.amount,
    decide: (amount: number, balance: number) =>
      balance + amount < 0 ? Effect.fail(new Overdrawn({ balance })) : Effect.succeed([new Deposited({ amount })])
  })
})

const program = Effect.gen(function*() {
  const accounts = yield* CommandHandler.make(Account) // load → decide → append, retrying on ConcurrencyConflict
  const { state, version } = yield* accounts.handle("acc-1", 100)
  yield* Effect.log(`balance ${state} at version ${version}`)
})

const Db = PgDatabase.layerConfig() // DATABASE_URL
/** The program with its PostgreSQL Layers; `Effect.runPromise(runnable)` runs it against DATABASE_URL. */
export const runnable = program.pipe(
  Effect.provide(PgEventStore.layer().pipe(Layer.provide(PgMigrations.layer()), Layer.provide(Db)))
)
