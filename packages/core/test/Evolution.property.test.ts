// Properties of event evolution, on random histories written by "old code": the typed read of each stored event is
// the upcast of what was written (computed here by hand, independently of EventCodec), and a load through snapshots
// of the evolved events gives the same state as a replay without them.
import { assert, describe, it } from "@effect/vitest"
import { Aggregate, CommandHandler, Decider, EventQuery, EventStore, MemoryEventfold } from "@eventfold/core"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"
import * as Schema from "effect/Schema"

const Listed = Schema.TaggedStruct("Listed", { name: Schema.String })
const PriceChanged = Schema.TaggedStruct("PriceChanged", { amountCents: Schema.Int, currency: Schema.String })
const ProductEvent = Schema.Union(Listed, PriceChanged)
type ProductEvent = typeof ProductEvent.Type

type State = { readonly names: ReadonlyArray<string>; readonly total: number; readonly currencies: string }
const State = Schema.Struct({ names: Schema.Array(Schema.String), total: Schema.Number, currencies: Schema.String })

const decider = Decider.make<State, ProductEvent, ProductEvent>({
  initialState: { names: [], total: 0, currencies: "" },
  // Order-sensitive, so a state built from the wrong events or in the wrong order shows.
  evolve: (s, e) =>
    e._tag === "Listed"
      ? { ...s, names: [...s.names, e.name] }
      : { ...s, total: s.total * 3 + e.amountCents, currencies: s.currencies + e.currency },
  decide: (command) => Effect.succeed([command])
})

const evolution = {
  PriceChanged: {
    formerNames: ["PriceUpdated"],
    upcasters: [
      (v1: { readonly [k: string]: unknown }) => ({ amountCents: Math.round(Number(v1["amount"]) * 100) }),
      (v2: { readonly [k: string]: unknown }) => ({ ...v2, currency: "EUR" })
    ]
  }
}

/** One event as old code wrote it, and what new code must read it as. */
interface Written {
  readonly stored: { readonly type: string; readonly payload: unknown; readonly schemaVersion: number }
  readonly expected: ProductEvent
}

const cents = FastCheck.integer({ min: 0, max: 1_000_000 })
const written: FastCheck.Arbitrary<Written> = FastCheck.oneof(
  FastCheck.string({ maxLength: 8 }).map((name) => ({
    stored: { type: "Listed", payload: { name }, schemaVersion: 1 },
    expected: Listed.make({ name })
  })),
  // v1, under the former name: a decimal string of units.
  cents.map((c) => ({
    stored: { type: "PriceUpdated", payload: { amount: (c / 100).toFixed(2) }, schemaVersion: 1 },
    expected: PriceChanged.make({ amountCents: c, currency: "EUR" })
  })),
  cents.map((c) => ({
    stored: { type: "PriceChanged", payload: { amountCents: c }, schemaVersion: 2 },
    expected: PriceChanged.make({ amountCents: c, currency: "EUR" })
  })),
  FastCheck.tuple(cents, FastCheck.constantFrom("USD", "CHF", "EUR")).map(([c, currency]) => ({
    stored: { type: "PriceChanged", payload: { amountCents: c, currency }, schemaVersion: 3 },
    expected: PriceChanged.make({ amountCents: c, currency })
  }))
)

describe("Evolution properties", () => {
  it("typed reads equal the upcast of what old code wrote; snapshot loads equal replays", async () => {
    await FastCheck.assert(
      FastCheck.asyncProperty(
        FastCheck.array(FastCheck.array(written, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 12 }),
        FastCheck.array(FastCheck.tuple(cents, FastCheck.constantFrom("USD", "EUR")), { maxLength: 6 }),
        FastCheck.integer({ min: 1, max: 5 }),
        (appends, commands, every) =>
          Effect.gen(function*() {
            const Product = Aggregate.make({ name: "Product", decider, events: ProductEvent, evolution })
            const Snapshotted = Aggregate.make({
              name: "Product",
              decider,
              events: ProductEvent,
              evolution,
              state: State,
              snapshot: { every, schemaVersion: 1 }
            })
            const store = yield* EventStore.EventStore
            for (const batch of appends) {
              yield* store.append({ streamType: "Product", streamId: "p", events: batch.map((w) => w.stored) })
            }
            const expected = appends.flat().map((w) => w.expected)
            const read = yield* EventQuery.readStream(Product, "p", { pageSize: 3 })
            assert.deepStrictEqual(read.map((d) => d.event), expected)
            const snapshotted = yield* CommandHandler.make(Snapshotted)
            const plain = yield* CommandHandler.make(Product)
            // New code appends too, snapshotting as it crosses multiples of `every`.
            for (const [c, currency] of commands) {
              yield* snapshotted.handle("p", PriceChanged.make({ amountCents: c, currency }))
              assert.deepStrictEqual(yield* snapshotted.load("p"), yield* plain.load("p"))
            }
            const all = [
              ...expected,
              ...commands.map(([c, currency]) => PriceChanged.make({ amountCents: c, currency }))
            ]
            assert.deepStrictEqual(yield* snapshotted.load("p"), {
              state: Decider.fold(decider, all),
              version: all.length
            })
            // And at every version in between.
            for (let v = 0; v <= all.length; v++) {
              assert.deepStrictEqual(
                (yield* snapshotted.load("p", { atVersion: v })).state,
                Decider.fold(decider, all.slice(0, v))
              )
            }
          }).pipe(Effect.provide(MemoryEventfold.layer()), Effect.runPromise)
      ),
      { numRuns: 60 }
    )
  })
})
