/**
 * Telemetry (`npm run example:telemetry`): eventfold traces and measures itself with Effect's own `Tracer` and
 * `Metric`, and `@effect/opentelemetry` exports both. A few commands run with `NodeSdk.layer` installed; the example
 * then scrapes its own Prometheus endpoint (`PROMETHEUS_PORT`, default 9464) for the append latency histogram, prints
 * the last command's trace, and shows a subscription's handling span linked to the span that appended its event.
 * With `OTEL_EXPORTER_OTLP_ENDPOINT` set (a collector, e.g. http://localhost:4318), traces and metrics go there instead
 * (through the recipe, `otlp`), and the example prints the trace id to look up.
 */
import * as Metrics from "@effect/opentelemetry/Metrics"
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import * as Resource from "@effect/opentelemetry/Resource"
import { Aggregate, CommandHandler, Decider, EventMetadata, EventStore, Subscription } from "@eventfold/core"
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http"
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus"
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http"
import { PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics"
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base"
import { BatchSpanProcessor, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import * as Config from "effect/Config"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { onPostgres, runIfMain } from "./run.js"

class Deposited extends Schema.TaggedClass<Deposited>()("Deposited", { amount: Schema.Number }) {}

const Account = Aggregate.make({
  name: "TracedAccount",
  events: Schema.Union(Deposited),
  decider: Decider.make({
    initialState: 0,
    evolve: (balance: number, e: Deposited) => balance + e.amount,
    decide: (amount: number) => Effect.succeed([new Deposited({ amount })])
  })
})

/**
 * The recipe: traces and metrics to an OTLP collector over HTTP. The exporters read `OTEL_EXPORTER_OTLP_ENDPOINT`
 * (default http://localhost:4318) and the other standard `OTEL_*` variables.
 */
export const otlp = NodeSdk.layer(() => ({
  resource: { serviceName: "orders" },
  spanProcessor: new BatchSpanProcessor(new OTLPTraceExporter()),
  metricReader: new PeriodicExportingMetricReader({ exporter: new OTLPMetricExporter(), exportIntervalMillis: 10_000 })
}))

/** Metrics on a Prometheus scrape endpoint (`GET http://host:port/metrics`), served while the Layer is in use. */
export const prometheus = (port: number): Layer.Layer<never> =>
  Layer.scopedDiscard(Effect.gen(function*() {
    const exporter = new PrometheusExporter({ port, preventServerStart: true })
    // Each scrape reads Effect's metrics through @effect/opentelemetry's producer (what NodeSdk's metricReader does).
    exporter.setMetricProducer(yield* Metrics.makeProducer)
    yield* Effect.acquireRelease(
      Effect.promise(() => exporter.startServer()),
      () => Effect.promise(() => exporter.shutdown())
    )
  })).pipe(Layer.provide(Resource.layer({ serviceName: "orders" })))

/** What the example saw, for its test. */
export interface TelemetryResult {
  /** The scrape's lines of `eventfold_append_duration_seconds` for this example's stream type. */
  readonly histogram: ReadonlyArray<string>
  /** Appends the histogram counted in this run (the growth of its `_count`). */
  readonly appends: number
  /** The last command's trace, depth first, indented by depth (empty when it went to a collector). */
  readonly trace: ReadonlyArray<string>
  /** The subscription's `Subscription.handle` span links to the `EventStore.append` span of its event. */
  readonly linked: boolean
}

/** The spans of one trace as a tree of names, children in start order. */
const tree = (spans: ReadonlyArray<ReadableSpan>, root: ReadableSpan): ReadonlyArray<string> => {
  const children = (parent: ReadableSpan) =>
    spans
      .filter((s) => s.parentSpanContext?.spanId === parent.spanContext().spanId)
      .sort((a, b) => a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1])
  const walk = (span: ReadableSpan, depth: number): ReadonlyArray<string> => [
    `${"  ".repeat(depth)}${span.name}`,
    ...children(span).flatMap((child) => walk(child, depth + 1))
  ]
  return walk(root, 0)
}

const scrape = (port: number) =>
  Effect.promise(() => fetch(`http://127.0.0.1:${port}/metrics`).then((response) => response.text()))

/** Runs a few commands and a subscription with telemetry on, then reads what an operator would see. */
export const program = (options: { readonly port: number; readonly otlp?: boolean | undefined }) => {
  const spans = new InMemorySpanExporter()
  // One tracer at a time: the collector's (the recipe), else one keeping spans in memory for the example to print.
  const tracer = options.otlp === true
    ? otlp
    : NodeSdk.layer(() => ({ resource: { serviceName: "orders" }, spanProcessor: new SimpleSpanProcessor(spans) }))
  const telemetry = Layer.merge(tracer, prometheus(options.port))
  const histogram = Effect.map(
    scrape(options.port),
    (text) =>
      text.split("\n").filter((line) =>
        line.startsWith("eventfold_append_duration_seconds") && line.includes(`stream_type="${Account.name}"`)
      )
  )
  const countOf = (lines: ReadonlyArray<string>) =>
    Number(lines.find((line) => line.startsWith("eventfold_append_duration_seconds_count"))?.split(" ").at(-1) ?? 0)
  return Effect.gen(function*() {
    // Metrics live as long as the process: what this run adds is the difference.
    const before = countOf(yield* histogram)
    const accounts = yield* CommandHandler.make(Account)
    const id = `acc-${crypto.randomUUID().slice(0, 8)}`
    yield* accounts.handle(id, 100)
    yield* accounts.handle(id, 20)
    const last = yield* accounts.handle(id, 5)
    yield* Console.log(`1. three deposits to ${id}: balance ${last.state} at version ${last.version}`)

    const lines = yield* histogram
    const appends = countOf(lines) - before
    yield* Console.log(`2. GET http://127.0.0.1:${options.port}/metrics, the append latency histogram:`)
    yield* Console.log(lines.map((line) => `   ${line}`).join("\n"))

    // The event records its append's span: the trace to look up in the collector's UI.
    const store = yield* EventStore.EventStore
    const [stored] = yield* store.readStream({ streamType: Account.name, streamId: id, fromVersion: last.version })
    const traceId = Option.map(EventMetadata.appendSpan(stored?.metadata ?? {}), (span) => span.traceId)
    const finished = spans.getFinishedSpans()
    const handle = finished.filter((s) => s.name === "CommandHandler.handle" && s.attributes.streamId === id).at(-1)
    const trace = handle === undefined ? [] : tree(finished, handle)
    yield* Console.log(`3. the last command's trace (${Option.getOrElse(traceId, () => "none")}):`)
    yield* Console.log(
      options.otlp === true
        ? "   sent to the collector at OTEL_EXPORTER_OTLP_ENDPOINT"
        : trace.map((line) => `   ${line}`).join("\n")
    )

    const subscription = yield* Subscription.make({
      id: `telemetry-example-${id}`,
      streamTypes: [Account.name],
      startFrom: Subscription.StartFrom.Beginning(),
      pollInterval: "50 millis",
      handler: () => Effect.void
    })
    yield* Effect.forkScoped(subscription.run)
    yield* subscription.waitFor(last)
    const eventId = last.eventIds[0]
    const handled = spans.getFinishedSpans().find((s) =>
      s.name === "Subscription.handle" && s.attributes.eventId === eventId
    )
    const appended = spans.getFinishedSpans().find((s) =>
      s.name === "EventStore.append" && s.parentSpanContext?.spanId === handle?.spanContext().spanId
    )
    const link = Option.fromNullable(handled?.links[0]?.context)
    const linked = Option.isSome(link) && appended !== undefined &&
      link.value.spanId === appended.spanContext().spanId && link.value.traceId === appended.spanContext().traceId
    if (options.otlp !== true) {
      yield* Console.log(
        `4. the subscription handled ${eventId} in a Subscription.handle span linked to the append's span: ${linked}`
      )
    }
    return { histogram: lines, appends, trace, linked } satisfies TelemetryResult
  }).pipe(Effect.scoped, Effect.provide(telemetry))
}

runIfMain(
  import.meta,
  "telemetry: a Prometheus scrape and a command's trace",
  Effect.gen(function*() {
    const port = yield* Config.integer("PROMETHEUS_PORT").pipe(Config.withDefault(9464))
    const toCollector = yield* Config.option(Config.string("OTEL_EXPORTER_OTLP_ENDPOINT"))
    return yield* onPostgres(program({ port, otlp: Option.isSome(toCollector) }))
  })
)
