/**
 * Snapshots (`npm run example:snapshots`): a product whose aggregate has a snapshot policy takes many price changes;
 * a load then reads the latest snapshot plus the few events after it instead of the whole stream. Also shown: a
 * state-schema change makes old snapshots a miss (the load replays, nothing breaks), and a handler for a snapshotted
 * aggregate refuses to build where no `SnapshotStore` is provided.
 */
import { Aggregate, CommandHandler, EventStore, SnapshotStore } from "@eventfold/core"
import * as Console from "effect/Console"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import { ProductAggregate, ProductDecider, ProductEvent, ProductState } from "./domain/Product.js"
import { onPostgres, runIfMain } from "./run.js"

/** The product of the domain, snapshotted whenever an append crosses a multiple of 10 events. */
export const SnapshottedProduct = Aggregate.make({
  name: ProductAggregate.name,
  decider: ProductDecider,
  events: ProductEvent,
  state: ProductState,
  snapshot: { every: 10, schemaVersion: 1 }
})

/** The same product after a change to its state Schema: snapshots of schema version 1 no longer apply. */
export const SnapshottedProductV2 = Aggregate.make({
  name: ProductAggregate.name,
  decider: ProductDecider,
  events: ProductEvent,
  state: ProductState,
  snapshot: { every: 10, schemaVersion: 2 }
})

/** What the example observed, so the tests can check it. */
export interface SnapshotsResult {
  readonly productId: string
  readonly version: number
  readonly price: number
  /** The stored snapshot's version after each command that changed it. */
  readonly snapshotsWritten: ReadonlyArray<number>
  /** The versions a load read from the event store: with the snapshot, and without a snapshot policy. */
  readonly readWithSnapshot: ReadonlyArray<number>
  readonly readWithoutSnapshot: ReadonlyArray<number>
  /** After the schema change: the versions the load replayed, the new snapshot, and what the next load read. */
  readonly readAfterSchemaChange: ReadonlyArray<number>
  readonly resnapshotted: { readonly version: number; readonly schemaVersion: number }
  readonly readAfterResnapshot: ReadonlyArray<number>
  /** Why a handler cannot be built without a `SnapshotStore`. */
  readonly refusedWithout: string
}

/** The `EventStore` in context, recording the version of every event `readStream` returns. */
const countingReads = Effect.gen(function*() {
  const store = yield* EventStore.EventStore
  const read = yield* Ref.make<ReadonlyArray<number>>([])
  const counted: EventStore.EventStore["Type"] = {
    ...store,
    readStream: (options) =>
      Effect.tap(
        store.readStream(options),
        (events) => Ref.update(read, (all) => [...all, ...events.map((e) => e.version)])
      )
  }
  return { store: counted, takeRead: Ref.getAndSet(read, []) }
})

const span = (versions: ReadonlyArray<number>) =>
  versions.length === 0
    ? "no events"
    : versions.length === 1
    ? `1 event (v${versions[0]})`
    : `${versions.length} events (v${versions[0]}..v${versions[versions.length - 1]})`

/** 25 commands on one product, then loads with and without the snapshot. Needs the eventfold services. */
export const program = Effect.gen(function*() {
  const { store, takeRead } = yield* countingReads
  const snapshots = yield* SnapshotStore.SnapshotStore
  const withCounting = Effect.provideService(EventStore.EventStore, store)
  const products = yield* withCounting(CommandHandler.make(SnapshottedProduct))
  const productId = `product-${crypto.randomUUID().slice(0, 8)}`
  const stream = { streamType: SnapshottedProduct.name, streamId: productId }
  const storedVersion = Effect.map(snapshots.load(stream), Option.map((s) => s.version))

  yield* Console.log(`1. ${productId}: created, then 24 price changes (a snapshot every 10 events)`)
  yield* products.handle(productId, { _tag: "CreateProduct", name: "Espresso machine", price: 200 })
  const snapshotsWritten: Array<number> = []
  let last = 0
  for (let i = 1; i < 25; i++) {
    yield* products.handle(productId, { _tag: "UpdatePrice", price: 200 + i })
    const stored = yield* storedVersion
    if (Option.isSome(stored) && stored.value !== last) {
      last = stored.value
      snapshotsWritten.push(last)
      yield* Console.log(`   command ${i + 1}: the append crossed ${last}, so a snapshot of version ${last} was stored`)
    }
  }
  yield* takeRead

  const loaded = yield* products.load(productId)
  const readWithSnapshot = yield* takeRead
  const price = loaded.state.status === "active" ? loaded.state.price : Number.NaN
  yield* Console.log(
    `2. load with the snapshot policy: snapshot v${last} + ${span(readWithSnapshot)} → version ${loaded.version}, ` +
      `price ${price} (v${last} is read again to prove the stream reaches the snapshot)`
  )

  const plain = yield* withCounting(CommandHandler.make(ProductAggregate))
  const replayed = yield* plain.load(productId)
  const readWithoutSnapshot = yield* takeRead
  yield* Console.log(`3. load without a snapshot policy: ${span(readWithoutSnapshot)} → version ${replayed.version}`)

  const v2 = yield* withCounting(CommandHandler.make(SnapshottedProductV2))
  const afterChange = yield* v2.load(productId)
  const readAfterSchemaChange = yield* takeRead
  yield* Console.log(
    `4. after a state-schema change (schemaVersion 2) the v1 snapshot is a miss: ${span(readAfterSchemaChange)} ` +
      `replayed → version ${afterChange.version}, same price ${
        afterChange.state.status === "active" ? afterChange.state.price : "?"
      }`
  )
  const written = yield* v2.snapshot(productId)
  const resnapshotted = Option.match(written, {
    onNone: () => ({ version: 0, schemaVersion: 0 }),
    onSome: (s) => ({ version: s.version, schemaVersion: s.schemaVersion })
  })
  yield* takeRead
  yield* v2.load(productId)
  const readAfterResnapshot = yield* takeRead
  yield* Console.log(
    `   handler.snapshot(id) stored v${resnapshotted.version} (schemaVersion ${resnapshotted.schemaVersion}); ` +
      `the next load reads ${span(readAfterResnapshot)}`
  )

  // Only the event store in context: the snapshot policy would silently replay every stream, so it is refused.
  const refusedWithout = yield* CommandHandler.make(SnapshottedProduct).pipe(
    Effect.mapInputContext((_: Context.Context<never>) => Context.make(EventStore.EventStore, store)),
    Effect.match({
      onFailure: (e) => `${e._tag}: ${e.message}`,
      onSuccess: () => "built (unexpected)"
    })
  )
  yield* Console.log(`5. the snapshotted aggregate with no SnapshotStore provided: ${refusedWithout}`)

  const result: SnapshotsResult = {
    productId,
    version: loaded.version,
    price,
    snapshotsWritten,
    readWithSnapshot,
    readWithoutSnapshot,
    readAfterSchemaChange,
    resnapshotted,
    readAfterResnapshot,
    refusedWithout
  }
  return result
})

runIfMain(import.meta, "snapshots", onPostgres(program))
