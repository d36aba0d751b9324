/**
 * An event that evolved through three releases, with a rename (`npm run example:evolution`):
 *
 * - release 1 stored `PriceSet { price: "12.50" }`, euros as a decimal string;
 * - release 2 renamed it `PriceChanged` and stored integer cents, `{ amountCents: 1250 }` (version 2);
 * - release 3, today's code, added the currency: `{ amountCents: 1250, currency: "EUR" }` (version 3).
 *
 * The stored events never change. Each release's code writes through its own aggregate, as it did in its time; today's
 * code declares the history of `PriceChanged` (its former name and two upcasters) and reads everything as the current
 * type: loading an item, its price history, a query of every price change across items, a typed projection, and the
 * item as it was at version 2 and at the end of release 1. `examples/test/evolution.test.ts` also runs the schema
 * change guard over `examples/schemas`, so a change to these Schemas without a version bump fails CI.
 */
import {
  Aggregate,
  CommandHandler,
  Decider,
  type EventCodec,
  EventQuery,
  EventStore,
  Subscription
} from "@eventfold/core"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import { onPostgres, runIfMain } from "./run.js"

const streamType = "CatalogItem"

/** Unchanged since release 1. */
const ItemListed = Schema.TaggedStruct("ItemListed", { name: Schema.NonEmptyString })

// Release 1 ------------------------------------------------------------------------------------------------------

const PriceSetV1 = Schema.TaggedStruct("PriceSet", { price: Schema.String })
const Release1Event = Schema.Union(ItemListed, PriceSetV1)
type Release1Event = typeof Release1Event.Type

const release1 = Aggregate.make({
  name: streamType,
  events: Release1Event,
  decider: Decider.make<null, Release1Event, Release1Event>({
    initialState: null,
    evolve: (state) => state,
    decide: (event) => Effect.succeed([event])
  })
})

// Release 2 ------------------------------------------------------------------------------------------------------

const PriceChangedV2 = Schema.TaggedStruct("PriceChanged", { amountCents: Schema.Int })
const Release2Event = Schema.Union(ItemListed, PriceChangedV2)
type Release2Event = typeof Release2Event.Type

/** v1 (`PriceSet`, a decimal string of euros) to v2 (integer cents). */
const centsFromPrice = (v1: EventCodec.Payload) => ({ amountCents: Math.round(Number(v1["price"]) * 100) })

const release2 = Aggregate.make({
  name: streamType,
  events: Release2Event,
  evolution: { PriceChanged: { formerNames: ["PriceSet"], upcasters: [centsFromPrice] } },
  decider: Decider.make<null, Release2Event, Release2Event>({
    initialState: null,
    evolve: (state) => state,
    decide: (event) => Effect.succeed([event])
  })
})

// Release 3: today's code ----------------------------------------------------------------------------------------

/** A price change: integer cents and an ISO currency code. */
export const PriceChanged = Schema.TaggedStruct("PriceChanged", {
  amountCents: Schema.Int,
  currency: Schema.String.pipe(Schema.length(3))
})

/** Every event of a catalog item, as today's code writes it. */
export const CatalogItemEvent = Schema.Union(ItemListed, PriceChanged)
type CatalogItemEvent = typeof CatalogItemEvent.Type

/** A catalog item: its name, its price and how often the price changed. */
export interface CatalogItem {
  readonly name: string
  readonly priceCents: number
  readonly currency: string
  readonly priceChanges: number
}

type Command =
  | { readonly _tag: "List"; readonly name: string }
  | { readonly _tag: "ChangePrice"; readonly amountCents: number; readonly currency: string }

/** Today's aggregate: `PriceChanged` is at version 3, and was `PriceSet` at version 1. */
export const CatalogItemAggregate = Aggregate.make({
  name: streamType,
  events: CatalogItemEvent,
  evolution: {
    PriceChanged: {
      formerNames: ["PriceSet"],
      upcasters: [
        centsFromPrice, // v1 -> v2
        (v2) => ({ ...v2, currency: "EUR" }) // v2 -> v3: every price before release 3 was in euros
      ]
    }
  },
  decider: Decider.make<CatalogItem, Command, CatalogItemEvent>({
    initialState: { name: "", priceCents: 0, currency: "", priceChanges: 0 },
    evolve: (item, event) =>
      event._tag === "ItemListed"
        ? { ...item, name: event.name }
        : { ...item, priceCents: event.amountCents, currency: event.currency, priceChanges: item.priceChanges + 1 },
    decide: (command) =>
      Effect.succeed(
        command._tag === "List"
          ? [ItemListed.make({ name: command.name })]
          : [PriceChanged.make({ amountCents: command.amountCents, currency: command.currency })]
      )
  })
})

