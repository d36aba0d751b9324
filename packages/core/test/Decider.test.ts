import { assert, describe, it } from "@effect/vitest"
import { Decider } from "@eventfold/core"
import * as Effect from "effect/Effect"

type Event = { readonly _tag: "Added"; readonly n: number } | { readonly _tag: "Cleared" }
type Command = { readonly _tag: "Add"; readonly n: number }

const log = Decider.make<ReadonlyArray<number>, Command, Event>({
  initialState: [],
  evolve: (state, event) => (event._tag === "Added" ? [...state, event.n] : []),
  decide: (command) => Effect.succeed([{ _tag: "Added", n: command.n }])
})

describe("Decider", () => {
  describe("make", () => {
    it("returns the decider it is given", () => {
      const decider = {
        initialState: 0,
        evolve: (state: number, event: number) => state + event,
        decide: (command: number) => Effect.succeed([command])
      }
      assert.strictEqual(Decider.make(decider), decider)
    })

    it.effect("builds a decider whose decide and evolve work together", () =>
      Effect.gen(function*() {
        const events = yield* log.decide({ _tag: "Add", n: 3 }, log.initialState)
        assert.deepStrictEqual(events, [{ _tag: "Added", n: 3 }])
        assert.deepStrictEqual(Decider.fold(log, events), [3])
      }))
  })

  describe("fold", () => {
    it("folds events in order from the initial state", () => {
      const events: ReadonlyArray<Event> = [{ _tag: "Added", n: 1 }, { _tag: "Added", n: 2 }, { _tag: "Added", n: 3 }]
      assert.deepStrictEqual(Decider.fold(log, events), [1, 2, 3])
    })

    it("applies every event, including ones that reset the state", () => {
      const events: ReadonlyArray<Event> = [{ _tag: "Added", n: 1 }, { _tag: "Cleared" }, { _tag: "Added", n: 7 }]
      assert.deepStrictEqual(Decider.fold(log, events), [7])
    })

    it("starts from a given state", () => {
      assert.deepStrictEqual(Decider.fold(log, [{ _tag: "Added", n: 4 }], [1, 2]), [1, 2, 4])
    })

    it("returns the start state unchanged when there are no events", () => {
      assert.strictEqual(Decider.fold(log, []), log.initialState)
      const start = [9]
      assert.strictEqual(Decider.fold(log, [], start), start)
    })

    it("accepts any iterable, read once", () => {
      let reads = 0
      function* events(): Generator<Event> {
        reads++
        yield { _tag: "Added", n: 5 }
        yield { _tag: "Added", n: 6 }
      }
      assert.deepStrictEqual(Decider.fold(log, events()), [5, 6])
      assert.strictEqual(reads, 1)
    })

    it("does not mutate the initial state", () => {
      Decider.fold(log, [{ _tag: "Added", n: 1 }])
      assert.deepStrictEqual(log.initialState, [])
    })
  })
})
