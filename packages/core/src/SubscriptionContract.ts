/**
 * The behaviour every `Subscription` runtime (an `EventStore`, a `CheckpointStore` and a `FeedNotifier`) must have,
 * as one exported test suite: catch-up then live with no loss or duplicate, filters, start positions, resume, error
 * policy, one owner at a time, reset (also racing a batch, and from another instance), `waitFor` and the plain
 * `stream`.
 *
 * @since 0.1.0
 */
import { assert, layer } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import type * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as CheckpointStore from "./CheckpointStore.js"
import * as Errors from "./Errors.js"
import * as EventStore from "./EventStore.js"
import type * as FeedNotifier from "./FeedNotifier.js"
import type * as NewEvent from "./NewEvent.js"
import * as Position from "./Position.js"
import * as RecordedEvent from "./RecordedEvent.js"
import * as Subscription from "./Subscription.js"

const unique = (prefix: string) => `${prefix}-${crypto.randomUUID()}`

const numbered = (from: number, count: number, type = "Numbered"): Array<NewEvent.NewEvent> =>
  Array.from({ length: count }, (_, i) => ({ type, payload: { n: from + i } }))

const ns = (events: ReadonlyArray<RecordedEvent.RecordedEvent>) =>
  events.map((e) => (e.payload as { readonly n: number }).n)

const range = (from: number, count: number) => Array.from({ length: count }, (_, i) => from + i)

const n = (event: RecordedEvent.RecordedEvent) => (event.payload as { readonly n: number }).n

/** Applies an event to a read model idempotently, as an at-least-once handler must. */
const add = (event: RecordedEvent.RecordedEvent) => (model: ReadonlySet<number>) => new Set(model).add(n(event))
const sorted = (model: ReadonlySet<number>) => [...model].sort((a, b) => a - b)

/** Appends `count` events, one per append, to one stream; returns the position of the last. */
const appendMany = (streamType: string, from: number, count: number, type = "Numbered") =>
  Effect.flatMap(
    EventStore.EventStore,
    (store) =>
      Effect.reduce(range(from, count), Position.start, (_, n) =>
        Effect.map(
          store.append({ streamType, streamId: `s-${n % 3}`, events: numbered(n, 1, type) }),
          (r) => r.position
        ))
  )

const untilTrue = <E>(check: Effect.Effect<boolean, E>, what: string) =>
  check.pipe(
    Effect.filterOrFail((ok) => ok, () => what),
    Effect.retry({ schedule: Schedule.spaced("25 millis"), while: (e) => e === what }),
    Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => `timed out waiting for: ${what}` })
  )

const fast = { pollInterval: "100 millis", lease: "1 second" } as const

/**
 * Registers the contract suite against a Layer providing the three services; built once, each test uses its own
 * stream type and subscription id.
 *
 * @since 0.1.0
 * @category suites
 */