/** What the example saw, for its test. */
export interface EvolutionResult {
  readonly stored: ReadonlyArray<string>
  readonly lamp: CatalogItem
  readonly history: ReadonlyArray<string>
  readonly allPriceChanges: number
  readonly priceList: Readonly<Record<string, string>>
  readonly atVersion2: CatalogItem
  readonly endOfRelease1: CatalogItem
}

const format = (cents: number, currency: string) => `${(cents / 100).toFixed(2)} ${currency}`

export const program = Effect.gen(function*() {
  const store = yield* EventStore.EventStore
  // Ids of this run, so the example runs again on the same database.
  const run = crypto.randomUUID().slice(0, 8)
  const lampId = `lamp-${run}`
  const deskId = `desk-${run}`
  // Years ago: release 1 lists a lamp and a desk and sets their prices.
  const r1 = yield* CommandHandler.make(release1)
  yield* r1.handle(lampId, ItemListed.make({ name: "Lamp" }))
  yield* r1.handle(lampId, PriceSetV1.make({ price: "12.50" }))
  yield* r1.handle(deskId, ItemListed.make({ name: "Desk" }))
  yield* r1.handle(deskId, PriceSetV1.make({ price: "199" }))
  // Release 2 changes the lamp's price, in cents, under the new name.
  const r2 = yield* CommandHandler.make(release2)
  yield* Effect.sleep("5 millis")
  yield* r2.handle(lampId, PriceChangedV2.make({ amountCents: 1399 }))
  // Today: the lamp's price changes in dollars.
  const items = yield* CommandHandler.make(CatalogItemAggregate)
  yield* Effect.sleep("5 millis")
  yield* items.handle(lampId, { _tag: "ChangePrice", amountCents: 1500, currency: "USD" })

  const raw = yield* store.readStream({ streamType, streamId: lampId })
  // Keys sorted: jsonb keeps its own key order.
  const stored = raw.map((e) =>
    `${e.version}: ${e.type} v${e.schemaVersion} ${JSON.stringify(e.payload, Object.keys(e.payload as object).sort())}`
  )
  yield* Console.log(`1. the lamp's stream, as stored by three releases:\n   ${stored.join("\n   ")}`)

  const lamp = (yield* items.load(lampId)).state
  yield* Console.log(`2. today's code loads it: ${JSON.stringify(lamp)}`)

  // The price history, decoded: `types` is checked against the union at compile time, and includes `PriceSet`.
  const prices = yield* EventQuery.readStream(CatalogItemAggregate, lampId, { types: ["PriceChanged"] })
  const history = prices.map(({ event, recorded }) =>
    `${format(event.amountCents, event.currency)} (stored as ${recorded.type} v${recorded.schemaVersion})`
  )
  yield* Console.log(`3. the lamp's price history:\n   ${history.join("\n   ")}`)

  // Every price change of every item since this run began, from the feed (served by the event-type and time
  // indexes on PostgreSQL).
  const head = yield* store.headPosition
  const changes = yield* EventQuery.readAll({
    aggregates: [CatalogItemAggregate],
    types: ["PriceChanged"],
    since: raw[0]!.recordedAt
  })
  const ofThisRun = changes.events.filter(({ recorded }) => recorded.streamId.endsWith(run))
  yield* Console.log(`4. price changes across the catalog in this run: ${ofThisRun.length}`)

  // A typed projection: the current price list, by item name.
  const names = new Map<string, string>()
  const priceList = yield* Ref.make<Record<string, string>>({})
  const projection = yield* Subscription.make({
    id: "price-list",
    pollInterval: "50 millis",
    ...EventQuery.handler(
      { aggregates: [CatalogItemAggregate] },
      ({ event, recorded }) =>
        event._tag === "ItemListed"
          ? Effect.sync(() => names.set(recorded.streamId, event.name))
          : Ref.update(priceList, (list) => ({
            ...list,
            [names.get(recorded.streamId) ?? recorded.streamId]: format(event.amountCents, event.currency)
          }))
    )
  })
  yield* Effect.forkScoped(projection.run)
  yield* projection.waitFor(head)
  yield* Console.log(`5. the price list projection: ${JSON.stringify(yield* Ref.get(priceList))}`)

  // The lamp as it was: at version 2, and when release 1 wrote its last event.
  const atVersion2 = (yield* items.load(lampId, { atVersion: 2 })).state
  const endOfRelease1 = (yield* items.load(lampId, { asOf: raw[1]!.recordedAt })).state
  yield* Console.log(
    `6. the lamp at version 2: ${format(atVersion2.priceCents, atVersion2.currency)}; ` +
      `when release 1 set its price: ${format(endOfRelease1.priceCents, endOfRelease1.currency)}`
  )
  return {
    stored,
    lamp,
    history,
    allPriceChanges: ofThisRun.length,
    priceList: yield* Ref.get(priceList),
    atVersion2,
    endOfRelease1
  } satisfies EvolutionResult
}).pipe(Effect.scoped)

runIfMain(import.meta, "an event that evolved through three releases", onPostgres(program))
