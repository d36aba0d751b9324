import { assert, describe, it } from "@effect/vitest"
import {
  Aggregate,
  CommandHandler,
  ConcurrencyConflict,
  Decider,
  EventStore,
  ExpectedVersion,
  Position
} from "@eventfold/core"
import { CommandHandlerContract } from "@eventfold/core/testing"
import * as Effect from "effect/Effect"
import * as Equal from "effect/Equal"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"

// A counter: the smallest aggregate with a domain rule (it never goes below zero).

class Incremented extends Schema.TaggedClass<Incremented>()("Incremented", { by: Schema.Number }) {}
class Decremented extends Schema.TaggedClass<Decremented>()("Decremented", { by: Schema.Number }) {}
const CounterEvent = Schema.Union(Incremented, Decremented)
type CounterEvent = typeof CounterEvent.Type

class WouldGoNegative extends Schema.TaggedError<WouldGoNegative>()("WouldGoNegative", {
  count: Schema.Number,
  by: Schema.Number
}) {}

type Command =
  | { readonly _tag: "Increment"; readonly by: number }
  | { readonly _tag: "Decrement"; readonly by: number }
  | { readonly _tag: "Batch"; readonly steps: ReadonlyArray<number> }
  | { readonly _tag: "Noop" }

const CounterState = Schema.Struct({ count: Schema.Number })
type CounterState = typeof CounterState.Type

const increment = (by: number): Command => ({ _tag: "Increment", by })

