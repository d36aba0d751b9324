/**
 * What telemetry guarantees on every store, as one exported test suite: a command is traced as `CommandHandler.handle`
 * over `EventStore.append` with the documented attributes; with a tracer that exports spans installed, an append
 * records its span in the events' metadata (`traceparent`), keeps a caller's, leaves it out where it would not fit,
 * and stays idempotent across traces; without one it records nothing; a subscription's `Subscription.handle` span and
 * the relay's `OutboxRelay.publish` span link to the append's span; the append, command, snapshot, subscription and
 * outbox metrics move.
 *
 * The tracer here is a recording one built on Effect's `Tracer.make`, so the suite needs no OpenTelemetry SDK.
 *
 * `TelemetryContract.suite("memory", MemoryEventfold.layer({ outbox: true }))`
 *
 * @since 0.4.0
 */
import { assert, layer } from "@effect/vitest"
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import type * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Tracer from "effect/Tracer"
import * as Aggregate from "./Aggregate.js"
import type * as CheckpointStore from "./CheckpointStore.js"
import * as CommandHandler from "./CommandHandler.js"
import * as Decider from "./Decider.js"
import * as EventMetadata from "./EventMetadata.js"
import * as EventStore from "./EventStore.js"
import * as EventValidation from "./EventValidation.js"
import * as ExpectedVersion from "./ExpectedVersion.js"
import type * as FeedNotifier from "./FeedNotifier.js"
import type * as Outbox from "./Outbox.js"
import * as OutboxPublisher from "./OutboxPublisher.js"
import * as OutboxRelay from "./OutboxRelay.js"
import type * as RecordedEvent from "./RecordedEvent.js"
import * as SnapshotStore from "./SnapshotStore.js"
import * as Subscription from "./Subscription.js"

type Services =
  | EventStore.EventStore
  | SnapshotStore.SnapshotStore
  | CheckpointStore.CheckpointStore
  | FeedNotifier.FeedNotifier
  | Outbox.Outbox

class Added extends Schema.TaggedClass<Added>()("Added", { amount: Schema.Number }) {}

const counter = (name: string) =>
  Aggregate.make({
    name,
    events: Schema.Union(Added),
    state: Schema.Number,
    snapshot: { every: 1, schemaVersion: 1 },
    decider: Decider.make({
      initialState: 0,
      evolve: (total: number, e: Added) => total + e.amount,
      decide: (amount: number) => Effect.succeed(amount === 0 ? [] : [new Added({ amount })])
    })
  })

const unique = (prefix: string) => `${prefix}-${crypto.randomUUID()}`

const randomHex = (bytes: number) => {
  const out = new Uint8Array(bytes)
  crypto.getRandomValues(out)
  return Array.from(out, (b) => b.toString(16).padStart(2, "0")).join("")
}

/** A span as the recording tracer keeps it. */
class RecordedSpan implements Tracer.Span {
  readonly _tag = "Span"
  readonly spanId = randomHex(8)
  readonly traceId: string
  readonly sampled = true
  readonly attributes = new Map<string, unknown>()
  readonly links: Array<Tracer.SpanLink>
  status: Tracer.SpanStatus
  constructor(
    readonly name: string,
    readonly parent: Option.Option<Tracer.AnySpan>,
    readonly context: Context.Context<never>,
    links: ReadonlyArray<Tracer.SpanLink>,
    startTime: bigint,
    readonly kind: Tracer.SpanKind,
    private readonly ended: Array<RecordedSpan>
  ) {
    this.traceId = Option.isSome(parent) ? parent.value.traceId : randomHex(16)
    this.links = [...links]
    this.status = { _tag: "Started", startTime }
  }
  end(endTime: bigint, exit: Exit.Exit<unknown, unknown>): void {
    this.status = { _tag: "Ended", startTime: this.status.startTime, endTime, exit }
    this.ended.push(this)
  }
  attribute(key: string, value: unknown): void {
    this.attributes.set(key, value)
  }
  event(): void {}
  addLinks(links: ReadonlyArray<Tracer.SpanLink>): void {
    this.links.push(...links)
  }
}