export const suite = <E>(
  name: string,
  runtimeLayer: Layer.Layer<EventStore.EventStore | CheckpointStore.CheckpointStore | FeedNotifier.FeedNotifier, E>
): void =>
  layer(runtimeLayer, { excludeTestServices: true, timeout: "120 seconds" })(`Subscription contract: ${name}`, (it) => {
    it.effect("catches up in pages, goes live, and delivers every event exactly once in feed order", () =>
      Effect.gen(function*() {
        const streamType = unique("Live")
        yield* appendMany(streamType, 1, 23)
        const seen = yield* Ref.make<Array<RecordedEvent.RecordedEvent>>([])
        const id = unique("sub")
        const subscription = yield* Subscription.make({
          ...fast,
          id,
          streamTypes: [streamType],
          batchSize: 5,
          handler: (event) => Ref.update(seen, (all) => [...all, event])
        })
        yield* Effect.forkScoped(subscription.run)
        // Appends race with the catch-up and the switch to live.
        const last = yield* appendMany(streamType, 24, 17)
        yield* subscription.waitFor(last)
        const events = yield* Ref.get(seen)
        assert.deepStrictEqual(ns(events).sort((a, b) => a - b), range(1, 40))
        assert.deepStrictEqual(new Set(events.map((e) => e.eventId)).size, 40)
        for (let i = 1; i < events.length; i++) {
          assert.isTrue(Position.isAfter(RecordedEvent.position(events[i]!), RecordedEvent.position(events[i - 1]!)))
        }
        // waitFor completes at the commit; the phase turns live once a read finds nothing more.
        yield* untilTrue(Effect.map(subscription.status, (s) => s.phase === "live"), "live")
        const status = yield* subscription.status
        assert.strictEqual(status.handled, 40)
        assert.strictEqual(status.lagEvents, 0n)
        assert.strictEqual(status.lagMillis, 0)
        assert.isFalse(Position.isAfter(last, status.position))
        const handled = yield* Metric.value(Metric.tagged(Subscription.eventsHandled, "subscription", id))
        assert.strictEqual(handled.count, 40)
        const lag = yield* Metric.value(Metric.tagged(Subscription.lagEvents, "subscription", id))
        assert.strictEqual(lag.value, 0n)
      }).pipe(Effect.scoped))

    it.effect("filters by event type, stream type and tenant; waitFor passes events the filter drops", () =>
      Effect.gen(function*() {
        const streamType = unique("Filter")
        const tenant = unique("tenant")
        const store = yield* EventStore.EventStore
        const seen = yield* Ref.make<Array<string>>([])
        const subscription = yield* Subscription.make({
          ...fast,
          id: unique("sub"),
          streamTypes: [streamType],
          eventTypes: ["Opened"],
          tenantId: tenant,
          handler: (event) => Ref.update(seen, (all) => [...all, event.streamId])
        })
        yield* Effect.forkScoped(subscription.run)
        yield* store.append({
          tenantId: tenant,
          streamType,
          streamId: "t-1",
          events: [{ type: "Opened", payload: {} }, { type: "Closed", payload: {} }]
        })
        yield* store.append({ streamType, streamId: "other-tenant", events: [{ type: "Opened", payload: {} }] })
        yield* store.append({
          tenantId: tenant,
          streamType: unique("Elsewhere"),
          streamId: "x",
          events: [{ type: "Opened", payload: {} }]
        })
        yield* store.append({
          tenantId: tenant,
          streamType,
          streamId: "t-2",
          events: [{ type: "Opened", payload: {} }]
        })
        const dropped = yield* store.append({ streamType, streamId: "t-3", events: [{ type: "Closed", payload: {} }] })
        yield* subscription.waitFor(dropped.position)
        assert.deepStrictEqual(yield* Ref.get(seen), ["t-1", "t-2"])
      }).pipe(Effect.scoped))

    it.effect("starts from the end, or from a given position, when no checkpoint is stored", () =>
      Effect.gen(function*() {
        const streamType = unique("Start")
        const third = yield* appendMany(streamType, 1, 3)
        // End means "after what the feed shows now": wait until it shows the third event (a transaction open
        // elsewhere on the server can hide it for a moment).
        const store = yield* EventStore.EventStore
        yield* untilTrue(Effect.map(store.headPosition, (head) => !Position.isAfter(third, head)), "feed")
        const collect = (startFrom: Subscription.StartFrom) =>
          Effect.gen(function*() {
            const seen = yield* Ref.make<Array<RecordedEvent.RecordedEvent>>([])
            const subscription = yield* Subscription.make({
              ...fast,
              id: unique("sub"),
              streamTypes: [streamType],
              startFrom,
              handler: (event) => Ref.update(seen, (all) => [...all, event])
            })
            yield* Effect.forkScoped(subscription.run)
            yield* untilTrue(Effect.map(subscription.status, (s) => s.phase === "live"), "live")
            return { subscription, seen }
          })
        const fromEnd = yield* collect(Subscription.StartFrom.End())
        const fromThird = yield* collect(Subscription.StartFrom.At({ position: third }))
        const fromStart = yield* collect(Subscription.StartFrom.Beginning())
        const last = yield* appendMany(streamType, 4, 2)
        for (const s of [fromEnd, fromThird, fromStart]) yield* s.subscription.waitFor(last)
        assert.deepStrictEqual(ns(yield* Ref.get(fromEnd.seen)), [4, 5])
        assert.deepStrictEqual(ns(yield* Ref.get(fromThird.seen)), [4, 5])
        assert.deepStrictEqual(ns(yield* Ref.get(fromStart.seen)), [1, 2, 3, 4, 5])
      }).pipe(Effect.scoped))

    it.effect("a new instance resumes from the stored checkpoint, whatever its start position says", () =>
      Effect.gen(function*() {
        const streamType = unique("Resume")
        const id = unique("sub")
        const seen = yield* Ref.make<Array<number>>([])
        const options = {
          ...fast,
          id,
          streamTypes: [streamType],
          startFrom: Subscription.StartFrom.End(),
          handler: (event: RecordedEvent.RecordedEvent) =>
            Ref.update(seen, (all) => [...all, (event.payload as { readonly n: number }).n])
        }
        const first = yield* Subscription.make(options)
        const fiber = yield* Effect.fork(first.run)
        yield* untilTrue(Effect.map(first.status, (s) => s.phase === "live"), "live")
        yield* first.waitFor(yield* appendMany(streamType, 1, 4))
        yield* Fiber.interrupt(fiber)
        assert.strictEqual((yield* first.status).phase, "idle")
        const whileDown = yield* appendMany(streamType, 5, 3)
        const second = yield* Subscription.make(options)
        yield* Effect.forkScoped(second.run)
        yield* second.waitFor(whileDown)
        assert.deepStrictEqual(yield* Ref.get(seen), range(1, 7))
      }).pipe(Effect.scoped))

    it.effect("a failing handler is retried under the schedule, then parked, and the subscription continues", () =>
      Effect.gen(function*() {
        const streamType = unique("Park")
        const id = unique("sub")
        const tries = yield* Ref.make(0)
        const seen = yield* Ref.make<Array<number>>([])
        const subscription = yield* Subscription.make({
          ...fast,
          id,
          streamTypes: [streamType],
          errorPolicy: { retry: Schedule.recurs(2), onExhausted: "park" },
          handler: (event) => {
            const n = (event.payload as { readonly n: number }).n
            return n === 3
              ? Effect.zipRight(Ref.update(tries, (t) => t + 1), Effect.fail(`poison ${n}`))
              : Ref.update(seen, (all) => [...all, n])
          }
        })
        yield* Effect.forkScoped(subscription.run)
        const last = yield* appendMany(streamType, 1, 5)
        yield* subscription.waitFor(last)
        assert.deepStrictEqual(yield* Ref.get(seen), [1, 2, 4, 5])
        assert.strictEqual(yield* Ref.get(tries), 3)
        const parked = yield* Effect.flatMap(CheckpointStore.CheckpointStore, (s) => s.deadLetters(id))
        assert.strictEqual(parked.length, 1)
        assert.strictEqual(parked[0]!.attempts, 3)
        assert.include(parked[0]!.error, "poison 3")
        const status = yield* subscription.status
        assert.strictEqual(status.parked, 1)
        assert.strictEqual(status.handled, 4)
        assert.include(Option.getOrElse(status.lastError, () => ""), "poison 3")
      }).pipe(Effect.scoped))

    it.effect("a handler that recovers within the retries is not parked", () =>
      Effect.gen(function*() {
        const streamType = unique("Flaky")
        const id = unique("sub")
        const failures = yield* Ref.make(2)
        const seen = yield* Ref.make<Array<number>>([])
        const subscription = yield* Subscription.make({
          ...fast,
          id,
          streamTypes: [streamType],
          errorPolicy: { retry: Schedule.recurs(3), onExhausted: "park" },
          handler: (event) =>
            Effect.flatMap(Ref.getAndUpdate(failures, (f) => f - 1), (left) =>
              left > 0
                ? Effect.fail("flaky")
                : Ref.update(seen, (all) => [...all, (event.payload as { readonly n: number }).n]))
        })
        yield* Effect.forkScoped(subscription.run)
        yield* subscription.waitFor(yield* appendMany(streamType, 1, 3))
        assert.deepStrictEqual(yield* Ref.get(seen), [1, 2, 3])
        assert.deepStrictEqual(yield* Effect.flatMap(CheckpointStore.CheckpointStore, (s) => s.deadLetters(id)), [])
      }).pipe(Effect.scoped))

    it.effect("with the stop policy the run fails with SubscriptionStopped and the checkpoint stays before the event", () =>
      Effect.gen(function*() {
        const streamType = unique("Stop")
        const id = unique("sub")
        const seen = yield* Ref.make<Array<number>>([])
        const positions = yield* Effect.forEach(range(1, 4), (n) => appendMany(streamType, n, 1))
        const subscription = yield* Subscription.make({
          ...fast,
          id,
          streamTypes: [streamType],
          errorPolicy: { retry: Schedule.recurs(1), onExhausted: "stop" },
          handler: (event) => {
            const n = (event.payload as { readonly n: number }).n
            return n === 3 ? Effect.die(new Error("bug in handler")) : Ref.update(seen, (all) => [...all, n])
          }
        })
        const exit = yield* Effect.exit(subscription.run)
        assert.isTrue(Exit.isFailure(exit))
        const error = yield* Effect.flip(exit)
        assert.strictEqual(error._tag, "SubscriptionStopped")
        if (error._tag === "SubscriptionStopped") {
          assert.strictEqual(error.attempts, 2)
          assert.deepStrictEqual(error.position, positions[2])
          assert.include(error.reason, "bug in handler")
        }
        assert.deepStrictEqual(yield* Ref.get(seen), [1, 2])
        const stored = Option.getOrThrow(yield* Effect.flatMap(CheckpointStore.CheckpointStore, (s) => s.get(id)))
        assert.deepStrictEqual(stored.position, positions[1])
        assert.strictEqual(stored.status, "failed")
        assert.isTrue(Option.isNone(stored.owner))
        assert.strictEqual((yield* subscription.status).phase, "failed")
      }))

    it.effect("an id, owner or filter with a NUL or a lone surrogate fails run at once with InvalidInput", () =>
      Effect.gen(function*() {
        const checkpoints = yield* CheckpointStore.CheckpointStore
        const cases: ReadonlyArray<Partial<Subscription.Options<never, never>>> = [
          { id: "sub-\u0000" },
          { id: "sub-\ud800" },
          { id: "sub-\udbff" },
          { id: `sub-${"中".repeat(1000)}` },
          { owner: "owner-\u0000" },
          { owner: "owner-\udc00" },
          { eventTypes: ["Paid\u0000"] },
          { streamTypes: ["Order\ud800"] },
          { tenantId: "tenant\u0000" }
        ]
        for (const [i, bad] of cases.entries()) {
          const id = unique("sub")
          // Before the fix these retried a StoreError forever (PostgreSQL) or ran (memory): hence the timeout.
          const error = yield* Subscription.run({ ...fast, id, handler: () => Effect.void, ...bad }).pipe(
            Effect.flip,
            Effect.timeoutFail({ duration: "3 seconds", onTimeout: () => `case ${i} did not fail at once` })
          )
          assert.strictEqual(error._tag, "InvalidInput", `case ${i}`)
          assert.isTrue(Option.isNone(yield* checkpoints.get(id)), `case ${i} claimed a checkpoint`)
        }
      }))

    it.effect("two instances of one subscription: one owns it, the other takes over when it stops, no event twice", () =>
      Effect.gen(function*() {
        const streamType = unique("Owner")
        const id = unique("sub")
        const seen = yield* Ref.make<Array<[string, number]>>([])
        const make = (owner: string) =>
          Subscription.make({
            ...fast,
            // Long enough that a loaded machine never lets b take over while a runs: a gives it back when it stops.
            lease: "5 seconds",
            id,
            owner,
            streamTypes: [streamType],
            handler: (event) =>
              Ref.update(
                seen,
                (all) => [...all, [owner, (event.payload as { readonly n: number }).n] as [string, number]]
              )
          })
        const a = yield* make("a")
        const b = yield* make("b")
        const fiberA = yield* Effect.fork(a.run)
        yield* untilTrue(Effect.map(a.status, (s) => s.phase === "live"), "a live")
        yield* Effect.forkScoped(b.run)
        yield* untilTrue(Effect.map(b.status, (s) => s.phase === "standby"), "b standby")
        yield* a.waitFor(yield* appendMany(streamType, 1, 5))
        yield* Fiber.interrupt(fiberA)
        yield* b.waitFor(yield* appendMany(streamType, 6, 5))
        const all = yield* Ref.get(seen)
        assert.deepStrictEqual(all.map(([, n]) => n), range(1, 10))
        assert.deepStrictEqual(all.filter(([o]) => o === "a").map(([, n]) => n), range(1, 5))
        assert.strictEqual((yield* b.status).phase, "live")
      }).pipe(Effect.scoped))

    it.effect("reset runs the hook and replays from the beginning while running", () =>
      Effect.gen(function*() {
        const streamType = unique("Reset")
        const model = yield* Ref.make<Array<number>>([])
        const subscription = yield* Subscription.make({
          ...fast,
          id: unique("sub"),
          streamTypes: [streamType],
          onReset: Ref.set(model, []),
          handler: (event) => Ref.update(model, (all) => [...all, (event.payload as { readonly n: number }).n])
        })
        yield* Effect.forkScoped(subscription.run)
        const last = yield* appendMany(streamType, 1, 4)
        yield* subscription.waitFor(last)
        yield* subscription.reset
        yield* untilTrue(Effect.map(Ref.get(model), (m) => m.length === 4), "replayed")
        yield* subscription.waitFor(last)
        assert.deepStrictEqual(yield* Ref.get(model), range(1, 4))
      }).pipe(Effect.scoped))

    it.effect("reset, then waitFor: returns only once the rebuilt read model holds every event", () =>
      Effect.gen(function*() {
        const streamType = unique("Rebuild")
        const model = yield* Ref.make<ReadonlySet<number>>(new Set())
        const subscription = yield* Subscription.make({
          ...fast,
          id: unique("sub"),
          streamTypes: [streamType],
          batchSize: 4,
          onReset: Ref.set(model, new Set()),
          // A slow handler, so a waitFor that does not wait for the replay finds the model part-built.
          handler: (event) => Effect.zipRight(Effect.sleep("5 millis"), Ref.update(model, add(event)))
        })
        yield* Effect.forkScoped(subscription.run)
        const last = yield* appendMany(streamType, 1, 20)
        yield* subscription.waitFor(last)
        assert.deepStrictEqual(sorted(yield* Ref.get(model)), range(1, 20))
        yield* subscription.reset
        yield* subscription.waitFor(last)
        assert.deepStrictEqual(sorted(yield* Ref.get(model)), range(1, 20))
      }).pipe(Effect.scoped))

    it.effect("reset while a batch is handled: that batch cannot move the rebuilt checkpoint past its events", () =>
      Effect.gen(function*() {
        const streamType = unique("RebuildRace")
        const model = yield* Ref.make<ReadonlySet<number>>(new Set())
        const gate = yield* Deferred.make<void>()
        const subscription = yield* Subscription.make({
          ...fast,
          id: unique("sub"),
          streamTypes: [streamType],
          batchSize: 4,
          onReset: Ref.set(model, new Set()),
          // The first event is applied, then its batch waits for the gate: the reset clears the model under it.
          handler: (event) =>
            Effect.zipRight(Ref.update(model, add(event)), n(event) === 1 ? Deferred.await(gate) : Effect.void)
        })
        const last = yield* appendMany(streamType, 1, 20)
        yield* Effect.forkScoped(subscription.run)
        yield* untilTrue(Effect.map(Ref.get(model), (m) => m.has(1)), "first event applied")
        // Waiting before the reset must also cover the replay: the in-flight batch began before the rebuild.
        const waiting = yield* Effect.fork(subscription.waitFor(last))
        yield* subscription.reset
        yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(waiting)
        assert.deepStrictEqual(sorted(yield* Ref.get(model)), range(1, 20))
      }).pipe(Effect.scoped))

    it.effect("waitFor reads the stored checkpoint: after another instance's reset it waits for the owner's replay", () =>
      Effect.gen(function*() {
        const streamType = unique("RebuildElsewhere")
        const id = unique("sub")
        const model = yield* Ref.make<ReadonlySet<number>>(new Set())
        const options = {
          ...fast,
          id,
          streamTypes: [streamType],
          batchSize: 4,
          onReset: Ref.set(model, new Set<number>()),
          handler: (event: RecordedEvent.RecordedEvent) =>
            Effect.zipRight(Effect.sleep("5 millis"), Ref.update(model, add(event)))
        }
        const last = yield* appendMany(streamType, 1, 20)
        // This instance ran once and stopped: in this process it has seen the checkpoint reach `last`.
        const earlier = yield* Subscription.make(options)
        const earlierRun = yield* Effect.fork(earlier.run)
        yield* earlier.waitFor(last)
        yield* Fiber.interrupt(earlierRun)
        // Another process owns the subscription now, and a third (an operator's rebuild) resets it.
        const owner = yield* Subscription.make(options)
        yield* Effect.forkScoped(owner.run)
        yield* untilTrue(Effect.map(owner.status, (s) => s.phase === "live"), "owner live")
        const operator = yield* Subscription.make(options)
        yield* operator.reset
        yield* earlier.waitFor(last)
        assert.deepStrictEqual(sorted(yield* Ref.get(model)), range(1, 20))
        yield* operator.waitFor(last)
        // A result that wrote nothing is reached at once; a result carrying a position is waited for.
        yield* owner.waitFor(Option.none())
        yield* owner.waitFor({ position: Option.some(last) })
      }).pipe(Effect.scoped))

    it.effect("read your writes: waitFor takes append and handle results, and Position.latest of several", () =>
      Effect.gen(function*() {
        const streamType = unique("Ryw")
        const store = yield* EventStore.EventStore
        const seen = yield* Ref.make<ReadonlySet<string>>(new Set())
        const subscription = yield* Subscription.make({
          ...fast,
          id: unique("sub"),
          streamTypes: [streamType],
          batchSize: 2,
          handler: (event) =>
            Effect.zipRight(Effect.sleep("5 millis"), Ref.update(seen, (s) => new Set(s).add(event.eventId)))
        })
        yield* Effect.forkScoped(subscription.run)
        const a = yield* store.append({ streamType, streamId: "a", events: numbered(1, 3) })
        const b = yield* store.append({ streamType, streamId: "b", events: numbered(4, 3) })
        // One request's writes, in any order, with a command that wrote nothing among them (None).
        yield* subscription.waitFor(Position.latest([b, { position: Option.none() }, a]))
        const handled = yield* Ref.get(seen)
        assert.isTrue([...a.eventIds, ...b.eventIds].every((eventId) => handled.has(eventId)))
        const c = yield* store.append({ streamType, streamId: "c", events: numbered(7, 3) })
        yield* subscription.waitFor({ position: Option.some(c.position) })
        const after = yield* Ref.get(seen)
        assert.isTrue(c.eventIds.every((eventId) => after.has(eventId)))
      }).pipe(Effect.scoped))

    it.effect("stream: catch-up then live as a plain Stream, each event once", () =>
      Effect.gen(function*() {
        const streamType = unique("Stream")
        yield* appendMany(streamType, 1, 6)
        const fiber = yield* Subscription.stream({
          streamTypes: [streamType],
          batchSize: 4,
          pollInterval: "100 millis"
        })
          .pipe(Stream.take(10), Stream.runCollect, Effect.fork)
        yield* appendMany(streamType, 7, 4)
        const events = Chunk.toReadonlyArray(yield* Fiber.join(fiber))
        assert.deepStrictEqual(ns(events), range(1, 10))
      }))

    it.effect("retries a retryable store failure and stops, typed, on one that retrying cannot help", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const streamType = unique("Failing")
        const last = yield* appendMany(streamType, 1, 5)
        // A feed that fails the first reads, as a store does while its connection is down or its table is gone.
        const failingFeed = (failures: number, retryable: boolean) => {
          let left = failures
          return EventStore.EventStore.of({
            ...store,
            readAll: (options) =>
              left-- > 0
                ? Effect.fail(new Errors.StoreError({ operation: "readAll", reason: "injected", retryable }))
                : store.readAll(options)
          })
        }
        const seen = yield* Ref.make(0)
        const transient = yield* Subscription.make({
          ...fast,
          id: unique("sub"),
          streamTypes: [streamType],
          storeRetry: Schedule.spaced("10 millis"),
          handler: () => Ref.update(seen, (n) => n + 1)
        }).pipe(Effect.provideService(EventStore.EventStore, failingFeed(3, true)))
        const running = yield* Effect.forkScoped(transient.run)
        yield* transient.waitFor(last)
        assert.strictEqual(yield* Ref.get(seen), 5)
        yield* Fiber.interrupt(running)

        const fatal = yield* Subscription.make({
          ...fast,
          id: unique("sub"),
          streamTypes: [streamType],
          storeRetry: Schedule.spaced("10 millis"),
          handler: () => Effect.void
        }).pipe(Effect.provideService(EventStore.EventStore, failingFeed(1_000, false)))
        const error = yield* fatal.run.pipe(Effect.flip, Effect.timeout("10 seconds"))
        assert.strictEqual(error._tag, "StoreError")
        assert.strictEqual((yield* fatal.status).phase, "failed")
      }).pipe(Effect.scoped))
  })
