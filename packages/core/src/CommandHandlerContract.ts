/**
 * The behaviour `CommandHandler` must have on every `EventStore`, as one exported test suite: the event ids of a
 * result, and idempotency keys (a repeat writes once and returns the first result, also 16 at once; a different
 * command under the same key is refused).
 *
 * @since 0.2.0
 */
import { assert, layer } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Aggregate from "./Aggregate.js"
import * as CommandHandler from "./CommandHandler.js"
import * as Decider from "./Decider.js"
import * as Errors from "./Errors.js"
import * as EventStore from "./EventStore.js"

class Deposited extends Schema.TaggedClass<Deposited>()("Deposited", { amount: Schema.Number }) {}
class Withdrawn extends Schema.TaggedClass<Withdrawn>()("Withdrawn", { amount: Schema.Number }) {}
class InterestPaid extends Schema.TaggedClass<InterestPaid>()("InterestPaid", { amount: Schema.Number }) {}
const AccountEvent = Schema.Union(Deposited, Withdrawn, InterestPaid)
type AccountEvent = typeof AccountEvent.Type

class InsufficientFunds extends Schema.TaggedError<InsufficientFunds>()("InsufficientFunds", {
  balance: Schema.Number,
  amount: Schema.Number
}) {}

type Command =
  | { readonly _tag: "Deposit"; readonly amount: number }
  | { readonly _tag: "Withdraw"; readonly amount: number }
  // Its event depends on the state: decided again after a first payment, it pays another amount.
  | { readonly _tag: "PayInterest"; readonly percent: number }

const decider = Decider.make<number, Command, AccountEvent, InsufficientFunds>({
  initialState: 0,
  evolve: (balance, event) => event._tag === "Withdrawn" ? balance - event.amount : balance + event.amount,
  decide: (command, balance) => {
    switch (command._tag) {
      case "Deposit":
        return Effect.succeed([new Deposited({ amount: command.amount })])
      case "Withdraw":
        return balance < command.amount
          ? Effect.fail(new InsufficientFunds({ balance, amount: command.amount }))
          : Effect.succeed([new Withdrawn({ amount: command.amount })])
      case "PayInterest": {
        const amount = Math.round(balance * command.percent) / 100
        return Effect.succeed(amount === 0 ? [] : [new InterestPaid({ amount })])
      }
    }
  }
})

const Account = Aggregate.make({ name: "IdemAccount", decider, events: AccountEvent })

const unique = (prefix: string) => `${prefix}-${crypto.randomUUID()}`

/**
 * The store in context, yielding before each read and append, with every other read held back: of 16 concurrent
 * repeats, half decide on the state before the first append (their appends are idempotent repeats) and half on the
 * state after it (they fail to decide, or decide other events and meet `DuplicateEvent`).
 */
const staggered = Effect.map(EventStore.EventStore, (store) => {
  let reads = 0
  return EventStore.EventStore.of({
    ...store,
    readStream: (options) =>
      Effect.yieldNow().pipe(
        Effect.zipRight(reads++ % 2 === 1 ? Effect.sleep(Duration.millis(5)) : Effect.void),
        Effect.zipRight(store.readStream(options))
      ),
    append: (options) => Effect.zipRight(Effect.yieldNow(), store.append(options))
  })
})

const readIds = (streamId: string) =>
  Effect.flatMap(EventStore.EventStore, (store) => store.readStream({ streamType: Account.name, streamId })).pipe(
    Effect.map((events) => events.map((e) => e.eventId))
  )

/**
 * Registers the contract suite against a Layer providing an `EventStore`; built once, each test uses its own streams.
 *
 * @since 0.2.0
 * @category suites
 */
