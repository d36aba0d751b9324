// Telemetry on PostgreSQL: the shared contract, then end to end through the OpenTelemetry SDK as an application wires
// it (`NodeSdk.layer` of @effect/opentelemetry, an in-memory span exporter and a metric reader): a command produces
// the documented spans with their attributes, the append histogram moves, and a subscription's handling span links
// to the append's span.
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import { assert, layer } from "@effect/vitest"
import { Aggregate, CommandHandler, Decider, EventMetadata, EventStore, Subscription } from "@eventfold/core"
import { TelemetryContract } from "@eventfold/core/testing"
import { PgTest } from "@eventfold/postgres"
import type { CollectionResult } from "@opentelemetry/sdk-metrics"
import { DataPointType, MetricReader } from "@opentelemetry/sdk-metrics"
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base"
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"

TelemetryContract.suite(`postgres (${PgTest.serverLabel()})`, PgTest.layerEventfold({ outbox: true }))

/** A reader that collects on demand: the test reads what a Prometheus scrape or an OTLP push would send. */
class OnDemandReader extends MetricReader {
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve()
  }
  protected override onShutdown(): Promise<void> {
    return Promise.resolve()
  }
}

const spans = new InMemorySpanExporter()
const reader = new OnDemandReader()

const Telemetry = NodeSdk.layer(() => ({
  resource: { serviceName: "eventfold-test" },
  spanProcessor: new SimpleSpanProcessor(spans),
  metricReader: reader
}))

class Deposited extends Schema.TaggedClass<Deposited>()("Deposited", { amount: Schema.Number }) {}

const Account = Aggregate.make({
  name: `Account-${crypto.randomUUID()}`,
  events: Schema.Union(Deposited),
  decider: Decider.make({
    initialState: 0,
    evolve: (balance: number, e: Deposited) => balance + e.amount,
    decide: (amount: number) => Effect.succeed([new Deposited({ amount })])
  })
})

const finished = (name: string, attribute: string, value: unknown): ReadableSpan => {
  const found = spans.getFinishedSpans().find((s) => s.name === name && s.attributes[attribute] === value)
  assert.isDefined(found, `a finished ${name} span with ${attribute} = ${String(value)}`)
  return found!
}

/** The histogram data point of `eventfold_append_duration_seconds` for the stream type and outcome. */
const appendHistogram = (collected: CollectionResult, streamType: string) => {
  const metric = collected.resourceMetrics.scopeMetrics
    .flatMap((scope) => scope.metrics)
    .find((m) => m.descriptor.name === "eventfold_append_duration_seconds")
  assert.isDefined(metric, "eventfold_append_duration_seconds is exported")
  assert.strictEqual(metric!.dataPointType, DataPointType.HISTOGRAM)
  const point = metric!.dataPoints.find((p) => p.attributes.stream_type === streamType && p.attributes.outcome === "ok")
  const value = point?.value
  return typeof value === "object" && value !== null && "count" in value ? value : undefined
}

layer(Layer.merge(PgTest.layerEventfold({ outbox: true }), Telemetry), {
  excludeTestServices: true,
  timeout: "120 seconds"
})(`Telemetry through the OpenTelemetry SDK on PostgreSQL (${PgTest.serverLabel()})`, (it) => {
  it.effect("a command's spans and attributes, the append histogram, and the subscription's link to the append", () =>
    Effect.gen(function*() {
      const accounts = yield* CommandHandler.make(Account)
      const first = yield* accounts.handle("acc-1", 100)
      const second = yield* accounts.handle("acc-1", 20)
      assert.deepStrictEqual([first.version, second.version, second.state], [1, 2, 120])

      const handle = finished("CommandHandler.handle", "version", 2)
      assert.deepInclude(handle.attributes, {
        streamType: Account.name,
        streamId: "acc-1",
        tenantId: "default",
        outcome: "ok",
        attempts: 1,
        events: 1
      })
      const append = finished("EventStore.append", "version", 2)
      assert.deepInclude(append.attributes, {
        streamType: Account.name,
        streamId: "acc-1",
        tenantId: "default",
        events: 1,
        expectedVersion: "1",
        outcome: "ok"
      })
      assert.strictEqual(append.parentSpanContext?.spanId, handle.spanContext().spanId)
      assert.strictEqual(append.spanContext().traceId, handle.spanContext().traceId)
      const reads = spans.getFinishedSpans().filter((s) =>
        s.name === "EventStore.readStream" && s.parentSpanContext?.spanId === handle.spanContext().spanId
      )
      assert.deepStrictEqual(reads.map((s) => s.attributes.events), [1])

      // The event records the append's span, as the W3C traceparent its consumers link to.
      const store = yield* EventStore.EventStore
      const stored = (yield* store.readStream({ streamType: Account.name, streamId: "acc-1", fromVersion: 2 }))[0]!
      assert.strictEqual(
        stored.metadata.headers?.[EventMetadata.traceHeader],
        `00-${append.spanContext().traceId}-${append.spanContext().spanId}-01`
      )

      const histogram = appendHistogram(yield* Effect.promise(() => reader.collect()), Account.name)
      assert.strictEqual(histogram?.count, 2)
      assert.isAbove(histogram?.sum ?? 0, 0)

      const subscription = yield* Subscription.make({
        id: `telemetry-${crypto.randomUUID()}`,
        streamTypes: [Account.name],
        pollInterval: "50 millis",
        handler: () => Effect.void
      })
      const running = yield* Effect.fork(subscription.run)
      yield* subscription.waitFor(second)
      yield* Fiber.interrupt(running)
      const handled = finished("Subscription.handle", "eventId", second.eventIds[0])
      assert.deepStrictEqual(
        handled.links.map((l) => [l.context.traceId, l.context.spanId]),
        [[append.spanContext().traceId, append.spanContext().spanId]]
      )
      assert.deepInclude(handled.attributes, {
        subscription: subscription.id,
        streamType: Account.name,
        streamId: "acc-1",
        version: 2
      })
      const page = spans.getFinishedSpans().find((s) => s.spanContext().spanId === handled.parentSpanContext?.spanId)
      assert.strictEqual(page?.name, "Subscription.handlePage")
      assert.strictEqual(page?.parentSpanContext, undefined)
    }))
})
