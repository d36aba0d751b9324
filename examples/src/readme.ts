// The README's example, kept compiling by `npm run typecheck` and run by examples/test/readme.test.ts.
import { Aggregate, CommandHandler, Decider, MemoryEventfold } from "@eventfold/core"
import { PgEventfold } from "@eventfold/postgres"
import { Effect, Schema } from "effect"

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
  return { state, version }
})

/** Against PostgreSQL: DATABASE_URL, EVENTFOLD_SCHEMA, ... (migrates at startup). */
export const runnable = program.pipe(Effect.provide(PgEventfold.layerConfig()))
/** The same program in memory, for tests. */
export const inMemory = program.pipe(Effect.provide(MemoryEventfold.layer()))
