/**
 * The behaviour of evolving events on every store, as one exported test suite: events written by old code (older
 * versions, a former type name) load, read, stream and reach subscriptions as the current type; new events carry
 * the current version; undecodable events fail typed, or follow a read's `unknown` policy; point-in-time loads equal
 * the fold of the stream's prefix, with and without snapshots.
 *
 * @since 0.4.0
 */
import { assert, layer } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Layer from "effect/Layer"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as Aggregate from "./Aggregate.js"
import type * as CheckpointStore from "./CheckpointStore.js"
import * as CommandHandler from "./CommandHandler.js"
import * as Decider from "./Decider.js"
import * as Errors from "./Errors.js"
import type * as EventCodec from "./EventCodec.js"
import * as EventQuery from "./EventQuery.js"
import * as EventStore from "./EventStore.js"
import type * as FeedNotifier from "./FeedNotifier.js"
import type * as NewEvent from "./NewEvent.js"
import * as Position from "./Position.js"
import * as RecordedEvent from "./RecordedEvent.js"
import type * as SnapshotStore from "./SnapshotStore.js"
import * as Subscription from "./Subscription.js"

// The current shapes. PriceChanged was "PriceUpdated" { amount: "12.50" } at v1, { amountCents } at v2, and gained
// a currency at v3.
const Listed = Schema.TaggedStruct("Listed", { name: Schema.String })
const PriceChanged = Schema.TaggedStruct("PriceChanged", { amountCents: Schema.Int, currency: Schema.String })
const ProductEvent = Schema.Union(Listed, PriceChanged)
type ProductEvent = typeof ProductEvent.Type

interface Product {
  readonly name: string
  readonly priceCents: number
  readonly currency: string
  readonly changes: number
}
const ProductState = Schema.Struct({
  name: Schema.String,
  priceCents: Schema.Number,
  currency: Schema.String,
  changes: Schema.Number
})

type Command =
  | { readonly _tag: "List"; readonly name: string }
  | { readonly _tag: "ChangePrice"; readonly amountCents: number; readonly currency: string }

const decider = Decider.make<Product, Command, ProductEvent>({
  initialState: { name: "", priceCents: 0, currency: "", changes: 0 },
  evolve: (state, event) =>
    event._tag === "Listed"
      ? { ...state, name: event.name }
      : { ...state, priceCents: event.amountCents, currency: event.currency, changes: state.changes + 1 },
  decide: (command) =>
    Effect.succeed(
      command._tag === "List"
        ? [Listed.make({ name: command.name })]
        : [PriceChanged.make({ amountCents: command.amountCents, currency: command.currency })]
    )
})

const unique = (prefix: string) => `${prefix}-${crypto.randomUUID()}`

/** The evolution of PriceChanged: v1 -> v2 -> v3, and its former name. */
const evolution: EventCodec.Evolution<ProductEvent> = {
  PriceChanged: {
    formerNames: ["PriceUpdated"],
    upcasters: [
      (v1) => ({ amountCents: Math.round(Number(v1["amount"]) * 100) }),
      (v2) => ({ ...v2, currency: "EUR" })
    ]
  }
}

const product = (name: string, snapshotEvery?: number) =>
  Aggregate.make({
    name,
    decider,
    events: ProductEvent,
    evolution,
    state: ProductState,
    ...(snapshotEvery === undefined ? {} : { snapshot: { every: snapshotEvery, schemaVersion: 1 } })
  })

/** What "old code" wrote over the years, as stored: every version, and the former name. */
const history: ReadonlyArray<NewEvent.NewEvent> = [
  { type: "Listed", payload: { name: "Lamp" }, schemaVersion: 1 },
  { type: "PriceUpdated", payload: { amount: "12.50" }, schemaVersion: 1 },
  { type: "PriceChanged", payload: { amountCents: 1399 }, schemaVersion: 2 },
  { type: "PriceChanged", payload: { amountCents: 1500, currency: "USD" }, schemaVersion: 3 }
]

