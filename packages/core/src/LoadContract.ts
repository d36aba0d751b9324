/**
 * The behaviour of loads on every store, as one exported test suite: a store's column reader (the fused path a load
 * reads through, see `EventStore.readStreamColumns`) reads exactly what `readStream` reads and fails as it fails, and a
 * load through it equals the load through `readStream` on every path: upcasting, former names, snapshots,
 * `atVersion`, `asOf`, undecodable events and the stream lifecycle. A store whose `readStream` is decorated reads
 * through the decorator.
 *
 * @since 0.4.0
 */
import { assert, layer } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Aggregate from "./Aggregate.js"
import type * as CheckpointStore from "./CheckpointStore.js"
import * as CommandHandler from "./CommandHandler.js"
import * as Decider from "./Decider.js"
import type * as EventCodec from "./EventCodec.js"
import * as EventStore from "./EventStore.js"
import type * as FeedNotifier from "./FeedNotifier.js"
import type * as NewEvent from "./NewEvent.js"
import type * as RecordedEvent from "./RecordedEvent.js"
import * as SnapshotStore from "./SnapshotStore.js"
import * as StreamLifecycle from "./StreamLifecycle.js"

// PriceChanged was "PriceUpdated" { amount: "12.50" } at v1, { amountCents } at v2, and gained a currency at v3,
// which the v2 -> v3 upcaster reads from the whole stored event (its metadata).
const Listed = Schema.TaggedStruct("Listed", { name: Schema.String })
const PriceChanged = Schema.TaggedStruct("PriceChanged", { amountCents: Schema.Int, currency: Schema.String })
const ProductEvent = Schema.Union(Listed, PriceChanged)
type ProductEvent = typeof ProductEvent.Type

interface Product {
  readonly name: string
  readonly priceCents: number
  readonly currency: string
  /** Every version folded, in order: a fold that skips, repeats or reorders an event shows here. */
  readonly seen: ReadonlyArray<string>
}
const ProductState = Schema.Struct({
  name: Schema.String,
  priceCents: Schema.Number,
  currency: Schema.String,
  seen: Schema.Array(Schema.String)
})

const decider = Decider.make<Product, never, ProductEvent>({
  initialState: { name: "", priceCents: 0, currency: "", seen: [] },
  evolve: (state, event) =>
    event._tag === "Listed"
      ? { ...state, name: event.name, seen: [...state.seen, `L:${event.name}`] }
      : {
        ...state,
        priceCents: event.amountCents,
        currency: event.currency,
        seen: [...state.seen, `P:${event.amountCents}${event.currency}`]
      },
  decide: () => Effect.succeed([])
})

const upcasting: EventCodec.Evolution<ProductEvent> = {
  PriceChanged: {
    formerNames: ["PriceUpdated"],
    upcasters: [
      (v1) => ({ amountCents: Math.round(Number(v1["amount"]) * 100) }),
      (v2, event) => ({ ...v2, currency: event.metadata.headers?.["currency"] ?? "EUR" })
    ]
  }
}

/** Only a rename: a fold with no upcaster never needs whole events. */
const renaming: EventCodec.Evolution<ProductEvent> = { PriceChanged: { formerNames: ["PriceUpdated"] } }

const product = (name: string, options: { readonly evolution: EventCodec.Evolution<ProductEvent>; every?: number }) =>
  Aggregate.make({
    name,
    decider,
    events: ProductEvent,
    evolution: options.evolution,
    state: ProductState,
    ...(options.every === undefined ? {} : { snapshot: { every: options.every, schemaVersion: 1, mode: "manual" } })
  })

/** What old code wrote: every version and the former name, a currency in one event's metadata. */
const history: ReadonlyArray<NewEvent.NewEvent> = [
  { type: "Listed", payload: { name: "Lamp" } },
  { type: "PriceUpdated", payload: { amount: "12.50" }, schemaVersion: 1 },
  {
    type: "PriceChanged",
    payload: { amountCents: 1399 },
    schemaVersion: 2,
    metadata: { headers: { currency: "CHF" } }
  },
  { type: "PriceChanged", payload: { amountCents: 1500, currency: "USD" }, schemaVersion: 3 },
  { type: "PriceChanged", payload: { amountCents: 1450 }, schemaVersion: 2 },
  { type: "Listed", payload: { name: "Desk lamp" } }
]

