// Type-level tests: typed queries check event type names at compile time against the aggregates' unions, and a
// `types` filter narrows what they yield. `tsc -b` (typecheck in CI) fails if a `@ts-expect-error` below stops
// being an error; the runtime part checks the narrowing is also what the reads return.
import { assert, describe, it } from "@effect/vitest"
import { Aggregate, Decider, EventQuery, EventStore } from "@eventfold/core"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"

const Listed = Schema.TaggedStruct("Listed", { name: Schema.String })
const PriceChanged = Schema.TaggedStruct("PriceChanged", { amountCents: Schema.Int })
const Event = Schema.Union(Listed, PriceChanged)
const decider = Decider.make<number, string, typeof Event.Type>({
  initialState: 0,
  evolve: (n) => n + 1,
  decide: () => Effect.succeed([])
})
const Product = Aggregate.make({ name: "TypedProduct", decider, events: Event })
const Other = Aggregate.make({
  name: "TypedOther",
  decider: Decider.make<number, string, typeof Listed.Type>({
    initialState: 0,
    evolve: (n) => n + 1,
    decide: () => Effect.succeed([])
  }),
  events: Listed
})

describe("EventQuery types", () => {
  it("rejects unknown type names at compile time", () => {
    // @ts-expect-error "PriceChange" is not a type of Product
    void EventQuery.readStream(Product, "p", { types: ["PriceChange"] })
    // @ts-expect-error "PriceChanged" is not a type of Other
    void EventQuery.readAll({ aggregates: [Other], types: ["PriceChanged"] })
    // @ts-expect-error nor of the feed of both... "Closed" is of neither
    void EventQuery.streamAll({ aggregates: [Product, Other], types: ["Closed"] })
    // @ts-expect-error a handler for an unknown type
    void EventQuery.handler({ aggregates: [Product], types: ["Deleted"] }, () => Effect.void)
    // @ts-expect-error an unknown policy
    void EventQuery.readStream(Product, "p", { unknown: "ignore" })
    void EventQuery.readAll({ aggregates: [Product, Other], types: ["PriceChanged", "Listed"] })
    assert.ok(true)
  })

  it.effect("a types filter narrows the decoded events, and raw adds Undecoded", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      yield* store.append({
        streamType: Product.name,
        streamId: "p",
        events: [{ type: "Listed", payload: { name: "Lamp" } }, { type: "PriceChanged", payload: { amountCents: 5 } }]
      })
      const prices = yield* EventQuery.readStream(Product, "p", { types: ["PriceChanged"] })
      // Compiles only because the element type is PriceChanged alone.
      const cents: ReadonlyArray<number> = prices.map((d) => d.event.amountCents)
      assert.deepStrictEqual(cents, [5])
      const raw = yield* EventQuery.readStream(Product, "p", { unknown: "raw" })
      const tags: ReadonlyArray<"Decoded" | "Undecoded"> = raw.map((item) => item._tag)
      assert.deepStrictEqual(tags, ["Decoded", "Decoded"])
      const decodedOnly = yield* EventQuery.readStream(Product, "p")
      // Without "raw" there is no Undecoded to handle: `event` is always there.
      assert.deepStrictEqual(decodedOnly.map((d) => d.event._tag), ["Listed", "PriceChanged"])
    }).pipe(Effect.provide(EventStore.layerMemory)))
})