const fast = { pollInterval: "20 millis", lease: "2 seconds", batchSize: 50 } as const

/** The feed until `count` items show (a PostgreSQL feed trails commits by open transactions). */
const collectFeed = <A>(read: Stream.Stream<A, unknown, EventStore.EventStore>, count: number) =>
  Stream.runCollect(read).pipe(
    Effect.map(Chunk.toReadonlyArray),
    Effect.filterOrFail((items) => items.length >= count),
    Effect.retry({ schedule: Schedule.spaced("20 millis"), times: 250 })
  )

type Services =
  | EventStore.EventStore
  | SnapshotStore.SnapshotStore
  | CheckpointStore.CheckpointStore
  | FeedNotifier.FeedNotifier

/**
 * Registers the suite against a Layer providing the event store, snapshot store, checkpoint store and feed notifier
 * (`MemoryEventfold.layer()`, `PgEventfold.layer(...)`); built once, each test uses its own stream types.
 *
 * @since 0.4.0
 * @category suites
 */
export const suite = <E>(name: string, stack: Layer.Layer<Services, E>): void =>
  layer(stack, { excludeTestServices: true, timeout: "120 seconds" })(`Evolution contract: ${name}`, (it) => {
    const writeHistory = (streamType: string, streamId: string, events = history) =>
      Effect.flatMap(EventStore.EventStore, (store) => store.append({ streamType, streamId, events }))

    it.effect("events of every version and a former name load as the current type; new ones are written current", () =>
      Effect.gen(function*() {
        const Product = product(unique("Product"))
        yield* writeHistory(Product.name, "p-1")
        const handler = yield* CommandHandler.make(Product)
        assert.deepStrictEqual(yield* handler.load("p-1"), {
          state: { name: "Lamp", priceCents: 1500, currency: "USD", changes: 3 },
          version: 4
        })
        const result = yield* handler.handle("p-1", { _tag: "ChangePrice", amountCents: 1600, currency: "USD" })
        assert.strictEqual(result.version, 5)
        const stored = yield* Effect.flatMap(
          EventStore.EventStore,
          (store) => store.readStream({ streamType: Product.name, streamId: "p-1", fromVersion: 5 })
        )
        assert.deepStrictEqual(
          stored.map((e) => [e.type, e.schemaVersion, e.payload]),
          [["PriceChanged", 3, { amountCents: 1600, currency: "USD" }]]
        )
        // A type with no upcasters is at version 1.
        yield* handler.handle("p-2", { _tag: "List", name: "Desk" })
        const listed = yield* Effect.flatMap(
          EventStore.EventStore,
          (store) => store.readStream({ streamType: Product.name, streamId: "p-2" })
        )
        assert.deepStrictEqual(listed.map((e) => e.schemaVersion), [1])
      }))

    it.effect("typed stream reads upcast, filter by type with former names included, and page both ways", () =>
      Effect.gen(function*() {
        const Product = product(unique("Product"))
        yield* writeHistory(Product.name, "p-1")
        const prices = yield* EventQuery.readStream(Product, "p-1", { types: ["PriceChanged"], pageSize: 1 })
        assert.deepStrictEqual(
          prices.map(({ event, recorded }) => [event.amountCents, event.currency, recorded.version, recorded.type]),
          [[1250, "EUR", 2, "PriceUpdated"], [1399, "EUR", 3, "PriceChanged"], [1500, "USD", 4, "PriceChanged"]]
        )
        const latest = yield* EventQuery.readStream(Product, "p-1", { direction: "backward", limit: 2, pageSize: 1 })
        assert.deepStrictEqual(latest.map((d) => d.recorded.version), [4, 3])
        const missing = yield* Effect.flip(EventQuery.readStream(Product, "nope"))
        assert.strictEqual(missing._tag, "StreamNotFound")
        const badLimit = yield* Effect.flip(EventQuery.readStream(Product, "p-1", { limit: 0 }))
        assert.strictEqual(badLimit._tag, "InvalidInput")
      }))

    it.effect("typed feed reads upcast and select by type (former names included) and by aggregate", () =>
      Effect.gen(function*() {
        const Product = product(unique("Product"))
        const Other = product(unique("Other"))
        yield* writeHistory(Product.name, "p-1")
        yield* writeHistory(Other.name, "o-1")
        const prices = yield* collectFeed(
          EventQuery.streamAll({ aggregates: [Product], types: ["PriceChanged"], pageSize: 2 }),
          3
        )
        assert.deepStrictEqual(
          prices.map(({ event }) => [event._tag, event.amountCents, event.currency]),
          [["PriceChanged", 1250, "EUR"], ["PriceChanged", 1399, "EUR"], ["PriceChanged", 1500, "USD"]]
        )
        const both = yield* collectFeed(EventQuery.streamAll({ aggregates: [Product, Other] }), 8)
        assert.deepStrictEqual(both.map((d) => d.recorded.streamType).filter((t) => t === Other.name).length, 4)
        const page = yield* EventQuery.readAll({ aggregates: [Product], types: ["Listed"], limit: 10 })
        assert.deepStrictEqual(page.events.map((d) => d.event), [Listed.make({ name: "Lamp" })])
        const rest = yield* EventQuery.readAll({ aggregates: [Product], types: ["Listed"], after: page.next })
        assert.deepStrictEqual(rest.events, [])
        assert.deepStrictEqual(rest.next, page.next)
        const none = yield* Effect.flip(EventQuery.readAll({ aggregates: [] }))
        assert.strictEqual(none._tag, "InvalidInput")
      }))

    it.effect("a load meets an unknown type, a newer version or a failing upcaster as a typed EventDecodeError", () =>
      Effect.gen(function*() {
        const Product = product(unique("Product"))
        const handler = yield* CommandHandler.make(Product)
        const failure = (events: ReadonlyArray<NewEvent.NewEvent>) =>
          Effect.gen(function*() {
            const id = unique("p")
            yield* writeHistory(Product.name, id, events)
            const error = yield* Effect.flip(handler.load(id))
            assert.instanceOf(error, Errors.EventDecodeError)
            return error as Errors.EventDecodeError
          })
        const unknown = yield* failure([{ type: "Discontinued", payload: {} }])
        assert.deepStrictEqual([unknown.reason, unknown.type, unknown.version], ["unknown-type", "Discontinued", 1])
        const newer = yield* failure([{ type: "PriceChanged", payload: { amountCents: 1 }, schemaVersion: 4 }])
        assert.deepStrictEqual([newer.reason, newer.schemaVersion], ["newer-version", 4])
        assert.match(newer.issue, /newer than the current version 3/)
        const upcast = yield* failure([{ type: "PriceUpdated", payload: { amount: { nested: true } } }])
        // Number({ nested: true }) is NaN, so the v2 payload fails the Int Schema after upcasting.
        assert.strictEqual(upcast.reason, "payload")
        const Throwing = Aggregate.make({
          name: Product.name,
          decider,
          events: ProductEvent,
          evolution: {
            PriceChanged: {
              upcasters: [() => {
                throw new Error("no price")
              }, (v2) => v2]
            }
          }
        })
        yield* writeHistory(Product.name, "p-throws", [{ type: "PriceChanged", payload: { amountCents: 1 } }])
        const thrown = yield* Effect.flip(Effect.flatMap(CommandHandler.make(Throwing), (h) => h.load("p-throws")))
        assert.strictEqual((thrown as Errors.EventDecodeError).reason, "upcast")
        assert.match((thrown as Errors.EventDecodeError).issue, /v1 -> v2 of "PriceChanged" threw: no price/)
      }))

    it.effect("feed reads follow their unknown-event policy: fail, skip, or raw", () =>
      Effect.gen(function*() {
        const Product = product(unique("Product"))
        yield* writeHistory(Product.name, "p-1", [
          history[0]!,
          { type: "Discontinued", payload: { reason: "old" } },
          history[3]!
        ])
        // Wait until all three are in the feed.
        yield* collectFeed(
          Stream.flatMap(Stream.fromEffect(EventStore.EventStore), () =>
            EventStore.streamAll({ streamTypes: [Product.name] })),
          3
        )
        const failed = yield* Effect.flip(EventQuery.readAll({ aggregates: [Product] }))
        assert.deepStrictEqual([failed._tag, (failed as Errors.EventDecodeError).reason], [
          "EventDecodeError",
          "unknown-type"
        ])
        const skipped = yield* EventQuery.readAll({ aggregates: [Product], unknown: "skip" })
        assert.deepStrictEqual(
          skipped.events.map((d) =>
            d.event._tag
          ),
          ["Listed", "PriceChanged"]
        )
        // `next` is the last stored event read, decoded or not: paging on never meets a skipped one again.
        assert.deepStrictEqual(skipped.next, RecordedEvent.position(skipped.events[1]!.recorded))
        const afterUnknown = yield* EventQuery.readAll({
          aggregates: [Product],
          unknown: "skip",
          after: RecordedEvent.position(skipped.events[0]!.recorded),
          limit: 1
        })
        assert.deepStrictEqual(afterUnknown.events, [])
        assert.isTrue(Position.isAfter(afterUnknown.next, RecordedEvent.position(skipped.events[0]!.recorded)))
        const raw = yield* EventQuery.readAll({ aggregates: [Product], unknown: "raw" })
        assert.deepStrictEqual(raw.events.map((item) => item._tag), ["Decoded", "Undecoded", "Decoded"])
        const undecoded = raw.events[1]!
        assert.strictEqual(undecoded._tag, "Undecoded")
        if (undecoded._tag === "Undecoded") {
          assert.deepStrictEqual([undecoded.recorded.type, undecoded.error.reason], ["Discontinued", "unknown-type"])
          assert.deepStrictEqual(undecoded.recorded.payload, { reason: "old" })
        }
      }))

    it.scoped("typed subscriptions upcast, and follow their policy: skip and raw go on, fail stops typed", () =>
      Effect.gen(function*() {
        const Product = product(unique("Product"))
        yield* writeHistory(Product.name, "p-1", history)
        const last = yield* writeHistory(Product.name, "p-2", [
          { type: "Discontinued", payload: {} },
          { type: "Listed", payload: { name: "Chair" } }
        ])
        const run = <P extends EventQuery.UnknownPolicy>(policy: P) =>
          Effect.gen(function*() {
            const seen = yield* Ref.make<ReadonlyArray<string>>([])
            const subscription = yield* Subscription.make({
              ...fast,
              id: unique(`typed-${policy}`),
              errorPolicy: { retry: Schedule.recurs(0), onExhausted: "stop" },
              ...EventQuery.handler(
                { aggregates: [Product], unknown: policy },
                (item) =>
                  Ref.update(seen, (all) => [
                    ...all,
                    item._tag === "Decoded"
                      ? item.event._tag === "PriceChanged"
                        ? `${item.event.amountCents} ${item.event.currency}`
                        : item.event.name
                      : `raw ${item.recorded.type}`
                  ])
              )
            })
            return { subscription, seen }
          })
        const skip = yield* run("skip")
        yield* Effect.forkScoped(skip.subscription.run)
        yield* skip.subscription.waitFor(last.position)
        assert.deepStrictEqual(yield* Ref.get(skip.seen), ["Lamp", "1250 EUR", "1399 EUR", "1500 USD", "Chair"])
        const raw = yield* run("raw")
        yield* Effect.forkScoped(raw.subscription.run)
        yield* raw.subscription.waitFor(last.position)
        assert.deepStrictEqual(yield* Ref.get(raw.seen), [
          "Lamp",
          "1250 EUR",
          "1399 EUR",
          "1500 USD",
          "raw Discontinued",
          "Chair"
        ])
        const fail = yield* run("fail")
        const stopped = yield* Effect.flip(fail.subscription.run)
        assert.strictEqual(stopped._tag, "SubscriptionStopped")
        if (stopped._tag === "SubscriptionStopped") {
          assert.strictEqual(stopped.eventType, "Discontinued")
          assert.match(stopped.reason, /unknown event type "Discontinued"/)
        }
        assert.deepStrictEqual(yield* Ref.get(fail.seen), ["Lamp", "1250 EUR", "1399 EUR", "1500 USD"])
      }))

    it.effect("point-in-time loads equal the fold of the stream's prefix, with and without snapshots", () =>
      Effect.gen(function*() {
        const name = unique("Product")
        const plain = yield* CommandHandler.make(product(name))
        const snapshotted = yield* CommandHandler.make(product(name, 3))
        yield* writeHistory(name, "p-1")
        // One command per append, a few milliseconds apart, through the snapshotting handler (snapshots at 6 and 9).
        for (let i = 1; i <= 7; i++) {
          yield* Effect.sleep("3 millis")
          yield* snapshotted.handle("p-1", { _tag: "ChangePrice", amountCents: 100 * i, currency: "EUR" })
        }
        const store = yield* EventStore.EventStore
        const recorded = yield* store.readStream({ streamType: name, streamId: "p-1" })
        assert.strictEqual(recorded.length, 11)
        const events = recorded.map((e) => Either.getOrThrow(product(name).decodeEventEither(e)))
        const prefix = (n: number) => ({ state: Decider.fold(decider, events.slice(0, n)), version: n })
        for (const handler of [plain, snapshotted]) {
          for (let v = 0; v <= 11; v++) {
            assert.deepStrictEqual(yield* handler.load("p-1", { atVersion: v }), prefix(v), `atVersion ${v}`)
          }
          assert.deepStrictEqual(yield* handler.load("p-1", { atVersion: 50 }), prefix(11))
          for (const event of recorded) {
            // The prefix recorded by then: up to the last event with this very time (the history shares one).
            const n = recorded.filter((e) => e.recordedAt.getTime() <= event.recordedAt.getTime()).length
            assert.deepStrictEqual(yield* handler.load("p-1", { asOf: event.recordedAt }), prefix(n), `asOf v${n}`)
          }
          const before = new Date(recorded[0]!.recordedAt.getTime() - 1)
          assert.deepStrictEqual(yield* handler.load("p-1", { asOf: before }), prefix(0))
          assert.deepStrictEqual(yield* handler.load("p-1", { asOf: new Date(Date.now() + 60_000) }), prefix(11))
        }
        for (
          const bad of [{ atVersion: -1 }, { atVersion: 1.5 }, { asOf: new Date(Number.NaN) }, {
            atVersion: 1,
            asOf: new Date()
          }]
        ) {
          const error = yield* Effect.flip(plain.load("p-1", bad))
          assert.strictEqual(error._tag, "InvalidInput", JSON.stringify(bad))
        }
      }))

    it.effect("snapshots and upcasting together give the same state as a replay", () =>
      Effect.gen(function*() {
        const name = unique("Product")
        yield* writeHistory(name, "p-1")
        const snapshotted = yield* CommandHandler.make(product(name, 2))
        const plain = yield* CommandHandler.make(product(name))
        for (let i = 1; i <= 5; i++) {
          yield* snapshotted.handle("p-1", { _tag: "ChangePrice", amountCents: i, currency: "CHF" })
          assert.deepStrictEqual(yield* snapshotted.load("p-1"), yield* plain.load("p-1"))
        }
        assert.deepStrictEqual((yield* plain.load("p-1")).state, {
          name: "Lamp",
          priceCents: 5,
          currency: "CHF",
          changes: 8
        })
      }))
  })
