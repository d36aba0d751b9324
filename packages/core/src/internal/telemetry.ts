/**
 * @internal What eventfold's spans and metrics share: the duration buckets, the outcome of an operation, the W3C trace
 * context kept in event metadata, and whether a tracer other than Effect's built-in one is installed (per-event spans
 * are made only then, so they cost nothing when nobody listens).
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as DefaultServices from "effect/DefaultServices"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as FiberRef from "effect/FiberRef"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as MetricLabel from "effect/MetricLabel"
import * as Option from "effect/Option"
import * as Tracer from "effect/Tracer"
import * as EventMetadata from "../EventMetadata.js"
import type * as ExpectedVersion from "../ExpectedVersion.js"

/** @internal Seconds, from 0.5 ms to 10 s: appends, commands and publishes. */
export const durationBoundaries: MetricBoundaries.MetricBoundaries = MetricBoundaries.fromIterable([
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10
])

/**
 * @internal The metric for each combination of tag values, made once. A metric tagged anew for every update builds
 * (and hashes) a metric key each time; one made once finds its state in a cache.
 */
export const taggedBy = <Type, In, Out>(
  metric: Metric.Metric<Type, In, Out>,
  ...keys: ReadonlyArray<string>
): (...values: ReadonlyArray<string>) => Metric.Metric<Type, In, Out> => {
  const made = new Map<string, Metric.Metric<Type, In, Out>>()
  return (...values) => {
    const id = values.length === 1 ? values[0]! : values.join("\u0000")
    let tagged = made.get(id)
    if (tagged === undefined) {
      tagged = Metric.taggedWithLabels(metric, keys.map((key, i) => MetricLabel.make(key, values[i] ?? "")))
      made.set(id, tagged)
    }
    return tagged
  }
}

// Effect's built-in tracer records spans nowhere; with it installed nobody listens.
const nativeTracer = Context.get(DefaultServices.liveServices, Tracer.Tracer)

/** @internal True when a tracer that exports spans (OpenTelemetry, ...) is installed. */
export const tracing: Effect.Effect<boolean> = Effect.tracerWith((tracer) => Effect.succeed(tracer !== nativeTracer))

const HEX32 = /^[0-9a-f]{32}$/
const HEX16 = /^[0-9a-f]{16}$/
const ZEROS = /^0+$/

/** @internal The W3C `traceparent` of a span; undefined when its ids are not W3C ids (or all zeros). */
export const formatTraceparent = (span: Tracer.AnySpan): string | undefined =>
  HEX32.test(span.traceId) && HEX16.test(span.spanId) && !ZEROS.test(span.traceId) && !ZEROS.test(span.spanId)
    ? `00-${span.traceId}-${span.spanId}-${span.sampled ? "01" : "00"}`
    : undefined

/**
 * @internal The trace context to record in the metadata of an append's events: the current span's, when a tracer
 * that exports spans is installed.
 */
export const currentTraceparent: Effect.Effect<string | undefined> = Effect.flatMap(
  tracing,
  (on) =>
    on
      ? Effect.map(Effect.serviceOption(Tracer.ParentSpan), (span) =>
        Option.isSome(span) ? formatTraceparent(span.value) : undefined)
      : Effect.succeed(undefined)
)

/** @internal Metadata with the trace context added, unless the caller set one (or its headers are not an object). */
export const withTraceparent = (
  metadata: EventMetadata.EventMetadata,
  traceparent: string
): EventMetadata.EventMetadata => {
  const headers: unknown = metadata.headers
  if (headers !== undefined && (typeof headers !== "object" || headers === null || Array.isArray(headers))) {
    return metadata
  }
  if (metadata.headers !== undefined && metadata.headers[EventMetadata.traceHeader] !== undefined) return metadata
  return { ...metadata, headers: { ...metadata.headers, [EventMetadata.traceHeader]: traceparent } }
}