/** A tracer that records every ended span, and exports nothing: to eventfold it is a tracer that listens. */
const recording = () => {
  const spans: Array<RecordedSpan> = []
  const tracer = Tracer.make({
    span: (name, parent, context, links, startTime, kind) =>
      new RecordedSpan(name, parent, context, links, startTime, kind, spans),
    context: (f) => f()
  })
  const find = (name: string, attribute: string, value: unknown): RecordedSpan => {
    const found = spans.find((s) => s.name === name && s.attributes.get(attribute) === value)
    assert.isDefined(found, `a ${name} span with ${attribute} = ${String(value)}; spans: ${spans.map((s) => s.name)}`)
    return found!
  }
  return { spans, traced: Effect.withTracer(tracer), find }
}

const traceparentOf = (span: Tracer.AnySpan) => `00-${span.traceId}-${span.spanId}-01`

const parentOf = (span: RecordedSpan) => Option.getOrUndefined(span.parent)

const count = <Type, In>(metric: Metric.Metric<Type, In, { readonly count: number }>): Effect.Effect<number> =>
  Effect.map(Metric.value(metric), (state) => state.count)

const tagged = <Type, In, Out>(metric: Metric.Metric<Type, In, Out>, tags: Record<string, string>) =>
  Object.entries(tags).reduce((m, [key, value]) => Metric.tagged(m, key, value), metric)

const readOne = (streamType: string, streamId: string) =>
  Effect.flatMap(EventStore.EventStore, (store) => store.readStream({ streamType, streamId })).pipe(
    Effect.map((events): RecordedEvent.RecordedEvent => events[0]!)
  )

/**
 * Runs the telemetry contract against a stack with the outbox on (`MemoryEventfold.layer({ outbox: true })`,
 * `PgEventfold.layer({ outbox: true, ... })`).
 *
 * @since 0.4.0
 * @category tests
 */
