import { assert, describe, it } from "@effect/vitest"
import { Decider } from "@eventfold/core"
import { DeciderSpec } from "@eventfold/core/testing"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Schema from "effect/Schema"

class Incremented extends Schema.TaggedClass<Incremented>()("Incremented", { by: Schema.Number }) {}
class Stamped extends Schema.TaggedClass<Stamped>()("Stamped", { at: Schema.Date }) {}
type Event = Incremented | Stamped

class TooLarge extends Schema.TaggedError<TooLarge>()("TooLarge", { count: Schema.Number, by: Schema.Number }) {}

type Command =
  | { readonly _tag: "Increment"; readonly by: number }
  | { readonly _tag: "Stamp"; readonly at: Date }
  | { readonly _tag: "Noop" }
  | { readonly _tag: "Crash" }

interface State {
  readonly count: number
  readonly stamps: number
}

const counter = Decider.make<State, Command, Event, TooLarge>({
  initialState: { count: 0, stamps: 0 },
  evolve: (state, event) =>
    event._tag === "Incremented" ? { ...state, count: state.count + event.by } : { ...state, stamps: state.stamps + 1 },
  decide: (command, state) => {
    switch (command._tag) {
      case "Increment":
        return state.count + command.by > 10
          ? Effect.fail(new TooLarge({ count: state.count, by: command.by }))
          : Effect.succeed([new Incremented({ by: command.by })])
      case "Stamp":
        return Effect.succeed([new Stamped({ at: command.at })])
      case "Noop":
        return Effect.succeed([])
      case "Crash":
        return Effect.dieMessage("boom")
    }
  }
})

const spec = DeciderSpec.for(counter)
const increment = (by: number): Command => ({ _tag: "Increment", by })

/** Runs an assertion that must not hold and returns the failure it reports. */
const failure = <A>(assertion: Effect.Effect<A, DeciderSpec.DeciderSpecFailure>) =>
  Effect.gen(function*() {
    const error = yield* Effect.flip(assertion)
    assert.instanceOf(error, DeciderSpec.DeciderSpecFailure)
    assert.strictEqual(error._tag, "DeciderSpecFailure")
    return error
  })

describe("DeciderSpec", () => {
  describe("passes when the decider behaves as stated", () => {
    it.effect("then: the exact events, folded from the given ones", () =>
      spec.given([new Incremented({ by: 4 })]).when(increment(3)).then([new Incremented({ by: 3 })]))

    it.effect("then: events with dates compare by time", () =>
      spec.given([]).when({ _tag: "Stamp", at: new Date("2024-01-01T00:00:00Z") }).then([
        new Stamped({ at: new Date(Date.parse("2024-01-01T00:00:00Z")) })
      ]))

    it.effect("thenState: the state after the given and the new events", () =>
      spec.given([new Incremented({ by: 4 })]).when(increment(3)).thenState({ count: 7, stamps: 0 }))

    it.effect("thenNothingHappens: no events", () => spec.given([]).when({ _tag: "Noop" }).thenNothingHappens())

    it.effect("thenFails: any failure, an equal error, or a predicate", () =>
      Effect.gen(function*() {
        const then = spec.given([new Incremented({ by: 8 })]).when(increment(3))
        yield* then.thenFails()
        yield* then.thenFails(new TooLarge({ count: 8, by: 3 }))
        yield* then.thenFails((error) => error.count === 8 && error.by === 3)
      }))
  })

  describe("fails with DeciderSpecFailure when the decider does not behave as stated", () => {
    it.effect("then: other events", () =>
      Effect.gen(function*() {
        const error = yield* failure(spec.given([]).when(increment(3)).then([new Incremented({ by: 2 })]))
        assert.deepStrictEqual(error.expected, [new Incremented({ by: 2 })])
        assert.deepStrictEqual(error.actual, [new Incremented({ by: 3 })])
        assert.include(error.message, "decide produced other events")
      }))

    it.effect("then: more events than decided", () =>
      Effect.gen(function*() {
        const error = yield* failure(
          spec.given([]).when(increment(3)).then([new Incremented({ by: 3 }), new Incremented({ by: 3 })])
        )
        assert.deepStrictEqual(error.actual, [new Incremented({ by: 3 })])
      }))

    it.effect("then: another event type with the same fields", () =>
      Effect.gen(function*() {
        const at = new Date("2024-01-01T00:00:00Z")
        yield* failure(spec.given([]).when({ _tag: "Stamp", at }).then([new Stamped({ at: new Date(0) })]))
      }))

    it.effect("then: decide failed", () =>
      Effect.gen(function*() {
        const error = yield* failure(spec.given([new Incremented({ by: 9 })]).when(increment(2)).then([]))
        assert.deepStrictEqual(error.actual, new TooLarge({ count: 9, by: 2 }))
        assert.include(error.message, "decide failed where success was expected")
      }))

    it.effect("thenFails: decide succeeded", () =>
      Effect.gen(function*() {
        const error = yield* failure(spec.given([]).when(increment(1)).thenFails())
        assert.deepStrictEqual(error.actual, [new Incremented({ by: 1 })])
        assert.include(error.message, "decide succeeded where a failure was expected")
      }))

    it.effect("thenFails: decide failed with another error", () =>
      Effect.gen(function*() {
        const error = yield* failure(
          spec.given([new Incremented({ by: 9 })]).when(increment(2)).thenFails(new TooLarge({ count: 9, by: 3 }))
        )
        assert.deepStrictEqual(error.expected, new TooLarge({ count: 9, by: 3 }))
        assert.deepStrictEqual(error.actual, new TooLarge({ count: 9, by: 2 }))
      }))

    it.effect("thenFails: the error does not satisfy the predicate", () =>
      Effect.gen(function*() {
        let seen: TooLarge | undefined
        const error = yield* failure(
          spec.given([new Incremented({ by: 9 })]).when(increment(2)).thenFails((e) => {
            seen = e
            return e.by === 5
          })
        )
        assert.deepStrictEqual(seen, new TooLarge({ count: 9, by: 2 }))
        assert.deepStrictEqual(error.actual, new TooLarge({ count: 9, by: 2 }))
        assert.include(error.message, "decide failed with another error")
      }))

    it.effect("thenNothingHappens: events were produced", () =>
      Effect.gen(function*() {
        const error = yield* failure(spec.given([]).when(increment(1)).thenNothingHappens())
        assert.deepStrictEqual(error.expected, [])
        assert.deepStrictEqual(error.actual, [new Incremented({ by: 1 })])
      }))

    it.effect("thenNothingHappens: decide failed", () =>
      Effect.gen(function*() {
        const error = yield* failure(spec.given([new Incremented({ by: 10 })]).when(increment(1)).thenNothingHappens())
        assert.deepStrictEqual(error.actual, new TooLarge({ count: 10, by: 1 }))
      }))

    it.effect("thenState: another state", () =>
      Effect.gen(function*() {
        const error = yield* failure(
          spec.given([new Incremented({ by: 4 })]).when(increment(3)).thenState({
            count: 3,
            stamps: 0
          })
        )
        assert.deepStrictEqual(error.expected, { count: 3, stamps: 0 })
        assert.deepStrictEqual(error.actual, { count: 7, stamps: 0 })
      }))
  })

  it.effect("lets a defect in decide through as a defect, not as a spec failure", () =>
    Effect.gen(function*() {
      for (
        const assertion of [
          spec.given([]).when({ _tag: "Crash" }).then([]),
          spec.given([]).when({ _tag: "Crash" }).thenFails()
        ]
      ) {
        const exit = yield* Effect.exit(assertion)
        assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause))
      }
    }))
})