/** A fresh counter aggregate that counts its decide calls and runs `beforeDecide` inside every one. */
const makeCounter = (beforeDecide: Effect.Effect<void> = Effect.void) => {
  const calls = { decide: 0 }
  const decider = Decider.make<CounterState, Command, CounterEvent, WouldGoNegative>({
    initialState: { count: 0 },
    evolve: (state, event) => ({ count: state.count + (event._tag === "Incremented" ? event.by : -event.by) }),
    decide: (command, state) =>
      Effect.suspend(() => {
        calls.decide++
        return beforeDecide
      }).pipe(Effect.zipRight(Effect.suspend((): Effect.Effect<ReadonlyArray<CounterEvent>, WouldGoNegative> => {
        switch (command._tag) {
          case "Increment":
            return Effect.succeed([new Incremented({ by: command.by })])
          case "Decrement":
            return state.count < command.by
              ? Effect.fail(new WouldGoNegative({ count: state.count, by: command.by }))
              : Effect.succeed([new Decremented({ by: command.by })])
          case "Batch":
            return Effect.succeed(command.steps.map((by) => new Incremented({ by })))
          case "Noop":
            return Effect.succeed([])
        }
      })))
  })
  const aggregate = Aggregate.make({ name: "Counter", decider, events: CounterEvent, state: CounterState })
  return { aggregate, calls }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/** Appends one raw event to a counter stream, as another writer (or a corrupt import) would. */
const appendRaw = (store: EventStore.EventStore["Type"], streamId: string, type: string, payload: unknown) =>
  Effect.asVoid(Effect.orDie(store.append({ streamType: "Counter", streamId, events: [{ type, payload }] })))

CommandHandlerContract.suite("memory", EventStore.layerMemory)

describe("CommandHandler", () => {
  it.effect("creates a stream, then appends to it, returning events, state, version and position", () =>
    Effect.gen(function*() {
      const handler = yield* CommandHandler.make(makeCounter().aggregate)

      const first = yield* handler.handle("c-1", increment(5))
      assert.deepStrictEqual(first.events, [new Incremented({ by: 5 })])
      assert.deepStrictEqual(first.state, { count: 5 })
      assert.strictEqual(first.version, 1)
      assert.deepStrictEqual(first.position, Option.some(Position.make(1n, 1n)))

      const second = yield* handler.handle("c-1", { _tag: "Batch", steps: [1, 2] })
      assert.deepStrictEqual(second.events, [new Incremented({ by: 1 }), new Incremented({ by: 2 })])
      assert.deepStrictEqual(second.state, { count: 8 })
      assert.strictEqual(second.version, 3)
      assert.deepStrictEqual(second.position, Option.some(Position.make(2n, 3n)))

      const third = yield* handler.handle("c-1", { _tag: "Decrement", by: 8 })
      assert.deepStrictEqual(third.state, { count: 0 })
      assert.strictEqual(third.version, 4)

      assert.deepStrictEqual(yield* handler.load("c-1"), { state: { count: 0 }, version: 4 })
      const stored = yield* Effect.flatMap(
        EventStore.EventStore,
        (store) => store.readStream({ streamType: "Counter", streamId: "c-1" })
      )
      assert.deepStrictEqual(stored.map((e) => [e.version, e.type, e.payload]), [
        [1, "Incremented", { by: 5 }],
        [2, "Incremented", { by: 1 }],
        [3, "Incremented", { by: 2 }],
        [4, "Decremented", { by: 8 }]
      ])
      // The result names the events it appended, in order.
      assert.deepStrictEqual(
        [...first.eventIds, ...second.eventIds, ...third.eventIds],
        stored.map((e) => e.eventId)
      )
    }).pipe(Effect.provide(EventStore.layerMemory)))

  it.effect("keeps streams of different ids apart", () =>
    Effect.gen(function*() {
      const handler = yield* CommandHandler.make(makeCounter().aggregate)
      yield* handler.handle("a", increment(1))
      const b = yield* handler.handle("b", increment(10))
      assert.strictEqual(b.version, 1)
      assert.deepStrictEqual(yield* handler.load("a"), { state: { count: 1 }, version: 1 })
      assert.deepStrictEqual(yield* handler.load("b"), { state: { count: 10 }, version: 1 })
    }).pipe(Effect.provide(EventStore.layerMemory)))

  it.effect("loads a missing stream as the initial state at version 0, without creating it", () =>
    Effect.gen(function*() {
      const handler = yield* CommandHandler.make(makeCounter().aggregate)
      assert.deepStrictEqual(yield* handler.load("missing"), { state: { count: 0 }, version: 0 })
      const store = yield* EventStore.EventStore
      assert.strictEqual(yield* store.streamVersion({ streamType: "Counter", streamId: "missing" }), 0)
    }).pipe(Effect.provide(EventStore.layerMemory)))

  it.effect("appends nothing when the command decides nothing", () =>
    Effect.gen(function*() {
      const handler = yield* CommandHandler.make(makeCounter().aggregate)
      const store = yield* EventStore.EventStore
      const none = yield* handler.handle("c-1", { _tag: "Noop" })
      assert.deepStrictEqual(none, {
        events: [],
        eventIds: [],
        state: { count: 0 },
        version: 0,
        position: Option.none()
      })
      assert.strictEqual(yield* store.streamVersion({ streamType: "Counter", streamId: "c-1" }), 0)

      yield* handler.handle("c-1", increment(2))
      const after = yield* handler.handle("c-1", { _tag: "Noop" })
      assert.deepStrictEqual(after, {
        events: [],
        eventIds: [],
        state: { count: 2 },
        version: 1,
        position: Option.none()
      })
    }).pipe(Effect.provide(EventStore.layerMemory)))

  it.effect("returns a domain error typed and never retries it", () =>
    Effect.gen(function*() {
      const { aggregate, calls } = makeCounter()
      const handler = yield* CommandHandler.make(aggregate, { retry: Schedule.recurs(5) })
      yield* handler.handle("c-1", increment(1))
      const error = yield* Effect.flip(handler.handle("c-1", { _tag: "Decrement", by: 5 }))
      // Compared with Equal: an error failing inside the handler's span comes out wrapped in a span-carrying Proxy.
      assert.instanceOf(error, WouldGoNegative)
      assert.isTrue(Equal.equals(error, new WouldGoNegative({ count: 1, by: 5 })))
      assert.strictEqual(calls.decide, 2)

      const handled = yield* handler.handle("c-1", { _tag: "Decrement", by: 5 }).pipe(
        Effect.map(() => "decremented"),
        Effect.catchTag("WouldGoNegative", (e) => Effect.succeed(`refused at ${e.count}`))
      )
      assert.strictEqual(handled, "refused at 1")
      assert.strictEqual(calls.decide, 3)
      assert.deepStrictEqual(yield* handler.load("c-1"), { state: { count: 1 }, version: 1 })
    }).pipe(Effect.provide(EventStore.layerMemory)))

  // Commands of one process never conflict (they take the stream's lock in turn); a handler on its own view of the
  // store stands for another process, so these commands race as processes do.
  const inOwnProcess = <A, E, R>(make: Effect.Effect<A, E, R>) =>
    Effect.flatMap(
      EventStore.EventStore,
      (store) => Effect.provideService(make, EventStore.EventStore, EventStore.EventStore.of({ ...store }))
    )

  it.live("20 concurrent commands on one stream, from 20 processes, all succeed through the conflict retry", () =>
    Effect.gen(function*() {
      // Yielding inside decide lets every command load the same version before any of them appends.
      const { aggregate, calls } = makeCounter(Effect.yieldNow())
      const handler = yield* CommandHandler.make(aggregate)
      const results = yield* Effect.forEach(
        Array.from({ length: 20 }, (_, i) => i + 1),
        (by) => Effect.flatMap(inOwnProcess(CommandHandler.make(aggregate)), (h) => h.handle("hot", increment(by))),
        { concurrency: "unbounded" }
      )
      assert.deepStrictEqual(
        results.map((r) => r.version).sort((a, b) => a - b),
        Array.from({ length: 20 }, (_, i) => i + 1)
      )
      assert.deepStrictEqual(yield* handler.load("hot"), { state: { count: 210 }, version: 20 })
      // More decisions than commands: conflicts happened, and were retried on fresh state.
      assert.isAbove(calls.decide, 20)
    }).pipe(Effect.provide(EventStore.layerMemory)))

  it.live("an explicit ExpectedVersion.Any retries conflicts like no option at all", () =>
    Effect.gen(function*() {
      const { aggregate, calls } = makeCounter(Effect.yieldNow())
      const handler = yield* CommandHandler.make(aggregate)
      const results = yield* Effect.forEach(
        Array.from({ length: 10 }, (_, i) => i + 1),
        (by) =>
          Effect.flatMap(
            inOwnProcess(CommandHandler.make(aggregate)),
            (h) => h.handle("any", increment(by), { expectedVersion: ExpectedVersion.Any })
          ),
        { concurrency: "unbounded" }
      )
      assert.deepStrictEqual(
        results.map((r) => r.version).sort((a, b) => a - b),
        Array.from({ length: 10 }, (_, i) => i + 1)
      )
      assert.deepStrictEqual(yield* handler.load("any"), { state: { count: 55 }, version: 10 })
      assert.isAbove(calls.decide, 10)
    }).pipe(Effect.provide(EventStore.layerMemory)))

  it.live("retries a conflict on fresh state when no version is pinned", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      let interfere = true
      const { aggregate, calls } = makeCounter(Effect.suspend(() => {
        if (!interfere) return Effect.void
        interfere = false
        return appendRaw(store, "c-1", "Incremented", { by: 100 })
      }))
      const handler = yield* CommandHandler.make(aggregate)
      yield* appendRaw(store, "c-1", "Incremented", { by: 1 })
      const result = yield* handler.handle("c-1", increment(1))
      assert.strictEqual(calls.decide, 2)
      assert.deepStrictEqual(result.state, { count: 102 })
      assert.strictEqual(result.version, 3)
    }).pipe(Effect.provide(EventStore.layerMemory)))

  it.effect("gives up with ConcurrencyConflict when the retry schedule is exhausted", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const { aggregate, calls } = makeCounter(appendRaw(store, "c-1", "Incremented", { by: 1 }))
      const handler = yield* CommandHandler.make(aggregate, { retry: Schedule.recurs(2) })
      const error = yield* Effect.flip(handler.handle("c-1", increment(1)))
      assert.strictEqual(error._tag, "ConcurrencyConflict")
      assert.strictEqual(calls.decide, 3)
    }).pipe(Effect.provide(EventStore.layerMemory)))

  it.effect("fails a stale pinned expectedVersion with ConcurrencyConflict, without deciding or retrying", () =>
    Effect.gen(function*() {
      const { aggregate, calls } = makeCounter()
      const handler = yield* CommandHandler.make(aggregate, { retry: Schedule.recurs(5) })
      yield* handler.handle("c-1", increment(1))
      yield* handler.handle("c-1", increment(1))
      const error = yield* Effect.flip(
        handler.handle("c-1", increment(1), { expectedVersion: ExpectedVersion.Exact(1) })
      )
      assert.strictEqual(error._tag, "ConcurrencyConflict")
      if (error._tag === "ConcurrencyConflict") {
        assert.strictEqual(error.streamType, "Counter")
        assert.strictEqual(error.streamId, "c-1")
        assert.deepStrictEqual(error.expected, ExpectedVersion.Exact(1))
        assert.strictEqual(error.actual, 2)
      }
      assert.strictEqual(calls.decide, 2)

      const pinned = yield* handler.handle("c-1", increment(1), { expectedVersion: ExpectedVersion.Exact(2) })
      assert.strictEqual(pinned.version, 3)
    }).pipe(Effect.provide(EventStore.layerMemory)))

  it.effect("does not retry a pinned command whose stream moves between load and append", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const { aggregate, calls } = makeCounter(appendRaw(store, "c-1", "Incremented", { by: 100 }))
      const handler = yield* CommandHandler.make(aggregate, { retry: Schedule.recurs(5) })
      const error = yield* Effect.flip(
        handler.handle("c-1", increment(1), { expectedVersion: ExpectedVersion.NoStream })
      )
      assert.strictEqual(error._tag, "ConcurrencyConflict")
      if (error._tag === "ConcurrencyConflict") assert.strictEqual(error.actual, 1)
      assert.strictEqual(calls.decide, 1)
    }).pipe(Effect.provide(EventStore.layerMemory)))

  it.effect("stores the caller's metadata on every event, and generates one correlation id per command", () =>
    Effect.gen(function*() {
      const handler = yield* CommandHandler.make(makeCounter().aggregate)
      const store = yield* EventStore.EventStore
      const metadata = { correlationId: "corr-1", causationId: "cause-1", actorId: "user-7", headers: { via: "test" } }
      yield* handler.handle("c-1", { _tag: "Batch", steps: [1, 2] }, { metadata })
      yield* handler.handle("c-1", { _tag: "Batch", steps: [3, 4] })
      yield* handler.handle("c-1", increment(5), { metadata: { actorId: "user-8" } })

      const events = yield* store.readStream({ streamType: "Counter", streamId: "c-1" })
      assert.strictEqual(events.length, 5)
      assert.deepStrictEqual(events[0]!.metadata, metadata)
      assert.deepStrictEqual(events[1]!.metadata, metadata)

      const generated = events[2]!.metadata.correlationId
      assert.match(generated ?? "", UUID)
      assert.deepStrictEqual(events[3]!.metadata, { correlationId: generated })

      const withActor = events[4]!.metadata
      assert.strictEqual(withActor.actorId, "user-8")
      assert.match(withActor.correlationId ?? "", UUID)
      assert.notStrictEqual(withActor.correlationId, generated)
    }).pipe(Effect.provide(EventStore.layerMemory)))

  it.effect("generates a correlation id when the metadata holds an undefined one", () =>
    Effect.gen(function*() {
      const handler = yield* CommandHandler.make(makeCounter().aggregate)
      const store = yield* EventStore.EventStore
      yield* handler.handle("c-1", increment(1), { metadata: { correlationId: undefined, actorId: "user-9" } })
      const [event] = yield* store.readStream({ streamType: "Counter", streamId: "c-1" })
      assert.strictEqual(event!.metadata.actorId, "user-9")
      assert.match(event!.metadata.correlationId ?? "", UUID)
    }).pipe(Effect.provide(EventStore.layerMemory)))

  it.effect("fails load and handle with EventDecodeError on a corrupt stored payload", () =>
    Effect.gen(function*() {
      const { aggregate, calls } = makeCounter()
      const handler = yield* CommandHandler.make(aggregate)
      const store = yield* EventStore.EventStore
      yield* appendRaw(store, "c-1", "Incremented", { by: 1 })
      yield* appendRaw(store, "c-1", "Incremented", { by: "lots" })

      const error = yield* handler.load("c-1").pipe(
        Effect.flatMap(() => Effect.dieMessage("load should have failed")),
        Effect.catchTag("EventDecodeError", Effect.succeed)
      )
      assert.strictEqual(error.streamType, "Counter")
      assert.strictEqual(error.streamId, "c-1")
      assert.strictEqual(error.version, 2)
      assert.strictEqual(error.type, "Incremented")
      assert.include(error.issue, "by")

      const handleError = yield* Effect.flip(handler.handle("c-1", increment(1)))
      assert.strictEqual(handleError._tag, "EventDecodeError")
      assert.strictEqual(calls.decide, 0)
    }).pipe(Effect.provide(EventStore.layerMemory)))

  it.effect("fails with EventDecodeError on an event type the aggregate does not know", () =>
    Effect.gen(function*() {
      const handler = yield* CommandHandler.make(makeCounter().aggregate)
      yield* appendRaw(yield* EventStore.EventStore, "c-1", "Exploded", { by: 1 })
      const error = yield* Effect.flip(handler.load("c-1"))
      assert.strictEqual(error._tag, "EventDecodeError")
      if (error._tag === "EventDecodeError") {
        assert.strictEqual(error.type, "Exploded")
        assert.strictEqual(error.version, 1)
      }
      const handleError = yield* Effect.flip(handler.handle("c-1", increment(1)))
      assert.strictEqual(handleError._tag, "EventDecodeError")
    }).pipe(Effect.provide(EventStore.layerMemory)))

  it.effect("refuses an empty stream id with InvalidInput", () =>
    Effect.gen(function*() {
      const { aggregate, calls } = makeCounter()
      const handler = yield* CommandHandler.make(aggregate)
      const loadError = yield* Effect.flip(handler.load(""))
      assert.strictEqual(loadError._tag, "InvalidInput")
      const handleError = yield* Effect.flip(handler.handle("", increment(1)))
      assert.strictEqual(handleError._tag, "InvalidInput")
      assert.strictEqual(calls.decide, 0)
    }).pipe(Effect.provide(EventStore.layerMemory)))

  it.effect("derives a keyed command's event ids from stream and key, records the key, and refuses a bad key", () =>
    Effect.gen(function*() {
      const handler = yield* CommandHandler.make(makeCounter().aggregate)
      const store = yield* EventStore.EventStore
      const a = yield* handler.handle("c-1", { _tag: "Batch", steps: [1, 2] }, { idempotencyKey: "k" })
      const b = yield* handler.handle("c-2", { _tag: "Batch", steps: [1, 2] }, { idempotencyKey: "k" })
      for (const id of [...a.eventIds, ...b.eventIds]) assert.match(id, UUID)
      assert.strictEqual(new Set([...a.eventIds, ...b.eventIds]).size, 4)
      const [stored] = yield* store.readStream({ streamType: "Counter", streamId: "c-1" })
      assert.strictEqual(stored!.metadata.headers?.["eventfold-idempotency-key"], "k")
      assert.match(stored!.metadata.headers?.["eventfold-command-sha256"] ?? "", /^[0-9a-f]{64}$/)
      for (const bad of ["", "k\u0000"]) {
        const error = yield* Effect.flip(handler.handle("c-1", increment(1), { idempotencyKey: bad }))
        assert.strictEqual(error._tag, "InvalidInput")
      }
    }).pipe(Effect.provide(EventStore.layerMemory)))

  it.effect("hands a conflict that only a new transaction can fix to the caller, without retrying it", () =>
    Effect.gen(function*() {
      const { aggregate, calls } = makeCounter()
      for (const reason of ["transaction-order", "serialization"] as const) {
        calls.decide = 0
        // A store whose appends fail as they do inside a caller's transaction that is older than the stream's last
        // append (PostgreSQL): retrying inside that transaction would fail the same way every time.
        const refusing = Layer.effect(
          EventStore.EventStore,
          Effect.map(EventStore.EventStore, (store) => ({
            ...store,
            append: (options: EventStore.AppendOptions) =>
              Effect.fail(
                new ConcurrencyConflict({
                  streamType: options.streamType,
                  streamId: options.streamId,
                  expected: options.expectedVersion ?? ExpectedVersion.Any,
                  actual: 0,
                  reason
                })
              )
          }))
        ).pipe(Layer.provide(EventStore.layerMemory))
        const error = yield* CommandHandler.make(aggregate, { retry: Schedule.recurs(5) }).pipe(
          Effect.flatMap((handler) => handler.handle("c-1", increment(1))),
          Effect.flip,
          Effect.provide(refusing)
        )
        assert.strictEqual(error._tag, "ConcurrencyConflict")
        assert.isTrue(error._tag === "ConcurrencyConflict" && error.retriesTransaction && error.reason === reason)
        assert.strictEqual(calls.decide, 1, reason)
      }
    }))
})