export const suite = <E>(name: string, stack: Layer.Layer<Services, E>): void =>
  layer(stack, { excludeTestServices: true, timeout: "120 seconds" })(`Telemetry contract: ${name}`, (it) => {
    it.effect("a command is CommandHandler.handle over EventStore.append, whose span its events record", () =>
      Effect.gen(function*() {
        const { find, traced } = recording()
        const Counter = counter(unique("Counter"))
        const handler = yield* CommandHandler.make(Counter)
        const result = yield* traced(handler.handle("c-1", 5))
        const handle = find("CommandHandler.handle", "streamType", Counter.name)
        const append = find("EventStore.append", "streamType", Counter.name)
        assert.deepStrictEqual(Object.fromEntries(handle.attributes), {
          streamType: Counter.name,
          streamId: "c-1",
          tenantId: "default",
          outcome: "ok",
          attempts: 1,
          version: 1,
          events: 1
        })
        assert.deepStrictEqual(Object.fromEntries(append.attributes), {
          streamType: Counter.name,
          streamId: "c-1",
          events: 1,
          expectedVersion: "NoStream",
          outcome: "ok",
          tenantId: "default",
          version: 1
        })
        assert.strictEqual(parentOf(append)?.spanId, handle.spanId)
        assert.strictEqual(append.kind, "internal")
        // The load read the stream first, inside the command's span.
        const read = find("EventStore.readStream", "streamType", Counter.name)
        assert.strictEqual(parentOf(read)?.spanId, handle.spanId)
        const stored = yield* readOne(Counter.name, "c-1")
        assert.strictEqual(stored.metadata.headers?.[EventMetadata.traceHeader], traceparentOf(append))
        assert.strictEqual(stored.metadata.correlationId !== undefined, true)
        assert.deepStrictEqual(
          Option.map(EventMetadata.appendSpan(stored.metadata), (s) => [s.traceId, s.spanId]),
          Option.some([append.traceId, append.spanId])
        )
        assert.strictEqual(result.version, 1)
      }))

    it.effect("without a tracer that exports spans nothing is recorded; a caller's traceparent is kept", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const streamType = unique("Plain")
        // Effect's built-in tracer is installed and makes spans, but nobody receives them.
        yield* store.append({ streamType, streamId: "a", events: [{ type: "Noted", payload: {} }] }).pipe(
          Effect.withSpan("caller")
        )
        assert.deepStrictEqual((yield* readOne(streamType, "a")).metadata, {})
        const { traced } = recording()
        const theirs = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        yield* traced(store.append({
          streamType,
          streamId: "b",
          events: [{
            type: "Noted",
            payload: {},
            metadata: { actorId: "u-1", headers: { traceparent: theirs, x: "y" } }
          }]
        }))
        assert.deepStrictEqual((yield* readOne(streamType, "b")).metadata, {
          actorId: "u-1",
          headers: { traceparent: theirs, x: "y" }
        })
      }))

    it.effect("an idempotent repeat traced anew is the same append; the header is left out where it would not fit", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const streamType = unique("Repeat")
        const eventId = crypto.randomUUID()
        const first = recording()
        const append = store.append({
          streamType,
          streamId: "r",
          expectedVersion: ExpectedVersion.Any,
          events: [{ eventId, type: "Noted", payload: { n: 1 } }]
        })
        const written = yield* first.traced(append)
        const again = recording()
        const repeated = yield* again.traced(append)
        assert.deepStrictEqual([written.idempotent, repeated.idempotent, repeated.version], [false, true, 1])
        assert.strictEqual(
          again.find("EventStore.append", "streamType", streamType).attributes.get("outcome"),
          "idempotent"
        )
        const stored = yield* readOne(streamType, "r")
        assert.strictEqual(
          stored.metadata.headers?.[EventMetadata.traceHeader],
          traceparentOf(first.find("EventStore.append", "streamType", streamType))
        )
        // Metadata a few bytes under the limit: the append succeeds without the header.
        const filler = "x".repeat(EventValidation.MAX_PAYLOAD_BYTES - 40)
        yield* first.traced(store.append({
          streamType,
          streamId: "big",
          events: [{ type: "Noted", payload: {}, metadata: { headers: { filler } } }]
        }))
        const big = yield* readOne(streamType, "big")
        assert.deepStrictEqual(Object.keys(big.metadata.headers ?? {}), ["filler"])
      }))

    it.effect("a subscription's Subscription.handle span and the relay's OutboxRelay.publish span link to the append", () =>
      Effect.gen(function*() {
        const { find, spans, traced } = recording()
        const Counter = counter(unique("Linked"))
        const handler = yield* CommandHandler.make(Counter)
        const result = yield* traced(handler.handle("l-1", 2))
        const append = find("EventStore.append", "streamType", Counter.name)
        const eventId = result.eventIds[0]!
        const subscription = yield* Subscription.make({
          id: unique("telemetry"),
          streamTypes: [Counter.name],
          pollInterval: "20 millis",
          handler: () => Effect.void
        })
        const running = yield* Effect.forkScoped(traced(subscription.run))
        yield* subscription.waitFor(result)
        const handle = find("Subscription.handle", "eventId", eventId)
        assert.strictEqual(handle.kind, "consumer")
        assert.deepStrictEqual(
          handle.links.map((l) => [l.span.traceId, l.span.spanId]),
          [[append.traceId, append.spanId]]
        )
        assert.deepStrictEqual(
          [
            handle.attributes.get("subscription"),
            handle.attributes.get("streamType"),
            handle.attributes.get("version")
          ],
          [subscription.id, Counter.name, 1]
        )
        // A page is a trace of its own, not a child of the never-ending run.
        const page = parentOf(handle)
        assert.strictEqual(
          page !== undefined && page._tag === "Span" ? page.name : undefined,
          "Subscription.handlePage"
        )
        assert.isTrue(page !== undefined && page._tag === "Span" && Option.isNone(page.parent))
        yield* Fiber.interrupt(running)

        // The relay publishes every tenant's rows: other tests' rows may come first.
        const memory = yield* OutboxPublisher.makeMemory
        for (let batch = 0; batch < 1000; batch++) {
          const published = yield* memory.published
          if (published.some((m) => m.eventId === eventId)) break
          const claimed = yield* traced(OutboxRelay.processBatch({ batchSize: 500 })).pipe(
            Effect.provideService(OutboxPublisher.OutboxPublisher, memory.publisher)
          )
          if (claimed === 0) yield* Effect.sleep("20 millis")
        }
        const publish = find("OutboxRelay.publish", "eventId", eventId)
        assert.strictEqual(publish.kind, "producer")
        assert.deepStrictEqual(
          publish.links.map((l) => [l.span.traceId, l.span.spanId]),
          [[append.traceId, append.spanId]]
        )
        assert.strictEqual(publish.attributes.get("outcome"), "ok")
        assert.isTrue(spans.some((s) => s.name === "OutboxRelay.processBatch"))
      }).pipe(Effect.scoped))

    it.effect("the append, conflict, command, retry and snapshot metrics move", () =>
      Effect.gen(function*() {
        const Counter = counter(unique("Metered"))
        const byType = { stream_type: Counter.name }
        const appends = tagged(EventStore.appendDuration, { ...byType, outcome: "ok" })
        const conflicted = tagged(EventStore.appendDuration, { ...byType, outcome: "ConcurrencyConflict" })
        const commands = tagged(CommandHandler.duration, { aggregate: Counter.name, outcome: "ok" })
        const unchanged = tagged(CommandHandler.duration, { aggregate: Counter.name, outcome: "unchanged" })
        const store = yield* EventStore.EventStore
        // The first attempt of the second command conflicts: another writer appends just before it.
        let interfered = false
        const racing = EventStore.EventStore.of({
          ...store,
          append: (options) =>
            Effect.suspend(() => {
              if (interfered || options.expectedVersion?._tag !== "Exact") return store.append(options)
              interfered = true
              return Effect.zipRight(
                store.append({ streamType: options.streamType, streamId: options.streamId, events: [added(1)] }),
                store.append(options)
              )
            })
        })
        const handler = yield* Effect.provideService(CommandHandler.make(Counter), EventStore.EventStore, racing)
        yield* handler.handle("m-1", 3)
        const { find, traced } = recording()
        const second = yield* traced(handler.handle("m-1", 4))
        yield* handler.handle("m-1", 0)
        assert.deepStrictEqual(second.state, 8)
        const handle = find("CommandHandler.handle", "streamType", Counter.name)
        assert.deepStrictEqual([handle.attributes.get("attempts"), handle.attributes.get("outcome")], [2, "ok"])
        const conflict = find("EventStore.append", "outcome", "ConcurrencyConflict")
        assert.deepStrictEqual(
          [conflict.attributes.get("actualVersion"), conflict.attributes.get("conflictReason")],
          [2, "version"]
        )
        assert.deepStrictEqual(
          yield* Effect.all([
            count(appends),
            count(conflicted),
            count(tagged(EventStore.eventsAppended, byType)),
            count(tagged(EventStore.appendConflicts, { ...byType, reason: "version" })),
            count(commands),
            count(unchanged),
            count(tagged(CommandHandler.retries, { aggregate: Counter.name })),
            // Every load after the first (both attempts of the second command, and the third) used a snapshot.
            count(tagged(SnapshotStore.hits, { aggregate: Counter.name }))
          ]),
          [3, 1, 3, 1, 2, 1, 1, 3]
        )
      }))

    it.effect("subscription errors and the outbox publish histogram move", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const streamType = unique("Flaky")
        const written = yield* store.append({ streamType, streamId: "f", events: [added(1)] })
        let failures = 0
        const subscription = yield* Subscription.make({
          id: unique("flaky"),
          streamTypes: [streamType],
          pollInterval: "20 millis",
          errorPolicy: { retry: Schedule.recurs(3), onExhausted: "stop" },
          handler: () => failures++ < 2 ? Effect.fail("not yet") : Effect.void
        })
        const running = yield* Effect.forkScoped(subscription.run)
        yield* subscription.waitFor(written)
        yield* Fiber.interrupt(running)
        const errors = tagged(Subscription.errors, { subscription: subscription.id, kind: "handler" })
        assert.strictEqual(yield* count(errors), 2)
        const lag = yield* Metric.value(tagged(Subscription.lagSeconds, { subscription: subscription.id }))
        assert.strictEqual(lag.value, 0)

        const publishes = tagged(OutboxRelay.publishDuration, { outcome: "ok" })
        const before = yield* count(publishes)
        const memory = yield* OutboxPublisher.makeMemory
        yield* OutboxRelay.processBatch({ batchSize: 50 }).pipe(
          Effect.provideService(OutboxPublisher.OutboxPublisher, memory.publisher),
          Effect.repeat({ until: (claimed) => claimed === 0 })
        )
        const published = (yield* memory.published).length
        assert.isAtLeast(published, 1)
        assert.strictEqual((yield* count(publishes)) - before, published)
      }).pipe(Effect.scoped))
  })

const added = (amount: number) => ({ type: "Added", payload: { _tag: "Added", amount } })