/** The same history as current events only, for the aggregate that has no upcaster. */
const currentHistory: ReadonlyArray<NewEvent.NewEvent> = [
  { type: "Listed", payload: { name: "Lamp" } },
  { type: "PriceUpdated", payload: { amountCents: 1250, currency: "EUR" } },
  { type: "PriceChanged", payload: { amountCents: 1399, currency: "CHF" } },
  { type: "Listed", payload: { name: "Desk lamp" } }
]

type ProductAggregate = ReturnType<typeof product>
type Handler = CommandHandler.CommandHandler<Product, never, ProductEvent, never>

const unique = (prefix: string) => `${prefix}-${crypto.randomUUID()}`

type Services =
  | EventStore.EventStore
  | SnapshotStore.SnapshotStore
  | CheckpointStore.CheckpointStore
  | FeedNotifier.FeedNotifier
  | StreamLifecycle.StreamLifecycle

/** The store with its `readStream` wrapped: no column reader, so reads (and loads) go through `readStream`. */
const throughReadStream = (store: EventStore.EventStore["Type"]): EventStore.EventStore["Type"] => ({
  ...store,
  readStream: (options) => store.readStream(options)
})

/** An exit as a plain value, so that two can be compared whole. */
const outcome = <A, E>(exit: Exit.Exit<A, E>) =>
  Exit.match(exit, { onFailure: (cause) => ({ failure: Cause.squash(cause) }), onSuccess: (value) => ({ value }) })

/** The fields of `StreamColumns` as plain values, every event made whole when it was asked for. */
const plainColumns = (columns: EventStore.StreamColumns) => ({
  exists: columns.exists,
  versions: columns.versions,
  types: columns.types,
  schemaVersions: columns.schemaVersions,
  payloads: columns.payloads,
  recordedAt: columns.recordedAt.map((d) => d.getTime()),
  events: columns.event === undefined ? undefined : columns.versions.map((_, i) => columns.event!(i))
})

/**
 * Registers the suite against a stack that provides the stores and a `StreamLifecycle` allowed to delete events (on
 * PostgreSQL, the owner's); built once, each test uses its own stream types. With `columnReader` (the default) the
 * store must read columns through a reader of its own, as the memory and PostgreSQL stores do.
 *
 * @since 0.4.0
 * @category suites
 */
