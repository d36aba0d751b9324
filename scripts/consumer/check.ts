// The consumer check's type test (scripts/consumer-check.mjs copies it into a new project outside the repository):
// `tsc --noEmit` (module NodeNext, strict) against the packed declarations. It never runs.
import {
  Aggregate,
  CommandHandler,
  type ConcurrencyConflict,
  Decider,
  EventQuery,
  MemoryEventfold
} from "@eventfold/core"
import * as EventStore from "@eventfold/core/EventStore"
import { NatsPublisher } from "@eventfold/outbox-nats"
import { PgEventfold } from "@eventfold/postgres"
import { Effect, type Layer, Schema } from "effect"
// @ts-expect-error the packages' internal modules are not exported
import type * as _Internal from "@eventfold/core/internal/json"

class Deposited extends Schema.TaggedClass<Deposited>()("Deposited", { amount: Schema.Number }) {}
class Withdrawn extends Schema.TaggedClass<Withdrawn>()("Withdrawn", { amount: Schema.Number }) {}
class Overdrawn extends Schema.TaggedError<Overdrawn>()("Overdrawn", { balance: Schema.Number }) {}

const Account = Aggregate.make({
  name: "Account",
  events: Schema.Union(Deposited, Withdrawn),
  decider: Decider.make({
    initialState: 0,
    evolve: (balance: number, event: Deposited | Withdrawn) =>
      event._tag === "Deposited" ? balance + event.amount : balance - event.amount,
    decide: (amount: number, balance: number) =>
      balance + amount < 0
        ? Effect.fail(new Overdrawn({ balance }))
        : Effect.succeed([amount >= 0 ? new Deposited({ amount }) : new Withdrawn({ amount: -amount })])
  })
})

const program = Effect.gen(function*() {
  const accounts = yield* CommandHandler.make(Account)
  const { state, version } = yield* accounts.handle("acc-1", 100).pipe(
    Effect.catchTag("Overdrawn", (e: Overdrawn) => Effect.succeed({ state: e.balance, version: 0 })),
    Effect.catchTag("ConcurrencyConflict", (e: ConcurrencyConflict) => Effect.die(e))
  )
  // @ts-expect-error commands are numbers
  yield* accounts.handle("acc-1", "100")
  const deposits = yield* EventQuery.readStream(Account, "acc-1", { types: ["Deposited"] })
  const first: Deposited | undefined = deposits[0]?.event
  // @ts-expect-error Shipped is no event type of Account
  yield* EventQuery.readStream(Account, "acc-1", { types: ["Shipped"] })
  const store = yield* EventStore.EventStore
  const balance: number = state
  return { balance, version, first, store }
})

// Each stack provides everything the program needs.
export const inMemory: Effect.Effect<unknown, unknown, never> = program.pipe(Effect.provide(MemoryEventfold.layer()))
export const onPostgres: Effect.Effect<unknown, unknown, never> = program.pipe(
  Effect.provide(PgEventfold.layerConfig())
)
export const publisher: Layer.Layer<never, unknown, never> = NatsPublisher.layer({ servers: "nats://127.0.0.1:4222" })

// The declarations are real types, not any: each package refuses a wrong option.
// @ts-expect-error migrations are "run" or "verify"
PgEventfold.layer({ database: { url: "postgres://127.0.0.1/app" }, migrations: "later" })
// @ts-expect-error servers are strings
NatsPublisher.layer({ servers: 4222 })
