/**
 * The behaviour every `EventStore` implementation must have, as one exported test suite. Run it against a Layer:
 * `EventStoreContract.suite("memory", EventStore.layerMemory)`.
 *
 * @since 0.1.0
 */
import { assert, layer } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as EventId from "./EventId.js"
import * as EventStore from "./EventStore.js"
import * as ExpectedVersion from "./ExpectedVersion.js"
import * as FeedNotifier from "./FeedNotifier.js"
import type * as NewEvent from "./NewEvent.js"
import * as Position from "./Position.js"
import * as RecordedEvent from "./RecordedEvent.js"
import * as Subscription from "./Subscription.js"

const unique = (prefix: string) => `${prefix}-${crypto.randomUUID()}`

const ev = (type: string, payload: unknown = { n: 1 }, extra: Partial<NewEvent.NewEvent> = {}): NewEvent.NewEvent => ({
  type,
  payload,
  ...extra
})

const numbered = (count: number, type = "Numbered") => Array.from({ length: count }, (_, i) => ev(type, { i: i + 1 }))

/**
 * The feed of these stream types once it shows `count` events. A store may show committed events a moment later
 * (PostgreSQL hides them while an older transaction anywhere on the server is open); it never reorders them.
 */
const feedShowing = (store: EventStore.EventStore["Type"], streamTypes: ReadonlyArray<string>, count: number) =>
  store.readAll({ streamTypes, limit: 10_000 }).pipe(
    Effect.filterOrFail((events) => events.length >= count, () => "not yet" as const),
    Effect.retry({ while: (e) => e === "not yet", schedule: Schedule.spaced("20 millis") }),
    Effect.timeout("20 seconds")
  )

/** Every page of the feed for these options, read `limit` events at a time from the start, each after the last. */
const readPaged = (store: EventStore.EventStore["Type"], options: EventStore.ReadAllOptions, limit: number) =>
  Effect.gen(function*() {
    const events: Array<RecordedEvent.RecordedEvent> = []
    let after = Position.start
    for (;;) {
      const page = yield* store.readAll({ ...options, after, limit })
      events.push(...page)
      if (page.length < limit) return events
      after = RecordedEvent.position(page[page.length - 1]!)
    }
  })

/** In feed order, each event once. */
const assertFeedOrder = (events: ReadonlyArray<RecordedEvent.RecordedEvent>, label: string) => {
  assert.strictEqual(new Set(events.map((e) => e.eventId)).size, events.length, `${label}: an event repeated`)
  for (let i = 1; i < events.length; i++) {
    assert.isTrue(
      Position.isAfter(RecordedEvent.position(events[i]!), RecordedEvent.position(events[i - 1]!)),
      `${label}: not in feed order at ${i}`
    )
  }
}

/**
 * Registers the contract suite against an EventStore Layer. The Layer is built once for the suite; every test uses
 * its own stream type, so tests never see each other's events.
 *
 * @since 0.1.0
 * @category suites
 */