export const suite = <E>(
  name: string,
  stack: Layer.Layer<Services, E>,
  options?: { readonly columnReader?: boolean | undefined }
): void =>
  layer(stack, { excludeTestServices: true, timeout: "120 seconds" })(`Load contract: ${name}`, (it) => {
    const append = (streamType: string, streamId: string, events: ReadonlyArray<NewEvent.NewEvent>) =>
      Effect.flatMap(EventStore.EventStore, (store) => store.append({ streamType, streamId, events }))

    // Appends one event at a time, a few milliseconds apart, so that point-in-time loads have times to fall between.
    const appendApart = (streamType: string, streamId: string, events: ReadonlyArray<NewEvent.NewEvent>) =>
      Effect.forEach(
        events,
        (event) => Effect.zipRight(Effect.sleep("4 millis"), append(streamType, streamId, [event]))
      )

    /** Runs `f` against a handler on the store and one on the store read through `readStream`; both must agree. */
    const bothWays = <A, Err>(aggregate: ProductAggregate, f: (handler: Handler) => Effect.Effect<A, Err, Services>) =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const plain = throughReadStream(store)
        assert.isFalse(EventStore.hasColumnReader(plain))
        if (options?.columnReader !== false) assert.isTrue(EventStore.hasColumnReader(store))
        const fused = yield* Effect.exit(Effect.flatMap(CommandHandler.make(aggregate), f))
        const unfused = yield* Effect.exit(
          Effect.flatMap(CommandHandler.make(aggregate), f).pipe(Effect.provideService(EventStore.EventStore, plain))
        )
        assert.deepStrictEqual(outcome(fused), outcome(unfused))
        return fused
      })

    /** Every load of a stream: now, at versions, and at each event's time, just before it, before all and after. */
    const everyLoad = (handler: Handler, streamType: string, id: string) =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const events = yield* Effect.orElseSucceed(
          store.readStream({ streamType, streamId: id, includeArchived: true }),
          (): ReadonlyArray<RecordedEvent.RecordedEvent> => []
        )
        const current = yield* Effect.exit(handler.load(id))
        const atVersion = yield* Effect.forEach(
          [0, 1, 2, 3, events.length, events.length + 5],
          (atVersion) => Effect.exit(handler.load(id, { atVersion }))
        )
        const times = [
          new Date(0),
          ...events.map((e) => e.recordedAt),
          ...events.map((e) => new Date(e.recordedAt.getTime() - 1)),
          new Date(Date.now() + 60_000)
        ]
        const asOf = yield* Effect.forEach(times, (asOf) => Effect.exit(handler.load(id, { asOf })))
        return [current, ...atVersion, ...asOf].map(outcome)
      })

    it.effect("readStreamColumns reads what readStream reads, and fails as it fails", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const lifecycle = yield* StreamLifecycle.StreamLifecycle
        const streamType = unique("Columns")
        yield* appendApart(streamType, "a", history)
        for (const id of ["archived", "deleted", "recreated", "truncated"]) yield* append(streamType, id, history)
        yield* lifecycle.archive({ streamType, streamId: "archived" })
        yield* lifecycle.delete({ streamType, streamId: "deleted" })
        yield* lifecycle.delete({ streamType, streamId: "recreated" }, { recreate: true })
        yield* append(streamType, "recreated", currentHistory)
        yield* append(streamType, "soft", currentHistory)
        yield* lifecycle.delete({ streamType, streamId: "soft" }, { recreate: true })
        yield* lifecycle.truncateBefore({ streamType, streamId: "truncated" }, 3)
        const reads: ReadonlyArray<EventStore.ReadColumnsOptions> = [
          { streamType, streamId: "a" },
          { streamType, streamId: "a", fromVersion: 3 },
          { streamType, streamId: "a", fromVersion: 2, limit: 3, recordedAt: true },
          { streamType, streamId: "a", fromVersion: 0, events: true, recordedAt: true },
          { streamType, streamId: "a", fromVersion: 99 },
          { streamType, streamId: "missing" },
          { streamType, streamId: "archived", events: true },
          { streamType, streamId: "archived", includeArchived: true, events: true },
          { streamType, streamId: "deleted" },
          { streamType, streamId: "recreated", recordedAt: true, events: true },
          { streamType, streamId: "soft" },
          { streamType, streamId: "truncated", fromVersion: 1, events: true },
          { streamType: "", streamId: "a" },
          { streamType, streamId: "a", limit: 0 },
          { streamType, streamId: "a", fromVersion: -1 }
        ]
        for (const read of reads) {
          const columns = yield* Effect.exit(EventStore.readStreamColumns(store, read))
          const { events, recordedAt, ...rest } = read
          const viaReadStream = yield* Effect.exit(
            store.readStream({ ...rest, direction: "forward" }).pipe(
              Effect.map((found) => EventStore.columnsOf(found, { recordedAt, events })),
              Effect.catchTag("StreamNotFound", () => Effect.succeed(EventStore.missingColumns))
            )
          )
          assert.deepStrictEqual(
            outcome(Exit.map(columns, plainColumns)),
            outcome(Exit.map(viaReadStream, plainColumns)),
            JSON.stringify(read)
          )
        }
        // The reads above saw every case: events, an empty range, a missing stream and each failure.
        const seen = yield* Effect.forEach(reads, (read) =>
          Effect.match(EventStore.readStreamColumns(store, read), {
            onFailure: (e) => e._tag,
            onSuccess: (c) => !c.exists ? "missing" : c.versions.length === 0 ? "empty" : `events from ${c.versions[0]}`
          }))
        assert.deepStrictEqual(seen, [
          "events from 1",
          "events from 3",
          "events from 2",
          "events from 1",
          "empty",
          "missing",
          "StreamArchived",
          "events from 1",
          "StreamDeleted",
          "events from 7",
          "missing",
          "events from 3",
          "InvalidInput",
          "InvalidInput",
          "InvalidInput"
        ])
      }))

    it.effect("loads through the columns equal loads through readStream: upcasters, former names, points in time", () =>
      Effect.gen(function*() {
        const Upcasting = product(unique("Product"), { evolution: upcasting })
        const Renaming = product(unique("Product"), { evolution: renaming })
        yield* appendApart(Upcasting.name, "p-1", history)
        yield* appendApart(Renaming.name, "p-1", currentHistory)
        const upcasted = yield* bothWays(Upcasting, (handler) => handler.load("p-1"))
        assert.deepStrictEqual(
          upcasted,
          Exit.succeed({
            state: {
              name: "Desk lamp",
              priceCents: 1450,
              currency: "EUR",
              seen: ["L:Lamp", "P:1250EUR", "P:1399CHF", "P:1500USD", "P:1450EUR", "L:Desk lamp"]
            },
            version: 6
          })
        )
        const renamed = yield* bothWays(Renaming, (handler) => handler.load("p-1"))
        assert.deepStrictEqual(
          Exit.map(renamed, (r) => r.state.seen),
          Exit.succeed(["L:Lamp", "P:1250EUR", "P:1399CHF", "L:Desk lamp"])
        )
        for (const aggregate of [Upcasting, Renaming]) {
          const loads = yield* bothWays(aggregate, (handler) => everyLoad(handler, aggregate.name, "p-1"))
          // Point-in-time loads saw each prefix of the stream: the initial state, every version, the whole stream.
          const versions = Exit.map(loads, (all) => new Set(all.map((o) => "value" in o ? o.value.version : -1)))
          assert.deepStrictEqual(
            Exit.map(versions, (v) => [...v].sort((a, b) => a - b)),
            Exit.succeed(aggregate === Upcasting ? [0, 1, 2, 3, 4, 5, 6] : [0, 1, 2, 3, 4])
          )
        }
        const none = yield* bothWays(Upcasting, (handler) => handler.load("none"))
        assert.deepStrictEqual(Exit.map(none, (r) => r.version), Exit.succeed(0))
      }))

    it.effect("loads through the columns equal loads through readStream with snapshots", () =>
      Effect.gen(function*() {
        const Snapshotting = product(unique("Product"), { evolution: upcasting, every: 2 })
        const id = "p-1"
        yield* appendApart(Snapshotting.name, id, history.slice(0, 3))
        const handler = yield* CommandHandler.make(Snapshotting)
        assert.strictEqual((yield* handler.snapshot(id))._tag, "Some")
        yield* appendApart(Snapshotting.name, id, history.slice(3))
        const loads = yield* bothWays(Snapshotting, (h) => everyLoad(h, Snapshotting.name, id))
        assert.isTrue(Exit.isSuccess(loads))
        // A snapshot ahead of its stream (a stream reset, a corrupt row) is a miss: the load replays the events.
        yield* append(Snapshotting.name, "short", history.slice(0, 1))
        const snapshots = yield* SnapshotStore.SnapshotStore
        yield* snapshots.save({
          streamType: Snapshotting.name,
          streamId: "short",
          version: 5,
          schemaVersion: 1,
          state: { name: "Ghost", priceCents: 1, currency: "EUR", seen: [] }
        })
        const short = yield* bothWays(Snapshotting, (h) => h.load("short"))
        assert.deepStrictEqual(Exit.map(short, (r) => [r.version, r.state.name]), Exit.succeed([1, "Lamp"]))
      }))

    it.effect("undecodable events fail a load the same way through the columns and through readStream", () =>
      Effect.gen(function*() {
        const Upcasting = product(unique("Product"), { evolution: upcasting })
        const Renaming = product(unique("Product"), { evolution: renaming })
        const cases: ReadonlyArray<readonly [string, NewEvent.NewEvent]> = [
          ["unknown-type", { type: "Discontinued", payload: {} }],
          ["newer-version", { type: "PriceChanged", payload: { amountCents: 1 }, schemaVersion: 9 }],
          ["payload", { type: "Listed", payload: { name: 42 } }],
          ["payload", { type: "PriceUpdated", payload: { amount: "not a number" } }]
        ]
        for (const aggregate of [Upcasting, Renaming]) {
          for (const [reason, bad] of cases) {
            const id = unique("p")
            yield* append(aggregate.name, id, [{ type: "Listed", payload: { name: "Lamp" } }, bad])
            const failed = yield* bothWays(aggregate, (handler) => handler.load(id))
            assert.deepStrictEqual(
              Exit.match(failed, {
                onFailure: (cause) => {
                  const error = Cause.squash(cause) as { readonly _tag: string; readonly reason?: string }
                  return [error._tag, error.reason]
                },
                onSuccess: () => ["loaded"]
              }),
              // Without upcasters a v1 PriceUpdated is simply the renamed current type: its payload must decode.
              ["EventDecodeError", reason]
            )
          }
        }
      }))

    it.effect("loads of archived, deleted, recreated and truncated streams agree through both paths", () =>
      Effect.gen(function*() {
        const lifecycle = yield* StreamLifecycle.StreamLifecycle
        const Plain = product(unique("Product"), { evolution: renaming })
        const Snapshotting = product(Plain.name, { evolution: renaming, every: 2 })
        const ref = (streamId: string) => ({ streamType: Plain.name, streamId })
        for (const id of ["archived", "deleted", "recreated", "truncated", "covered"]) {
          yield* append(Plain.name, id, currentHistory)
        }
        yield* lifecycle.archive(ref("archived"))
        yield* lifecycle.delete(ref("deleted"))
        yield* lifecycle.delete(ref("recreated"), { recreate: true })
        yield* append(Plain.name, "recreated", currentHistory.slice(0, 2))
        const snapshotter = yield* CommandHandler.make(Snapshotting)
        yield* snapshotter.snapshot("covered")
        yield* lifecycle.truncateBefore(ref("truncated"), 3)
        yield* lifecycle.truncateBefore(ref("covered"), 3)
        const tags: Array<string> = []
        for (const aggregate of [Plain, Snapshotting]) {
          for (const id of ["archived", "deleted", "recreated", "truncated", "covered"]) {
            const loads = yield* bothWays(aggregate, (h) => everyLoad(h, aggregate.name, id))
            const first = Exit.map(loads, (all) => all[0]!)
            tags.push(
              Exit.match(first, {
                onFailure: () => "died",
                onSuccess: (o) => "value" in o ? `v${o.value.version}` : (o.failure as { _tag: string })._tag
              })
            )
          }
        }
        assert.deepStrictEqual(tags, [
          "StreamArchived",
          "StreamDeleted",
          "v6",
          "StreamTruncated",
          "StreamTruncated",
          "StreamArchived",
          "StreamDeleted",
          "v6",
          "StreamTruncated",
          "v4"
        ])
      }))

    it.effect("a decorated readStream is never bypassed: loads read through the decorator", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const Renaming = product(unique("Product"), { evolution: renaming })
        yield* append(Renaming.name, "p-1", currentHistory)
        // A decorator that changes what reads see (as PersonalData decrypts): the load must see its change.
        const decorated: EventStore.EventStore["Type"] = {
          ...store,
          readStream: (read) =>
            Effect.map(
              store.readStream(read),
              (events) =>
                events.map((e) =>
                  e.type === "Listed" ? { ...e, payload: { name: `~${(e.payload as { name: string }).name}` } } : e
                )
            )
        }
        assert.isFalse(EventStore.hasColumnReader(decorated))
        const loaded = yield* Effect.flatMap(CommandHandler.make(Renaming), (h) => h.load("p-1")).pipe(
          Effect.provideService(EventStore.EventStore, decorated)
        )
        assert.deepStrictEqual(loaded.state.seen, ["L:~Lamp", "P:1250EUR", "P:1399CHF", "L:~Desk lamp"])
      }))
  })
