/**
 * Multi-stream transactions (`npm run example:transactions`): a transfer debits one account and credits another in
 * one database transaction, `PgTransaction.withTransaction(..., { retry })`. Twenty transfers race over three
 * accounts. A transaction that began writing before another one appended to the same account is refused
 * (`ConcurrencyConflict` with `reason: "transaction-order"`), because committing it would put that account's later
 * event ahead of its earlier one in the feed; the retry runs the whole transfer again with a new transaction. Money
 * is neither made nor lost, and the feed shows every account in version order.
 */
import { Aggregate, CommandHandler, Decider, EventStore } from "@eventfold/core"
import { PgTransaction } from "@eventfold/postgres"
import * as Chunk from "effect/Chunk"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { onPostgres, runIfMain } from "./run.js"

class Credited extends Schema.TaggedClass<Credited>()("Credited", { amount: Schema.Number }) {}
class Debited extends Schema.TaggedClass<Debited>()("Debited", { amount: Schema.Number }) {}

/** The balance would go below zero. */
export class InsufficientFunds
  extends Schema.TaggedError<InsufficientFunds>()("InsufficientFunds", { balance: Schema.Number })
{}

/** A positive amount in, a negative one out. */
type Move = number

const Account = Aggregate.make({
  name: `Account-${crypto.randomUUID().slice(0, 8)}`,
  events: Schema.Union(Credited, Debited),
  decider: Decider.make({
    initialState: 0,
    evolve: (balance: number, event: Credited | Debited) =>
      event._tag === "Credited" ? balance + event.amount : balance - event.amount,
    decide: (move: Move, balance: number) =>
      move >= 0
        ? Effect.succeed([new Credited({ amount: move })])
        : balance + move < 0
        ? Effect.fail(new InsufficientFunds({ balance }))
        : Effect.succeed([new Debited({ amount: -move })])
  })
})

/** What the example observed. */
export interface TransactionsResult {
  readonly transfers: number
  readonly refused: number
  /** How many times a transfer's transaction ran again after a conflict. */
  readonly retries: number
  readonly balances: ReadonlyArray<number>
  /** Per account, the versions in the order the feed delivers them. */
  readonly feedVersions: ReadonlyArray<ReadonlyArray<number>>
}

/** The example; it needs PostgreSQL (a `SqlClient`) for the transactions. */
export const program = Effect.gen(function*() {
  const accounts = yield* CommandHandler.make(Account)
  const ids = ["alice", "bob", "carol"]
  for (const id of ids) yield* accounts.handle(id, 100)
  yield* Console.log(`1. ${ids.join(", ")} open with 100 each (stream type ${Account.name})`)

  let retries = 0
  // The two accounts are written in one fixed order (by id), as two row lockers must be to avoid deadlocks; the
  // transaction makes the order invisible: a failed debit rolls the credit back.
  const transfer = (from: string, to: string, amount: number) =>
    PgTransaction.withTransaction(
      Effect.forEach(
        [{ id: from, move: -amount }, { id: to, move: amount }].sort((a, b) => a.id.localeCompare(b.id)),
        ({ id, move }) => Effect.zipLeft(accounts.handle(id, move), Effect.sleep("2 millis")), // others commit meanwhile
        { discard: true }
      ).pipe(Effect.tapErrorTag("ConcurrencyConflict", () => Effect.sync(() => retries++))),
      { retry: Schedule.exponential("5 millis").pipe(Schedule.jittered, Schedule.intersect(Schedule.recurs(30))) }
    )

  const plan = Array.from({ length: 20 }, (_, i) => ({ from: ids[i % 3]!, to: ids[(i + 1) % 3]!, amount: 10 + i }))
  const outcomes = yield* Effect.forEach(
    plan,
    ({ amount, from, to }) =>
      transfer(from, to, amount).pipe(
        Effect.as("done" as const),
        Effect.catchTag("InsufficientFunds", () => Effect.succeed("refused" as const))
      ),
    { concurrency: "unbounded" }
  )
  const refused = outcomes.filter((o) => o === "refused").length
  yield* Console.log(
    `2. ${plan.length} transfers raced: ${plan.length - refused} done, ${refused} refused for funds, ` +
      `${retries} transaction retries after a conflict`
  )

  const balances = yield* Effect.forEach(ids, (id) => Effect.map(accounts.load(id), (loaded) => loaded.state))
  yield* Console.log(`3. balances ${balances.join(" + ")} = ${balances.reduce((a, b) => a + b, 0)}`)

  // The feed shows a commit once every older transaction on the server has ended: wait until it shows them all.
  const written = ids.length + 2 * (plan.length - refused)
  const feed = yield* EventStore.streamAll({ streamTypes: [Account.name] }).pipe(
    Stream.runCollect,
    Effect.map(Chunk.toReadonlyArray),
    Effect.filterOrFail((events) => events.length >= written, () => "not yet" as const),
    Effect.retry({ while: (e) => e === "not yet", schedule: Schedule.spaced("20 millis") }),
    Effect.timeout("20 seconds")
  )
  const feedVersions = ids.map((id) => feed.filter((e) => e.streamId === id).map((e) => e.version))
  yield* Console.log(
    `4. the feed delivers each account in version order: ${
      feedVersions.every((vs) => vs.every((v, i) => v === i + 1))
        ? "yes"
        : "NO"
    }`
  )
  const result: TransactionsResult = { transfers: plan.length, refused, retries, balances, feedVersions }
  return result
})

runIfMain(import.meta, "multi-stream transactions", onPostgres(program))