export const suite = <E>(name: string, storeLayer: Layer.Layer<EventStore.EventStore, E>): void =>
  layer(storeLayer, { excludeTestServices: true, timeout: "120 seconds" })(`CommandHandler contract: ${name}`, (it) => {
    it.effect("a result names the events it appended, in order, as stored", () =>
      Effect.gen(function*() {
        const handler = yield* CommandHandler.make(Account)
        const id = unique("ids")
        const first = yield* handler.handle(id, { _tag: "Deposit", amount: 10 })
        const second = yield* handler.handle(id, { _tag: "Withdraw", amount: 4 })
        assert.strictEqual(first.eventIds.length, 1)
        assert.deepStrictEqual([...first.eventIds, ...second.eventIds], yield* readIds(id))
      }))

    it.effect("64 fibers x 5 commands on one stream in one process: every command succeeds without a single retry", () =>
      Effect.gen(function*() {
        // No retries at all: a conflict between fibers of this process would fail its command. The store yields
        // between a command's read and its append, so that, unserialised, the fibers would interleave there.
        const yielding = yield* Effect.map(EventStore.EventStore, (store) =>
          EventStore.EventStore.of({
            ...store,
            append: (options) => Effect.zipRight(Effect.yieldNow(), store.append(options))
          }))
        const make = CommandHandler.make(Account, { retry: Schedule.recurs(0) }).pipe(
          Effect.provideService(EventStore.EventStore, yielding)
        )
        const handler = yield* make
        const other = yield* make
        const id = unique("busy")
        const results = yield* Effect.forEach(
          Array.from({ length: 64 }, (_, fiber) => fiber),
          (fiber) =>
            Effect.forEach(
              Array.from({ length: 5 }, (_, i) => i),
              // Two handlers of the same aggregate share the store's lock too.
              () =>
                Effect.zipRight(
                  Effect.yieldNow(),
                  (fiber % 2 === 0 ? handler : other).handle(id, { _tag: "Deposit", amount: 1 })
                ),
              { concurrency: 1 }
            ),
          { concurrency: "unbounded" }
        )
        const versions = results.flat().map((r) => r.version).sort((a, b) => a - b)
        assert.deepStrictEqual(versions, Array.from({ length: 320 }, (_, i) => i + 1))
        assert.strictEqual((yield* handler.load(id)).state, 320)
      }))

    it.effect("16 concurrent repeats of one keyed command write once and all return the first result", () =>
      Effect.gen(function*() {
        const handler = yield* CommandHandler.make(Account).pipe(
          Effect.provideService(EventStore.EventStore, yield* staggered)
        )
        // Decided again on the state the first one left, a repeat would fail (Withdraw) or pay more (PayInterest).
        for (const command of [{ _tag: "Withdraw", amount: 100 }, { _tag: "PayInterest", percent: 10 }] as const) {
          const id = unique("race")
          const opened = yield* handler.handle(id, { _tag: "Deposit", amount: 100 })
          const key = unique("request")
          const results = yield* Effect.forEach(
            Array.from({ length: 16 }, () => command),
            (c) => handler.handle(id, c, { idempotencyKey: key }),
            { concurrency: "unbounded" }
          )
          for (const result of results) assert.deepStrictEqual(result, results[0], command._tag)
          const first = results[0]!
          assert.strictEqual(first.version, 2)
          assert.strictEqual(first.events.length, 1)
          assert.deepStrictEqual(yield* readIds(id), [...opened.eventIds, ...first.eventIds])
          assert.deepStrictEqual(yield* handler.load(id), { state: first.state, version: 2 })
        }
      }))

    it.effect("a repeat after the stream moved on returns the first result, without deciding again", () =>
      Effect.gen(function*() {
        const handler = yield* CommandHandler.make(Account)
        const id = unique("repeat")
        yield* handler.handle(id, { _tag: "Deposit", amount: 100 })
        const first = yield* handler.handle(id, { _tag: "Withdraw", amount: 60 }, { idempotencyKey: "withdraw-1" })
        yield* handler.handle(id, { _tag: "Deposit", amount: 7 })
        const repeat = yield* handler.handle(id, { _tag: "Withdraw", amount: 60 }, { idempotencyKey: "withdraw-1" })
        assert.deepStrictEqual(repeat, first)
        assert.deepStrictEqual(repeat.state, 40)
        assert.deepStrictEqual(yield* handler.load(id), { state: 47, version: 3 })
        // Another handler (another process) derives the same ids from the key.
        const elsewhere = yield* CommandHandler.make(Account)
        const again = yield* elsewhere.handle(id, { _tag: "Withdraw", amount: 60 }, { idempotencyKey: "withdraw-1" })
        assert.deepStrictEqual(again, first)
        assert.strictEqual((yield* readIds(id)).length, 3)
      }))

    it.effect("the same key with a different command is refused with IdempotencyKeyReused, and writes nothing", () =>
      Effect.gen(function*() {
        const handler = yield* CommandHandler.make(Account)
        const id = unique("reused")
        yield* handler.handle(id, { _tag: "Deposit", amount: 100 }, { idempotencyKey: "k" })
        const error = yield* Effect.flip(handler.handle(id, { _tag: "Deposit", amount: 99 }, { idempotencyKey: "k" }))
        assert.instanceOf(error, Errors.IdempotencyKeyReused)
        if (error instanceof Errors.IdempotencyKeyReused) {
          assert.deepStrictEqual(
            [error.streamType, error.streamId, error.idempotencyKey],
            [Account.name, id, "k"]
          )
        }
        const other = yield* Effect.flip(handler.handle(id, { _tag: "Withdraw", amount: 100 }, { idempotencyKey: "k" }))
        assert.strictEqual(other._tag, "IdempotencyKeyReused")
        assert.deepStrictEqual(yield* handler.load(id), { state: 100, version: 1 })
        // A key belongs to its stream: another stream takes the same key for its own command.
        const elsewhere = yield* handler.handle(unique("reused"), { _tag: "Deposit", amount: 99 }, {
          idempotencyKey: "k"
        })
        assert.strictEqual(elsewhere.version, 1)
      }))

    it.effect("a keyed command that decides nothing records nothing: a repeat decides again", () =>
      Effect.gen(function*() {
        const handler = yield* CommandHandler.make(Account)
        const id = unique("empty")
        const payInterest = handler.handle(id, { _tag: "PayInterest", percent: 10 }, { idempotencyKey: "k" })
        const nothing = yield* payInterest
        assert.deepStrictEqual([nothing.eventIds, nothing.version, nothing.position], [[], 0, Option.none()])
        const store = yield* EventStore.EventStore
        assert.strictEqual(yield* store.streamVersion({ streamType: Account.name, streamId: id }), 0)
        yield* handler.handle(id, { _tag: "Deposit", amount: 50 })
        const paid = yield* payInterest
        assert.deepStrictEqual([paid.events, paid.version], [[new InterestPaid({ amount: 5 })], 2])
      }))
  })
