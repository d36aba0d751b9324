// The consumer check's program (scripts/consumer-check.mjs copies it into a new project outside the repository): plain
// JavaScript that a user would write, run with plain `node` against the packed packages and the registry's peers.
import { PgClient } from "@effect/sql-pg"
import {
  Aggregate,
  CommandHandler,
  ConcurrencyConflict,
  Decider,
  EventQuery,
  ExpectedVersion,
  MemoryEventfold
} from "@eventfold/core"
import * as Position from "@eventfold/core/Position"
import { NatsPublisher } from "@eventfold/outbox-nats"
import { PgDatabase, PgEventfold } from "@eventfold/postgres"
import { Effect, Option, Schema } from "effect"
import assert from "node:assert/strict"
import { randomUUID } from "node:crypto"

class Deposited extends Schema.TaggedClass()("Deposited", { amount: Schema.Number }) {}
class Withdrawn extends Schema.TaggedClass()("Withdrawn", { amount: Schema.Number }) {}
class Overdrawn extends Schema.TaggedError()("Overdrawn", { balance: Schema.Number }) {}

const Account = Aggregate.make({
  name: "Account",
  events: Schema.Union(Deposited, Withdrawn),
  decider: Decider.make({
    initialState: 0,
    evolve: (balance, event) => event._tag === "Deposited" ? balance + event.amount : balance - event.amount,
    decide: (amount, balance) =>
      balance + amount < 0
        ? Effect.fail(new Overdrawn({ balance }))
        : Effect.succeed([amount >= 0 ? new Deposited({ amount }) : new Withdrawn({ amount: -amount })])
  })
})

// The same program on every store: commands, a domain error, a pinned version, typed reads of the stream.
const program = Effect.gen(function*() {
  const accounts = yield* CommandHandler.make(Account)
  const id = `acc-${randomUUID()}`
  yield* accounts.handle(id, 100)
  const after = yield* accounts.handle(id, -30)
  assert.equal(after.state, 70)
  assert.equal(after.version, 2)
  assert.ok(Option.isSome(after.position) && Position.isAfter(after.position.value, Position.start), "a feed position")

  const overdrawn = yield* Effect.flip(accounts.handle(id, -500))
  assert.ok(overdrawn instanceof Overdrawn, "the domain error arrives typed")
  const conflict = yield* Effect.flip(accounts.handle(id, 1, { expectedVersion: ExpectedVersion.Exact(1) }))
  assert.ok(conflict instanceof ConcurrencyConflict, "a stale expected version is a ConcurrencyConflict")

  const items = yield* EventQuery.readStream(Account, id)
  assert.deepEqual(items.map((item) => item.event._tag), ["Deposited", "Withdrawn"])
  assert.ok(items[1].event instanceof Withdrawn, "events decode to their classes")
  const deposits = yield* EventQuery.readStream(Account, id, { types: ["Deposited"] })
  assert.equal(deposits.length, 1)
  return (yield* accounts.load(id)).state
})

const inMemory = Effect.gen(function*() {
  const balance = yield* program.pipe(Effect.provide(MemoryEventfold.layer()))
  assert.equal(balance, 70)
  console.log("memory: commands, typed errors and typed reads on MemoryEventfold ok")
})

// On a database of its own, created on DATABASE_URL's server and dropped afterwards, as the tests do.
const onPostgres = (serverUrl) => {
  const admin = (effect) => Effect.provide(effect, PgDatabase.layer({ url: serverUrl, maxConnections: 1 }))
  const name = `eventfold_consumer_${randomUUID().replace(/-/g, "").slice(0, 16)}`
  return Effect.gen(function*() {
    yield* Effect.acquireRelease(
      admin(Effect.flatMap(PgClient.PgClient, (sql) => sql`CREATE DATABASE ${sql(name)}`)),
      () =>
        Effect.orDie(admin(Effect.flatMap(PgClient.PgClient, (sql) => sql`DROP DATABASE ${sql(name)} WITH (FORCE)`)))
    )
    const url = new URL(serverUrl)
    url.pathname = `/${name}`
    const balance = yield* program.pipe(Effect.provide(PgEventfold.layer({ database: { url: url.toString() } })))
    assert.equal(balance, 70)
    console.log(`postgres: the same program on PgEventfold (database ${name}, migrated, then dropped) ok`)
  }).pipe(Effect.scoped)
}

const main = Effect.gen(function*() {
  assert.equal(typeof NatsPublisher.layer, "function", "@eventfold/outbox-nats loads")
  yield* inMemory
  const serverUrl = process.env.DATABASE_URL
  if (serverUrl) yield* onPostgres(serverUrl)
  else console.log("postgres: skipped (DATABASE_URL is not set)")
})

Effect.runPromise(main).then(
  () => console.log("consumer program ok"),
  (error) => {
    console.error(error)
    process.exitCode = 1
  }
)
