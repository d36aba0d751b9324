// Two processes on one stream: CommandHandler serialises the commands of one process (a keyed lock), but between
// processes only optimistic concurrency decides. Two stores on pools of their own stand in for two processes: they
// share nothing but the database. A deterministic interleaving proves that a conflict between them is detected and
// retried; a busy run proves every command lands once, with gapless versions.
import { assert, describe, it } from "@effect/vitest"
import * as Aggregate from "@eventfold/core/Aggregate"
import * as CommandHandler from "@eventfold/core/CommandHandler"
import * as Decider from "@eventfold/core/Decider"
import * as EventStore from "@eventfold/core/EventStore"
import { PgDatabase, PgEventStore, PgTest } from "@eventfold/postgres"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"

class Deposited extends Schema.TaggedClass<Deposited>()("Deposited", { amount: Schema.Number }) {}

const Account = Aggregate.make({
  name: "Account",
  events: Deposited,
  decider: Decider.make<number, { readonly amount: number }, Deposited>({
    initialState: 0,
    evolve: (balance, event) => balance + event.amount,
    decide: (command) => Effect.succeed([new Deposited({ amount: command.amount })])
  })
})

/** A "process": a store on a pool of its own. */
const processOn = (db: PgTest.TestDatabase) =>
  Layer.build(
    PgEventStore.layer().pipe(Layer.provide(PgDatabase.layer({ url: db.url, maxConnections: 5 })))
  ).pipe(Effect.map(Context.get(EventStore.EventStore)))

describe(`CommandHandler across processes (${PgTest.serverLabel()})`, () => {
  it.live("a command of another process in between: the append conflicts, and the retry decides again", () =>
    Effect.gen(function*() {
      const db = yield* PgTest.freshDatabase()
      const [storeA, storeB] = [yield* processOn(db), yield* processOn(db)]
      const loaded = yield* Deferred.make<void>()
      const proceed = yield* Deferred.make<void>()
      let conflicts = 0
      let attempts = 0
      // Process A's first append waits until process B has committed a command: A decided on a state now stale.
      const gated = EventStore.EventStore.of({
        ...storeA,
        append: (options) =>
          Effect.suspend(() => {
            attempts++
            return attempts === 1
              ? Effect.zipRight(Deferred.succeed(loaded, void 0), Deferred.await(proceed))
              : Effect.void
          }).pipe(
            Effect.zipRight(storeA.append(options)),
            Effect.tapError((e) => Effect.sync(() => e._tag === "ConcurrencyConflict" && conflicts++))
          )
      })
      const handlerA = yield* CommandHandler.make(Account, { retry: Schedule.recurs(3) }).pipe(
        Effect.provideService(EventStore.EventStore, gated)
      )
      const handlerB = yield* CommandHandler.make(Account).pipe(Effect.provideService(EventStore.EventStore, storeB))
      const a = yield* Effect.fork(handlerA.handle("acc-1", { amount: 10 }))
      yield* Deferred.await(loaded)
      const b = yield* handlerB.handle("acc-1", { amount: 1 })
      yield* Deferred.succeed(proceed, void 0)
      const resultA = yield* Fiber.join(a)
      assert.strictEqual(b.version, 1)
      assert.strictEqual(resultA.version, 2, "A's command was decided again on B's event")
      assert.strictEqual(conflicts, 1)
      assert.strictEqual(attempts, 2)
      assert.strictEqual((yield* handlerB.load("acc-1")).state, 11)
    }).pipe(Effect.scoped))

  it.live("two processes x 8 fibers x 5 commands on one stream: every command lands once, versions gapless", () =>
    Effect.gen(function*() {
      const db = yield* PgTest.freshDatabase()
      let conflicts = 0
      const handlers = yield* Effect.forEach([0, 1], () =>
        Effect.gen(function*() {
          const store = yield* processOn(db)
          const counted = EventStore.EventStore.of({
            ...store,
            append: (options) =>
              store.append(options).pipe(
                Effect.tapError((e) => Effect.sync(() => e._tag === "ConcurrencyConflict" && conflicts++))
              )
          })
          return yield* CommandHandler.make(Account, {
            retry: Schedule.exponential("2 millis").pipe(Schedule.jittered, Schedule.intersect(Schedule.recurs(50)))
          }).pipe(Effect.provideService(EventStore.EventStore, counted))
        }))
      const results = yield* Effect.forEach(
        Array.from({ length: 16 }, (_, fiber) => fiber),
        (fiber) =>
          Effect.forEach([1, 2, 3, 4, 5], () => handlers[fiber % 2]!.handle("busy", { amount: 1 }), {
            concurrency: 1
          }),
        { concurrency: "unbounded" }
      )
      const versions = results.flat().map((r) => r.version).sort((x, y) => x - y)
      assert.deepStrictEqual(versions, Array.from({ length: 80 }, (_, i) => i + 1))
      assert.strictEqual((yield* handlers[0]!.load("busy")).state, 80)
      // Conflicts come from the other process only (none within one: see the CommandHandler contract).
      yield* Effect.logInfo(`two processes: ${conflicts} conflicts retried`)
    }).pipe(Effect.scoped))
})