/** @internal A link to the span that appended an event, from its metadata; empty when it carries none. */
export const appendLinks = (metadata: EventMetadata.EventMetadata): ReadonlyArray<Tracer.SpanLink> => {
  const span = EventMetadata.appendSpan(metadata)
  return Option.isSome(span) ? [{ _tag: "SpanLink", span: span.value, attributes: appendLinkAttributes }] : []
}

const appendLinkAttributes = { link: "append" }

/** @internal An expected version as an attribute: the version for `Exact`, else the tag (`Any`, `NoStream`, ...). */
export const expectedVersionAttribute = (expected: ExpectedVersion.ExpectedVersion | undefined): string =>
  expected === undefined ? "Any" : expected._tag === "Exact" ? String(expected.version) : expected._tag

/**
 * @internal How an operation ended, for the `outcome` tag and attribute: `success` when it succeeded, else the
 * failure's `_tag` (eventfold's errors and tagged domain errors), `failure` for an untagged one, `interrupted` or
 * `defect`.
 */
export const outcomeOf = (exit: Exit.Exit<unknown, unknown>, success: string): string => {
  if (exit._tag === "Success") return success
  const failure = Cause.failureOption(exit.cause)
  if (Option.isSome(failure)) {
    const error: unknown = failure.value
    return typeof error === "object" && error !== null && "_tag" in error && typeof error._tag === "string"
      ? error._tag
      : "failure"
  }
  return Cause.isInterruptedOnly(exit.cause) ? "interrupted" : "defect"
}

/**
 * @internal Runs `effect`; when it ends, `done` gets the exit, the seconds it took and the fiber's metric labels
 * (`Effect.tagMetrics`), and records its metrics synchronously (`Metric.unsafeUpdate` with those labels): one step,
 * not one effect per update.
 */
export const timed = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  done: (exit: Exit.Exit<A, E>, seconds: number, labels: ReadonlyArray<MetricLabel.MetricLabel>) => void
): Effect.Effect<A, E, R> =>
  Effect.clockWith((clock) => {
    const start = clock.unsafeCurrentTimeNanos()
    return Effect.onExit(effect, (exit) =>
      FiberRef.getWith(FiberRef.currentMetricLabels, (labels) =>
        Effect.sync(() =>
          done(exit, Number(clock.unsafeCurrentTimeNanos() - start) / 1e9, labels)
        )))
  })

/**
 * @internal `timed` in a span (without a stack trace: these are hot paths) with the `options` it is given lazily, where
 * `done` also sets the attributes.
 * Only when a tracer that exports spans is installed: without one a span goes nowhere, and Effect's built-in one costs
 * more than an in-memory append (random ids, a context copy), so the effect runs bare and `done` gets no span.
 */
export const measured = <A, E, R>(
  name: string,
  options: () => Tracer.SpanOptions,
  effect: Effect.Effect<A, E, R>,
  done: (
    span: Tracer.Span | undefined,
    exit: Exit.Exit<A, E>,
    seconds: number,
    labels: ReadonlyArray<MetricLabel.MetricLabel>
  ) => void
): Effect.Effect<A, E, R> =>
  Effect.withFiberRuntime((fiber) => {
    // Nobody listens (Effect's built-in tracer): the clock and the metric labels are read from the fiber at once (the
    // labels at the start: `Effect.tagMetrics` scopes them to an effect, so they are the same at its end).
    if (fiber.currentTracer === nativeTracer) {
      const clock = Context.get(fiber.currentDefaultServices, Clock.Clock)
      const labels = fiber.getFiberRef(FiberRef.currentMetricLabels)
      const start = clock.unsafeCurrentTimeNanos()
      return Effect.onExit(effect, (exit) =>
        Effect.sync(() => done(undefined, exit, Number(clock.unsafeCurrentTimeNanos() - start) / 1e9, labels)))
    }
    return Effect.useSpan(
      name,
      { ...options(), captureStackTrace: false },
      (span) =>
        timed(Effect.withParentSpan(effect, span), (exit, seconds, labels) => done(span, exit, seconds, labels))
    )
  })