export const suite = <E>(name: string, storeLayer: Layer.Layer<EventStore.EventStore, E>): void =>
  layer(storeLayer, { excludeTestServices: true, timeout: "120 seconds" })(`EventStore contract: ${name}`, (it) => {
    it.effect("NoStream: creates a stream once, then conflicts with the actual version", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const stream = { streamType: unique("Order"), streamId: "o-1" }
        const first = yield* store.append({ ...stream, events: numbered(2), expectedVersion: ExpectedVersion.NoStream })
        assert.strictEqual(first.version, 2)
        assert.isFalse(first.idempotent)
        const error = yield* Effect.flip(
          store.append({ ...stream, events: numbered(1), expectedVersion: ExpectedVersion.NoStream })
        )
        assert.strictEqual(error._tag, "ConcurrencyConflict")
        if (error._tag === "ConcurrencyConflict") {
          assert.strictEqual(error.actual, 2)
          assert.deepStrictEqual(error.expected, ExpectedVersion.NoStream)
          assert.strictEqual(error.streamId, "o-1")
          assert.strictEqual(error.streamType, stream.streamType)
        }
        assert.strictEqual(yield* store.streamVersion(stream), 2)
      }))

    it.effect("Exact: succeeds at the right version and conflicts at any other", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const stream = { streamType: unique("Order"), streamId: "o-1" }
        const created = yield* store.append({
          ...stream,
          events: numbered(1),
          expectedVersion: ExpectedVersion.Exact(0)
        })
        assert.strictEqual(created.version, 1)
        const next = yield* store.append({ ...stream, events: numbered(3), expectedVersion: ExpectedVersion.Exact(1) })
        assert.strictEqual(next.version, 4)
        for (const wrong of [0, 1, 3, 5, 100]) {
          const error = yield* Effect.flip(
            store.append({ ...stream, events: numbered(1), expectedVersion: ExpectedVersion.Exact(wrong) })
          )
          assert.deepStrictEqual(
            error._tag === "ConcurrencyConflict" ? [error.actual, error.expected] : error,
            [4, ExpectedVersion.Exact(wrong)]
          )
        }
        const missing = yield* Effect.flip(
          store.append({ ...stream, streamId: "o-2", events: numbered(1), expectedVersion: ExpectedVersion.Exact(3) })
        )
        assert.deepStrictEqual(missing._tag === "ConcurrencyConflict" ? missing.actual : missing, 0)
        assert.strictEqual(yield* store.streamVersion(stream), 4)
      }))

    it.effect("StreamExists: conflicts on a missing stream, appends to an existing one", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const stream = { streamType: unique("Order"), streamId: "o-1" }
        const error = yield* Effect.flip(
          store.append({ ...stream, events: numbered(1), expectedVersion: ExpectedVersion.StreamExists })
        )
        assert.deepStrictEqual(error._tag === "ConcurrencyConflict" ? error.actual : error, 0)
        assert.strictEqual(yield* store.streamVersion(stream), 0)
        yield* store.append({ ...stream, events: numbered(1) })
        const ok = yield* store.append({
          ...stream,
          events: numbered(2),
          expectedVersion: ExpectedVersion.StreamExists
        })
        assert.strictEqual(ok.version, 3)
      }))

    it.effect("Any: appends whether or not the stream exists", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const stream = { streamType: unique("Order"), streamId: "o-1" }
        assert.strictEqual(
          (yield* store.append({ ...stream, events: numbered(2), expectedVersion: ExpectedVersion.Any })).version,
          2
        )
        assert.strictEqual((yield* store.append({ ...stream, events: numbered(1) })).version, 3)
        const events = yield* store.readStream(stream)
        assert.deepStrictEqual(events.map((e) => e.version), [1, 2, 3])
      }))

    it.effect("32 fibers appending at the same expected version: exactly 1 succeeds, 31 conflict", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const stream = { streamType: unique("Race"), streamId: "r-1" }
        yield* store.append({ ...stream, events: numbered(1) })
        const results = yield* Effect.forEach(
          Array.from({ length: 32 }, (_, i) => i),
          (i) =>
            Effect.either(
              store.append({
                ...stream,
                events: [ev("Raced", { fiber: i })],
                expectedVersion: ExpectedVersion.Exact(1)
              })
            ),
          { concurrency: "unbounded" }
        )
        const wins = results.filter(Either.isRight)
        const conflicts = results.filter((r) => Either.isLeft(r) && r.left._tag === "ConcurrencyConflict")
        assert.strictEqual(wins.length, 1)
        assert.strictEqual(conflicts.length, 31)
        for (const c of conflicts) {
          if (Either.isLeft(c) && c.left._tag === "ConcurrencyConflict") assert.strictEqual(c.left.actual, 2)
        }
        const events = yield* store.readStream(stream)
        assert.deepStrictEqual(events.map((e) => e.version), [1, 2])
      }))

    it.effect("32 fibers appending with Any to one stream: every event lands once, versions are gapless", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const stream = { streamType: unique("Race"), streamId: "r-any" }
        yield* Effect.forEach(
          Array.from({ length: 32 }, (_, i) => i),
          (i) =>
            store.append({ ...stream, events: [ev("Raced", { fiber: i }), ev("Raced", { fiber: i, second: true })] }),
          { concurrency: "unbounded" }
        )
        const events = yield* store.readStream(stream)
        assert.deepStrictEqual(events.map((e) => e.version), Array.from({ length: 64 }, (_, i) => i + 1))
        // A two-event append is never interleaved with another.
        for (let i = 0; i < 64; i += 2) {
          assert.deepStrictEqual(events[i + 1]!.payload, { ...(events[i]!.payload as object), second: true })
        }
      }))

    it.effect(
      "concurrent appends keep their own outcomes: a conflict, a duplicate, a repeat and two successes never fail each other",
      () =>
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const streamType = unique("Mixed")
          const taken = crypto.randomUUID()
          const repeated = crypto.randomUUID()
          yield* store.append({ streamType, streamId: "holder", events: [ev("Held", { n: 1 }, { eventId: taken })] })
          yield* store.append({ streamType, streamId: "repeat", events: [ev("Once", { n: 1 }, { eventId: repeated })] })
          yield* store.append({ streamType, streamId: "behind", events: numbered(2) })
          // Rounds of the same mix at once, so that a store that coalesces concurrent appends (PostgreSQL's group
          // commit) sends them together.
          for (let round = 0; round < 5; round++) {
            const outcomes = yield* Effect.all(
              [
                store.append({ streamType, streamId: `fresh-${round}-a`, events: numbered(2) }),
                store.append({
                  streamType,
                  streamId: "behind",
                  events: numbered(1),
                  expectedVersion: ExpectedVersion.Exact(1)
                }),
                store.append({
                  streamType,
                  streamId: `dup-${round}`,
                  events: [ev("Copy", { n: 2 }, { eventId: taken })]
                }),
                store.append({ streamType, streamId: "repeat", events: [ev("Once", { n: 1 }, { eventId: repeated })] }),
                store.append({
                  streamType,
                  streamId: `fresh-${round}-b`,
                  events: numbered(1),
                  expectedVersion: ExpectedVersion.NoStream
                })
              ].map(Effect.either),
              { concurrency: "unbounded" }
            )
            const [fresh, behind, dup, repeat, freshB] = outcomes
            assert.isTrue(Either.isRight(fresh!) && fresh.right.version === 2, "the first fresh append succeeds")
            assert.isTrue(
              Either.isLeft(behind!) && behind.left._tag === "ConcurrencyConflict",
              "the stale one conflicts"
            )
            if (Either.isLeft(behind!) && behind.left._tag === "ConcurrencyConflict") {
              assert.strictEqual(behind.left.actual, 2)
            }
            assert.isTrue(Either.isLeft(dup!) && dup.left._tag === "DuplicateEvent", "the reused id is a duplicate")
            assert.isTrue(Either.isRight(repeat!) && repeat.right.idempotent, "the repeat is idempotent")
            assert.isTrue(Either.isRight(freshB!) && freshB.right.version === 1, "the second fresh append succeeds")
            assert.deepStrictEqual(
              (yield* store.readStream({ streamType, streamId: `fresh-${round}-a` })).map((e) => e.version),
              [1, 2]
            )
            const dupWritten = yield* Effect.either(store.readStream({ streamType, streamId: `dup-${round}` }))
            assert.isTrue(Either.isLeft(dupWritten) && dupWritten.left._tag === "StreamNotFound", "nothing of the dup")
          }
          assert.strictEqual((yield* store.readStream({ streamType, streamId: "behind" })).length, 2)
          assert.strictEqual((yield* store.readStream({ streamType, streamId: "repeat" })).length, 1)
        })
    )

    it.effect("appends whose callers are interrupted at any point: each is stored whole or not at all, the rest go on", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const streamType = unique("Interrupted")
        const appends = 48
        const streams = 6
        // Three events per append, to six shared streams; every other caller gives up after 0 to 3 ms.
        const fibers = yield* Effect.forEach(Array.from({ length: appends }, (_, i) => i), (i) =>
          Effect.fork(
            store.append({
              streamType,
              streamId: `s${i % streams}`,
              events: [0, 1, 2].map((k) => ev("Numbered", { i, k }))
            })
          ))
        for (let i = 1; i < appends; i += 2) {
          yield* Effect.sleep(`${i % 4} millis`)
          yield* Fiber.interrupt(fibers[i]!)
        }
        const exits = yield* Effect.forEach(fibers, Fiber.await)
        exits.forEach((exit, i) => {
          if (i % 2 === 0) assert.isTrue(Exit.isSuccess(exit), `append ${i} was not interrupted, and failed`)
        })
        const stored = new Set<number>()
        for (let s = 0; s < streams; s++) {
          const events = yield* store.readStream({ streamType, streamId: `s${s}` })
          assert.deepStrictEqual(events.map((e) => e.version), Array.from({ length: events.length }, (_, v) => v + 1))
          // Whole appends only, never interleaved: runs of k = 0, 1, 2 of one append.
          assert.strictEqual(events.length % 3, 0)
          for (let e = 0; e < events.length; e += 3) {
            const [a, b, c] = [events[e]!, events[e + 1]!, events[e + 2]!].map((x) =>
              x.payload as { i: number; k: number }
            )
            assert.deepStrictEqual([a!.k, b!.k, c!.k], [0, 1, 2])
            assert.isTrue(a!.i === b!.i && b!.i === c!.i, `stream s${s} interleaves appends ${a!.i}, ${b!.i}, ${c!.i}`)
            stored.add(a!.i)
          }
        }
        // Every append that succeeded is there; one that reported interruption may be there too (its outcome came
        // too late for its caller), but only whole.
        exits.forEach((exit, i) => {
          if (Exit.isSuccess(exit)) assert.isTrue(stored.has(i), `append ${i} succeeded but is missing`)
        })
        // The store goes on: a later append to every stream succeeds.
        for (let s = 0; s < streams; s++) {
          yield* store.append({ streamType, streamId: `s${s}`, events: [ev("After", {})] })
        }
      }))

    it.effect("an append retried with the same event ids is idempotent", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const stream = { streamType: unique("Idem"), streamId: "i-1" }
        const ids = [crypto.randomUUID(), crypto.randomUUID()]
        const events = ids.map((eventId, i) => ev("Paid", { amount: i + 10 }, { eventId }))
        const first = yield* store.append({ ...stream, events, expectedVersion: ExpectedVersion.NoStream })
        const again = yield* store.append({ ...stream, events, expectedVersion: ExpectedVersion.NoStream })
        const anyAgain = yield* store.append({ ...stream, events })
        assert.isFalse(first.idempotent)
        assert.isTrue(again.idempotent)
        assert.isTrue(anyAgain.idempotent)
        assert.strictEqual(again.version, 2)
        assert.deepStrictEqual(again.position, first.position)
        assert.deepStrictEqual(again.eventIds, ids)
        assert.strictEqual((yield* store.readStream(stream)).length, 2)
        assert.isTrue(yield* store.eventExists(ids[0]!))
        assert.isFalse(yield* store.eventExists(crypto.randomUUID()))
      }))

    it.effect("the ids it generates are time-ordered (UUIDv7), increasing in the order they were made", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const stream = { streamType: unique("Ids"), streamId: "v7" }
        const before = Date.now()
        const first = yield* store.append({ ...stream, events: numbered(3) })
        const second = yield* store.append({ ...stream, events: numbered(2) })
        const after = Date.now()
        const events = yield* store.readStream(stream)
        const ids = events.map((e) => e.eventId)
        assert.deepStrictEqual(ids, [...first.eventIds, ...second.eventIds])
        for (const id of ids) {
          assert.isTrue(EventId.isTimeOrdered(id), `not a UUIDv7: ${id}`)
          const ms = Option.getOrThrow(EventId.timestampMillis(id))
          // The generator may run a few milliseconds ahead of the clock when a millisecond's counter runs out.
          assert.isTrue(ms >= before && ms <= after + 1000, `${id}: ${ms} outside ${before}..${after}`)
        }
        for (let i = 1; i < ids.length; i++) assert.isTrue(ids[i - 1]! < ids[i]!, `not increasing at ${i}`)
      }))

    it.effect("concurrent retries of one append with the same event ids write it once", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const stream = { streamType: unique("Idem"), streamId: "i-race" }
        const events = [ev("Paid", { amount: 1 }, { eventId: crypto.randomUUID() })]
        const results = yield* Effect.forEach(
          Array.from({ length: 8 }, () => 0),
          () => store.append({ ...stream, events, expectedVersion: ExpectedVersion.NoStream }),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(results.filter((r) => !r.idempotent).length, 1)
        assert.isTrue(results.every((r) => r.version === 1))
        assert.strictEqual((yield* store.readStream(stream)).length, 1)
      }))

    it.effect("a reused event id with other content, or in another stream, is a DuplicateEvent", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const stream = { streamType: unique("Dup"), streamId: "d-1" }
        const eventId = crypto.randomUUID()
        yield* store.append({ ...stream, events: [ev("Paid", { amount: 1 }, { eventId })] })
        const otherPayload = yield* Effect.flip(
          store.append({ ...stream, events: [ev("Paid", { amount: 2 }, { eventId })] })
        )
        assert.strictEqual(otherPayload._tag, "DuplicateEvent")
        if (otherPayload._tag === "DuplicateEvent") assert.strictEqual(otherPayload.eventId, eventId)
        const otherStream = yield* Effect.flip(
          store.append({ ...stream, streamId: "d-2", events: [ev("Paid", { amount: 1 }, { eventId })] })
        )
        assert.strictEqual(otherStream._tag, "DuplicateEvent")
        assert.strictEqual(yield* store.streamVersion(stream), 1)
        assert.strictEqual(yield* store.streamVersion({ ...stream, streamId: "d-2" }), 0)
      }))

    it.effect("a multi-event append is all-or-nothing", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const stream = { streamType: unique("Atomic"), streamId: "a-1" }
        const taken = crypto.randomUUID()
        yield* store.append({
          streamType: stream.streamType,
          streamId: "elsewhere",
          events: [ev("X", {}, { eventId: taken })]
        })
        yield* store.append({ ...stream, events: numbered(1) })
        const freshId = crypto.randomUUID()
        const error = yield* Effect.flip(
          store.append({
            ...stream,
            events: [ev("Y", { a: 1 }, { eventId: freshId }), ev("Y", { a: 2 }), ev("X", {}, { eventId: taken })]
          })
        )
        assert.strictEqual(error._tag, "DuplicateEvent")
        assert.strictEqual(yield* store.streamVersion(stream), 1)
        assert.isFalse(yield* store.eventExists(freshId))
        const badPayload = yield* Effect.flip(
          store.append({ ...stream, events: [ev("Y", { a: 1 }), ev("Y", { big: 1n })] })
        )
        assert.strictEqual(badPayload._tag, "InvalidInput")
        assert.strictEqual((yield* store.readStream(stream)).length, 1)
      }))

    it.effect("reads a stream forward and backward, from a version, with a limit", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const stream = { streamType: unique("Read"), streamId: "r-1" }
        yield* store.append({ ...stream, events: numbered(10) })
        const versions = (events: ReadonlyArray<RecordedEvent.RecordedEvent>) => events.map((e) => e.version)
        assert.deepStrictEqual(versions(yield* store.readStream(stream)), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
        assert.deepStrictEqual(versions(yield* store.readStream({ ...stream, fromVersion: 8 })), [8, 9, 10])
        assert.deepStrictEqual(versions(yield* store.readStream({ ...stream, fromVersion: 3, limit: 2 })), [3, 4])
        assert.deepStrictEqual(versions(yield* store.readStream({ ...stream, fromVersion: 11 })), [])
        assert.deepStrictEqual(
          versions(yield* store.readStream({ ...stream, direction: "backward" })),
          [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]
        )
        assert.deepStrictEqual(versions(yield* store.readStream({ ...stream, direction: "backward", limit: 3 })), [
          10,
          9,
          8
        ])
        assert.deepStrictEqual(
          versions(yield* store.readStream({ ...stream, direction: "backward", fromVersion: 4, limit: 10 })),
          [4, 3, 2, 1]
        )
        assert.deepStrictEqual(
          versions(yield* store.readStream({ ...stream, direction: "backward", fromVersion: 50, limit: 1 })),
          [10]
        )
        const first = (yield* store.readStream({ ...stream, limit: 1 }))[0]!
        assert.strictEqual(first.streamType, stream.streamType)
        assert.strictEqual(first.streamId, "r-1")
        assert.strictEqual(first.type, "Numbered")
        assert.deepStrictEqual(first.payload, { i: 1 })
        assert.strictEqual(first.schemaVersion, 1)
        assert.instanceOf(first.recordedAt, Date)
        assert.strictEqual(typeof first.globalPosition, "bigint")
        const missing = yield* Effect.flip(store.readStream({ ...stream, streamId: "nope" }))
        assert.strictEqual(missing._tag, "StreamNotFound")
      }))

    it.effect("payloads and metadata round-trip, including arrays, strings and unicode", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const stream = { streamType: unique("Trip"), streamId: "t-1" }
        const payloads: Array<unknown> = [
          [1, 2, { nested: ["x"] }],
          "a plain string",
          42,
          null,
          { text: "quotes ' \" \\ and ünïcødé 🚀", snake_case: 1, camelCase: { inner_key: true }, empty: {} }
        ]
        const metadata = {
          correlationId: "corr-1",
          causationId: "cause-1",
          actorId: "user-7",
          tenantId: "tenant-a",
          headers: { "x-trace": "abc" }
        }
        yield* store.append({ ...stream, events: payloads.map((p) => ev("Any", p, { metadata, schemaVersion: 3 })) })
        const read = yield* store.readStream(stream)
        assert.deepStrictEqual(read.map((e) => e.payload), payloads)
        assert.deepStrictEqual(read[0]!.metadata, metadata)
        assert.strictEqual(read[0]!.schemaVersion, 3)
      }))

    it.effect("stream ids with quotes and SQL metacharacters are stored verbatim", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const streamType = unique("Weird'; DROP TABLE events; --")
        const ids = [
          "o'brien",
          "a\"b",
          "x; DROP TABLE streams; --",
          "$1",
          "%_\\",
          "ünï 🚀",
          "550e8400-e29b-41d4-a716-446655440000"
        ]
        for (const streamId of ids) yield* store.append({ streamType, streamId, events: numbered(1) })
        for (const streamId of ids) {
          const read = yield* store.readStream({ streamType, streamId })
          assert.strictEqual(read.length, 1)
          assert.strictEqual(read[0]!.streamId, streamId)
          assert.strictEqual(read[0]!.streamType, streamType)
        }
        const feed = yield* feedShowing(store, [streamType], ids.length)
        assert.deepStrictEqual(feed.map((e) => e.streamId), ids)
      }))

    it.effect("the global feed is in append order and pages by position", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const streamType = unique("Feed")
        for (let i = 0; i < 5; i++) {
          yield* store.append({ streamType, streamId: `s-${i % 2}`, events: [ev("Tick", { i }), ev("Tock", { i })] })
        }
        const feed = yield* feedShowing(store, [streamType], 10)
        assert.deepStrictEqual(feed.map((e) => [e.type, (e.payload as { i: number }).i]), [
          ["Tick", 0],
          ["Tock", 0],
          ["Tick", 1],
          ["Tock", 1],
          ["Tick", 2],
          ["Tock", 2],
          ["Tick", 3],
          ["Tock", 3],
          ["Tick", 4],
          ["Tock", 4]
        ])
        for (let i = 1; i < feed.length; i++) {
          assert.isTrue(Position.isAfter(RecordedEvent.position(feed[i]!), RecordedEvent.position(feed[i - 1]!)))
        }
        const page1 = yield* store.readAll({ streamTypes: [streamType], limit: 4 })
        const page2 = yield* store.readAll({
          streamTypes: [streamType],
          limit: 4,
          after: RecordedEvent.position(page1[3]!)
        })
        const page3 = yield* store.readAll({
          streamTypes: [streamType],
          limit: 4,
          after: RecordedEvent.position(page2[3]!)
        })
        assert.deepStrictEqual([...page1, ...page2, ...page3].map((e) => e.eventId), feed.map((e) => e.eventId))
        assert.strictEqual(page3.length, 2)
        const head = yield* store.headPosition
        assert.isFalse(Position.isAfter(RecordedEvent.position(feed[feed.length - 1]!), head))
        const streamed = yield* Stream.runCollect(EventStore.streamAll({ streamTypes: [streamType], pageSize: 3 }))
        assert.deepStrictEqual(Chunk.toReadonlyArray(streamed).map((e) => e.eventId), feed.map((e) => e.eventId))
      }))

    it.effect("the global feed filters by event type, stream type and tenant", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const typeA = unique("FilterA")
        const typeB = unique("FilterB")
        const tenant = unique("tenant")
        yield* store.append({ streamType: typeA, streamId: "1", events: [ev("Opened"), ev("Closed")] })
        yield* store.append({
          tenantId: tenant,
          streamType: typeB,
          streamId: "1",
          events: [ev("Opened"), ev("Renamed")]
        })
        yield* store.append({ tenantId: tenant, streamType: typeA, streamId: "2", events: [ev("Opened")] })
        const both = [typeA, typeB]
        const all = yield* feedShowing(store, both, 5)
        assert.strictEqual(all.length, 5)
        const opened = yield* store.readAll({ streamTypes: both, eventTypes: ["Opened"] })
        assert.deepStrictEqual(opened.map((e) => [e.streamType, e.streamId]), [[typeA, "1"], [typeB, "1"], [
          typeA,
          "2"
        ]])
        const onlyB = yield* store.readAll({ streamTypes: [typeB] })
        assert.deepStrictEqual(onlyB.map((e) => e.type), ["Opened", "Renamed"])
        const tenantEvents = yield* store.readAll({ tenantId: tenant })
        assert.deepStrictEqual(tenantEvents.map((e) => [e.streamType, e.type]), [
          [typeB, "Opened"],
          [typeB, "Renamed"],
          [
            typeA,
            "Opened"
          ]
        ])
        assert.deepStrictEqual(tenantEvents.map((e) => [e.tenantId, e.metadata.tenantId]), [
          [tenant, tenant],
          [tenant, tenant],
          [tenant, tenant]
        ])
        const several = yield* store.readAll({ streamTypes: both, eventTypes: ["Closed", "Renamed"] })
        assert.deepStrictEqual(several.map((e) => e.type), ["Closed", "Renamed"])
      }))

    it.effect("type and stream-type filters page with `after`: in feed order, none skipped or repeated, tenant kept", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const typeA = unique("PagedA")
        const typeB = unique("PagedB")
        const tenant = unique("tenant")
        const [opened, renamed, closed] = [unique("Opened"), unique("Renamed"), unique("Closed")]
        const kinds = [opened, renamed, opened, closed, renamed]
        // Interleaved in the feed: both stream types, both tenants, appends of one to three events.
        for (let i = 0; i < 12; i++) {
          yield* store.append({
            ...(i % 3 === 1 ? { tenantId: tenant } : {}),
            streamType: i % 2 === 0 ? typeA : typeB,
            streamId: `s-${i % 4}`,
            events: Array.from({ length: 1 + (i % 3) }, (_, k) => ev(kinds[(i + k) % kinds.length]!, { i, k }))
          })
        }
        const all = yield* feedShowing(store, [typeA, typeB], 24)
        assert.strictEqual(all.length, 24)
        // More than 16 types too: a store may read few types another way than many.
        const many = [...Array.from({ length: 18 }, (_, i) => unique(`Absent${i}`)), closed]
        const cases: ReadonlyArray<
          readonly [string, EventStore.ReadAllOptions, (e: RecordedEvent.RecordedEvent) => boolean]
        > = [
          ["one event type", { eventTypes: [renamed] }, (e) => e.type === renamed],
          ["two event types", { eventTypes: [opened, closed] }, (e) => e.type === opened || e.type === closed],
          ["repeated event types", { eventTypes: [closed, closed, renamed] }, (e) => e.type !== opened],
          ["many event types", { eventTypes: many }, (e) => e.type === closed],
          ["stream type", { streamTypes: [typeB] }, (e) => e.streamType === typeB],
          [
            "event and stream types",
            { eventTypes: [opened, renamed], streamTypes: [typeA] },
            (e) => e.streamType === typeA && e.type !== closed
          ],
          [
            "event types in a tenant",
            { tenantId: tenant, eventTypes: [opened, closed] },
            (e) => e.tenantId === tenant && e.type !== renamed
          ],
          [
            "stream types in a tenant",
            { tenantId: tenant, streamTypes: [typeA, typeB] },
            (e) => e.tenantId === tenant
          ]
        ]
        for (const [label, options, keep] of cases) {
          const expected = all.filter(keep).map((e) => e.eventId)
          assert.isAbove(expected.length, 1, label)
          for (const limit of [1, 2, 5]) {
            const read = yield* readPaged(store, options, limit)
            assertFeedOrder(read, `${label}, pages of ${limit}`)
            assert.deepStrictEqual(read.map((e) => e.eventId), expected, `${label}, pages of ${limit}`)
          }
        }
        assert.deepStrictEqual(yield* store.readAll({ eventTypes: [] }), [])
        assert.deepStrictEqual(yield* store.readAll({ streamTypes: [] }), [])
        assert.deepStrictEqual(yield* store.readAll({ eventTypes: [opened], streamTypes: [] }), [])
      }))

    it.effect("since: only events recorded at or after the time, in feed order, paging with `after`", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const streamType = unique("Since")
        const tenant = unique("tenant")
        const [early, middle, late] = [unique("Early"), unique("Middle"), unique("Late")]
        // Appends well apart in time, so that the times before and from `since` differ.
        yield* store.append({ streamType, streamId: "a", events: [ev(early), ev(early)] })
        yield* Effect.sleep("20 millis")
        yield* store.append({ tenantId: tenant, streamType, streamId: "b", events: [ev(middle), ev(middle)] })
        yield* store.append({ streamType, streamId: "a", events: [ev(middle)] })
        yield* Effect.sleep("20 millis")
        yield* store.append({ tenantId: tenant, streamType, streamId: "b", events: [ev(late), ev(middle)] })
        const all = yield* feedShowing(store, [streamType], 7)
        assert.strictEqual(all.length, 7)
        // Times as the store recorded them, so that no clock other than the store's counts.
        const since = all[2]!.recordedAt
        assert.isBelow(all[1]!.recordedAt.getTime(), since.getTime())
        const fromSince = (e: RecordedEvent.RecordedEvent) => e.recordedAt.getTime() >= since.getTime()
        const cases: ReadonlyArray<
          readonly [string, EventStore.ReadAllOptions, (e: RecordedEvent.RecordedEvent) => boolean]
        > = [
          ["since", { streamTypes: [streamType], since }, fromSince],
          ["since, one event type", { eventTypes: [late, early], since }, (e) => e.type === late],
          ["since, in a tenant", { tenantId: tenant, since }, (e) => fromSince(e) && e.tenantId === tenant],
          [
            "since, stream and event type",
            { streamTypes: [streamType], eventTypes: [middle], since },
            (e) => fromSince(e) && e.type === middle
          ],
          ["since the first event", { streamTypes: [streamType], since: all[0]!.recordedAt }, () => true]
        ]
        for (const [label, options, keep] of cases) {
          const expected = all.filter(keep).map((e) => e.eventId)
          for (const limit of [1, 2, 1000]) {
            const read = yield* readPaged(store, options, limit)
            assertFeedOrder(read, `${label}, pages of ${limit}`)
            assert.deepStrictEqual(read.map((e) => e.eventId), expected, `${label}, pages of ${limit}`)
          }
        }
        assert.deepStrictEqual(
          (yield* store.readAll({ streamTypes: [streamType], since })).map((e) => e.type),
          [middle, middle, middle, late, middle]
        )
        const later = new Date(all[all.length - 1]!.recordedAt.getTime() + 1)
        assert.deepStrictEqual(yield* store.readAll({ streamTypes: [streamType], since: later }), [])
        for (const since of [new Date(Number.NaN), new Date(-8.64e15)]) {
          const invalid = yield* Effect.flip(store.readAll({ streamTypes: [streamType], since }))
          assert.strictEqual(invalid._tag, "InvalidInput", String(since.getTime()))
        }
      }))

    it.effect("bad input fails with InvalidInput and writes nothing", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const streamType = unique("Bad")
        const cases: ReadonlyArray<EventStore.AppendOptions> = [
          { streamType, streamId: "b", events: [] },
          { streamType, streamId: "", events: numbered(1) },
          { streamType: "", streamId: "b", events: numbered(1) },
          { streamType, streamId: "b", events: [ev("")] },
          { streamType, streamId: "b", events: [ev("T", { n: 1n })] },
          { streamType, streamId: "b", events: [{ type: "T", payload: undefined }] },
          { streamType, streamId: "b", events: [ev("T", {}, { eventId: "not-a-uuid" })] },
          { streamType, streamId: "b", events: [ev("T", { big: "x".repeat(9 * 1024 * 1024) })] },
          { streamType, streamId: "b", events: [ev("T", { nul: "a\u0000b" })] },
          { streamType, streamId: "b", events: numbered(1), expectedVersion: ExpectedVersion.Exact(-1) }
        ]
        for (const [i, options] of cases.entries()) {
          const error = yield* Effect.flip(store.append(options))
          assert.strictEqual(error._tag, "InvalidInput", `case ${i}`)
        }
        const id = crypto.randomUUID()
        const twice = yield* Effect.flip(
          store.append({
            streamType,
            streamId: "b",
            events: [ev("T", {}, { eventId: id }), ev("T", {}, { eventId: id })]
          })
        )
        assert.strictEqual(twice._tag, "InvalidInput")
        assert.strictEqual((yield* Effect.flip(store.readStream({ streamType, streamId: "" })))._tag, "InvalidInput")
        assert.strictEqual(
          (yield* Effect.flip(store.readStream({ streamType, streamId: "b", limit: 0 })))._tag,
          "InvalidInput"
        )
        assert.strictEqual((yield* Effect.flip(store.readAll({ limit: -1 })))._tag, "InvalidInput")
        assert.strictEqual(yield* store.streamVersion({ streamType, streamId: "b" }), 0)
        assert.strictEqual((yield* store.readAll({ streamTypes: [streamType] })).length, 0)
      }))

    it.effect("concurrent writers sharing streams: a live feed reader gets every event once, each stream in order", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const streamType = unique("Shared")
        const streams = 5
        const writers = 8
        const appendsPerWriter = 60
        // Read the feed live while the writers run, as a subscription does.
        const reader = yield* Subscription.stream({ streamTypes: [streamType], pollInterval: "10 millis" }).pipe(
          Stream.takeUntil(() => false),
          Stream.runForEach((event) => Effect.sync(() => delivered.push(event))),
          Effect.provide(FeedNotifier.layerPolling),
          Effect.fork
        )
        const delivered: Array<RecordedEvent.RecordedEvent> = []
        let written = 0
        yield* Effect.forEach(
          Array.from({ length: writers }, (_, w) => w),
          (w) =>
            Effect.forEach(Array.from({ length: appendsPerWriter }, (_, i) => i), (i) => {
              const size = 1 + ((w + i) % 3)
              written += size
              // Any: appends to the same stream interleave freely, so the store alone decides the order.
              return store.append({
                streamType,
                streamId: `s${(w * 7 + i) % streams}`,
                events: Array.from({ length: size }, (_, k) => ev("Wrote", { w, i, k }))
              })
            }, { discard: true }),
          { concurrency: "unbounded", discard: true }
        )
        yield* Effect.sync(() => delivered.length).pipe(
          Effect.repeat({ until: (n) => n >= written, schedule: Schedule.spaced("10 millis") }),
          Effect.timeout("60 seconds")
        )
        yield* Fiber.interrupt(reader)
        assert.strictEqual(delivered.length, written)
        assert.strictEqual(new Set(delivered.map((e) => e.eventId)).size, written)
        for (let s = 0; s < streams; s++) {
          const versions = delivered.filter((e) => e.streamId === `s${s}`).map((e) => e.version)
          assert.deepStrictEqual(versions, Array.from({ length: versions.length }, (_, i) => i + 1), `stream s${s}`)
        }
      }))
  })
