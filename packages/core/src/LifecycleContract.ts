/**
 * The behaviour of stream lifecycle operations on every store, as one exported test suite: archive, tombstone, soft
 * delete, truncation and expiry, through `EventStore` and `CommandHandler`; a projection running live through all of
 * them never stalls and never applies an event twice; concurrent appends against an archive or a tombstone each land
 * before it or fail typed.
 *
 * @since 0.4.0
 */
import { assert, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import type * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Aggregate from "./Aggregate.js"
import type * as CheckpointStore from "./CheckpointStore.js"
import * as CommandHandler from "./CommandHandler.js"
import * as Decider from "./Decider.js"
import * as EventStore from "./EventStore.js"
import * as ExpectedVersion from "./ExpectedVersion.js"
import type * as FeedNotifier from "./FeedNotifier.js"
import type * as SnapshotStore from "./SnapshotStore.js"
import * as StreamLifecycle from "./StreamLifecycle.js"
import * as Subscription from "./Subscription.js"

const Added = Schema.TaggedStruct("Added", { n: Schema.Number })
const decider = Decider.make<number, number, typeof Added.Type>({
  initialState: 0,
  evolve: (total, e) => total + e.n,
  decide: (n) => Effect.succeed([Added.make({ n })])
})
const counter = (name: string, every?: number) =>
  Aggregate.make({
    name,
    decider,
    events: Added,
    state: Schema.Number,
    ...(every === undefined ? {} : { snapshot: { every, schemaVersion: 1 } })
  })

const unique = (prefix: string) => `${prefix}-${crypto.randomUUID()}`
const event = (n: number) => ({ type: "Added", payload: { n } })
const fast = { pollInterval: "20 millis", lease: "2 seconds", batchSize: 50 } as const

type Services =
  | EventStore.EventStore
  | SnapshotStore.SnapshotStore
  | CheckpointStore.CheckpointStore
  | FeedNotifier.FeedNotifier
  | StreamLifecycle.StreamLifecycle

/** The feed of one stream type until `count` events show (a PostgreSQL feed trails commits by open transactions). */
const feedOf = (streamType: string, count: number, options: EventStore.ReadAllOptions = {}) =>
  Effect.flatMap(
    EventStore.EventStore,
    (store) =>
      store.readAll({ ...options, streamTypes: [streamType], limit: 10_000 }).pipe(
        Effect.filterOrFail((events) => events.length >= count, () => "not yet" as const),
        Effect.retry({ while: (e) => e === "not yet", schedule: Schedule.spaced("20 millis") }),
        Effect.timeout("20 seconds")
      )
  )

/**
 * Registers the suite against a stack that provides the stores and a `StreamLifecycle` allowed to delete events
 * (on PostgreSQL, the owner's); built once, each test uses its own stream types.
 *
 * @since 0.4.0
 * @category suites
 */
export const suite = <E>(name: string, stack: Layer.Layer<Services, E>): void =>
  layer(stack, { excludeTestServices: true, timeout: "120 seconds" })(`Lifecycle contract: ${name}`, (it) => {
    it.effect("an archived stream refuses appends, leaves default reads and stream filters, and comes back", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const lifecycle = yield* StreamLifecycle.StreamLifecycle
        const streamType = unique("Counter")
        const stream = { streamType, streamId: "a" }
        yield* store.append({ ...stream, events: [event(1), event(2)] })
        yield* store.append({ streamType, streamId: "b", events: [event(5)] })
        yield* lifecycle.archive(stream)
        yield* lifecycle.archive(stream) // idempotent
        assert.deepStrictEqual(
          Option.map(yield* lifecycle.info(stream), (i) => [i.state, i.version, i.firstVersion] as const),
          Option.some(["archived", 2, 1] as const)
        )
        const refused = yield* Effect.flip(store.append({ ...stream, events: [event(3)] }))
        assert.strictEqual(refused._tag, "StreamArchived")
        const read = yield* Effect.flip(store.readStream(stream))
        assert.strictEqual(read._tag, "StreamArchived")
        assert.deepStrictEqual(
          (yield* store.readStream({ ...stream, includeArchived: true })).map((e) => e.version),
          [1, 2]
        )
        // Feed reads by stream type leave it out; the unfiltered log keeps it.
        const filtered = yield* feedOf(streamType, 1)
        assert.deepStrictEqual(filtered.map((e) => e.streamId), ["b"])
        const withArchived = yield* feedOf(streamType, 3, { includeArchived: true })
        assert.deepStrictEqual(withArchived.map((e) => e.streamId), ["a", "a", "b"])
        const handler = yield* CommandHandler.make(counter(streamType))
        const handled = yield* Effect.flip(handler.handle("a", 1))
        assert.strictEqual(handled._tag, "StreamArchived")
        yield* lifecycle.unarchive(stream)
        assert.deepStrictEqual((yield* handler.handle("a", 4)).version, 3)
        assert.deepStrictEqual(yield* handler.load("a"), { state: 7, version: 3 })
        assert.strictEqual(
          (yield* Effect.flip(lifecycle.archive({ streamType, streamId: "none" })))._tag,
          "StreamNotFound"
        )
      }))

    it.effect("a tombstoned stream refuses appends for good, says it is deleted, and stays in the log", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const lifecycle = yield* StreamLifecycle.StreamLifecycle
        const streamType = unique("Counter")
        const stream = { streamType, streamId: "t" }
        yield* store.append({ ...stream, events: [event(1)] })
        yield* lifecycle.delete(stream)
        yield* lifecycle.delete(stream) // idempotent
        for (const expectedVersion of [ExpectedVersion.Any, ExpectedVersion.NoStream, ExpectedVersion.Exact(1)]) {
          const refused = yield* Effect.flip(store.append({ ...stream, expectedVersion, events: [event(2)] }))
          assert.strictEqual(refused._tag, "StreamDeleted", ExpectedVersion.format(expectedVersion))
        }
        assert.strictEqual((yield* Effect.flip(store.readStream(stream)))._tag, "StreamDeleted")
        assert.strictEqual((yield* Effect.flip(lifecycle.archive(stream)))._tag, "StreamDeleted")
        const handler = yield* CommandHandler.make(counter(streamType))
        assert.strictEqual((yield* Effect.flip(handler.handle("t", 1)))._tag, "StreamDeleted")
        assert.strictEqual((yield* Effect.flip(handler.load("t")))._tag, "StreamDeleted")
        assert.deepStrictEqual((yield* feedOf(streamType, 1)).map((e) => e.version), [1])
        assert.deepStrictEqual(
          Option.map(yield* lifecycle.info(stream), (i) => i.state),
          Option.some("deleted" as const)
        )
      }))

    it.effect("a soft-deleted stream reads as missing until recreated; its versions then continue", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const lifecycle = yield* StreamLifecycle.StreamLifecycle
        const streamType = unique("Counter")
        const stream = { streamType, streamId: "s" }
        yield* store.append({ ...stream, events: [event(1), event(2), event(3)] })
        yield* lifecycle.delete(stream, { recreate: true })
        assert.strictEqual((yield* Effect.flip(store.readStream(stream)))._tag, "StreamNotFound")
        assert.strictEqual(yield* store.streamVersion(stream), 0)
        const exists = yield* Effect.flip(
          store.append({ ...stream, expectedVersion: ExpectedVersion.StreamExists, events: [event(9)] })
        )
        assert.strictEqual(exists._tag, "ConcurrencyConflict")
        const handler = yield* CommandHandler.make(counter(streamType))
        assert.deepStrictEqual(yield* handler.load("s"), { state: 0, version: 0 })
        const recreated = yield* handler.handle("s", 10)
        assert.strictEqual(recreated.version, 4)
        assert.deepStrictEqual((yield* store.readStream(stream)).map((e) => e.version), [4])
        assert.deepStrictEqual(yield* handler.load("s"), { state: 10, version: 4 })
        assert.deepStrictEqual((yield* handler.handle("s", 1)).version, 5)
        assert.deepStrictEqual(
          Option.map(yield* lifecycle.info(stream), (i) => [i.state, i.version, i.firstVersion] as const),
          Option.some(["active", 5, 4] as const)
        )
        // A stream soft-deleted before any new append recreates with NoStream too.
        const other = { streamType, streamId: "s2" }
        yield* store.append({ ...other, events: [event(1)] })
        yield* lifecycle.delete(other, { recreate: true })
        const again = yield* store.append({ ...other, expectedVersion: ExpectedVersion.NoStream, events: [event(2)] })
        assert.strictEqual(again.version, 2)
      }))

    it.effect("truncation deletes the events before a version; loads then need a snapshot that covers them", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const lifecycle = yield* StreamLifecycle.StreamLifecycle
        const streamType = unique("Counter")
        const snapshotted = yield* CommandHandler.make(counter(streamType, 4))
        const plain = yield* CommandHandler.make(counter(streamType))
        for (let i = 1; i <= 6; i++) yield* snapshotted.handle("c", i) // a snapshot at version 4
        assert.strictEqual(yield* lifecycle.truncateBefore({ streamType, streamId: "c" }, 4), 3)
        assert.strictEqual(yield* lifecycle.truncateBefore({ streamType, streamId: "c" }, 2), 0) // never backwards
        assert.deepStrictEqual(
          (yield* store.readStream({ streamType, streamId: "c" })).map((e) => e.version),
          [4, 5, 6]
        )
        assert.deepStrictEqual((yield* feedOf(streamType, 3)).map((e) => e.version), [4, 5, 6])
        assert.deepStrictEqual(yield* snapshotted.load("c"), { state: 21, version: 6 })
        const truncated = yield* Effect.flip(plain.load("c"))
        assert.deepStrictEqual([truncated._tag, (truncated as { firstVersion?: number }).firstVersion], [
          "StreamTruncated",
          4
        ])
        // Appends go on as before.
        assert.strictEqual((yield* snapshotted.handle("c", 7)).version, 7)
        const invalid = yield* Effect.flip(lifecycle.truncateBefore({ streamType, streamId: "c" }, 0))
        assert.strictEqual(invalid._tag, "InvalidInput")
        const past = yield* Effect.flip(lifecycle.truncateBefore({ streamType, streamId: "c" }, 9))
        assert.strictEqual(past._tag, "InvalidInput")
        assert.strictEqual(
          (yield* Effect.flip(lifecycle.truncateBefore({ streamType, streamId: "none" }, 1)))._tag,
          "StreamNotFound"
        )
      }))

    it.effect("expiry deletes the old events of the chosen stream types only", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const lifecycle = yield* StreamLifecycle.StreamLifecycle
        const logs = unique("Log")
        const kept = unique("Kept")
        yield* store.append({ streamType: logs, streamId: "1", events: [event(1), event(2)] })
        yield* store.append({ streamType: kept, streamId: "1", events: [event(1)] })
        // A second's margin on both sides: the first events are 2 s old, the last ones far younger than 1 s.
        yield* Effect.sleep("2 seconds")
        yield* store.append({ streamType: logs, streamId: "1", events: [event(3)] })
        yield* store.append({ streamType: logs, streamId: "2", events: [event(4)] })
        assert.strictEqual(yield* lifecycle.expire({ streamTypes: [logs, unique("None")], maxAge: "1 second" }), 2)
        assert.deepStrictEqual(
          (yield* store.readStream({ streamType: logs, streamId: "1" })).map((e) => e.version),
          [3]
        )
        assert.deepStrictEqual((yield* feedOf(logs, 2)).map((e) => e.payload), [{ n: 3 }, { n: 4 }])
        assert.strictEqual((yield* store.readStream({ streamType: kept, streamId: "1" })).length, 1)
        const handler = yield* CommandHandler.make(counter(logs))
        assert.strictEqual((yield* Effect.flip(handler.load("1")))._tag, "StreamTruncated")
        const invalid = yield* Effect.flip(lifecycle.expire({ streamTypes: [], maxAge: "1 second" }))
        assert.strictEqual(invalid._tag, "InvalidInput")
      }))

    it.scoped("a live projection through archive, tombstone and truncation never stalls or applies twice", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const lifecycle = yield* StreamLifecycle.StreamLifecycle
        const streamType = unique("Counter")
        const seen = yield* Ref.make<ReadonlyArray<string>>([])
        const subscription = yield* Subscription.make({
          ...fast,
          id: unique("live"),
          streamTypes: [streamType],
          handler: (e) => Ref.update(seen, (all) => [...all, e.eventId])
        })
        yield* Effect.forkScoped(subscription.run)
        const ids = ["archived", "deleted", "truncated", "plain"]
        let last = yield* store.append({ streamType, streamId: "plain", events: [event(0)] })
        for (let round = 1; round <= 6; round++) {
          for (const id of ids) {
            const appended = yield* Effect.exit(store.append({ streamType, streamId: id, events: [event(round)] }))
            if (Exit.isSuccess(appended)) last = appended.value
          }
          if (round === 2) yield* lifecycle.archive({ streamType, streamId: "archived" })
          if (round === 3) yield* lifecycle.delete({ streamType, streamId: "deleted" })
          if (round === 4) yield* lifecycle.truncateBefore({ streamType, streamId: "truncated" }, 3)
        }
        yield* subscription.waitFor(last.position)
        const handled = yield* Ref.get(seen)
        assert.strictEqual(new Set(handled).size, handled.length, "no event applied twice")
        const plain = yield* store.readStream({ streamType, streamId: "plain" })
        for (const e of plain) assert.include(handled, e.eventId)
        const truncated = yield* store.readStream({ streamType, streamId: "truncated" })
        for (const e of truncated.filter((e) => e.version > 4)) assert.include(handled, e.eventId)
        const status = yield* subscription.status
        assert.include(["catching-up", "live"], status.phase)
      }))

    it.effect("concurrent appends against an archive or a tombstone each land before it or fail typed", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const lifecycle = yield* StreamLifecycle.StreamLifecycle
        for (const change of ["archive", "delete"] as const) {
          const stream = { streamType: unique("Counter"), streamId: "hot" }
          yield* store.append({ ...stream, events: [event(0)] })
          const results = yield* Effect.all(
            [
              ...Array.from({ length: 24 }, (_, i) =>
                Effect.zipRight(
                  Effect.sleep(`${i % 6} millis`),
                  Effect.either(store.append({ ...stream, events: [event(i)] }))
                )),
              // The version right after the change: nothing may land after it.
              Effect.zipRight(
                Effect.sleep("2 millis"),
                Effect.zipRight(
                  change === "archive" ? lifecycle.archive(stream) : lifecycle.delete(stream),
                  lifecycle.info(stream)
                )
              )
            ],
            { concurrency: "unbounded" }
          )
          const appends = results.slice(0, 24) as ReadonlyArray<
            Either.Either<EventStore.AppendResult, { readonly _tag: string }>
          >
          const landed = appends.flatMap((r) => r._tag === "Right" ? [r.right.version] : [])
          const refused = appends.flatMap((r) => r._tag === "Left" ? [r.left._tag] : [])
          const expected = change === "archive" ? "StreamArchived" : "StreamDeleted"
          assert.deepStrictEqual([...new Set(refused)], refused.length === 0 ? [] : [expected])
          // What landed is exactly versions 2..k, and the stream stopped there.
          assert.deepStrictEqual(landed.sort((a, b) => a - b), Array.from({ length: landed.length }, (_, i) => i + 2))
          const info = yield* lifecycle.info(stream)
          assert.deepStrictEqual(Option.map(info, (i) => i.version), Option.some(landed.length + 1))
          const atChange = results[24] as Option.Option<StreamLifecycle.StreamInfo>
          assert.deepStrictEqual(Option.map(atChange, (i) => i.version), Option.map(info, (i) => i.version))
          const stored = yield* store.readStream({ ...stream, includeArchived: true }).pipe(
            Effect.catchTag("StreamDeleted", () => Effect.succeed(null))
          )
          if (stored !== null) assert.strictEqual(stored.length, landed.length + 1)
        }
      }))
  })
