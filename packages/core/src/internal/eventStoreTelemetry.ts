/**
 * @internal The spans and metrics of every `EventStore`: `instrument` wraps a store's operations, so that the memory
 * and PostgreSQL stores (and any other) report the same span names, attributes and metrics.
 */
import type * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import type * as MetricLabel from "effect/MetricLabel"
import type * as Tracer from "effect/Tracer"
import * as Errors from "../Errors.js"
import type * as EventStore from "../EventStore.js"
import * as columns from "./streamColumns.js"
import * as telemetry from "./telemetry.js"

/** @internal */
export const appendDuration = Metric.histogram(
  "eventfold_append_duration_seconds",
  telemetry.durationBoundaries,
  "Seconds per append, by stream type and outcome"
)

/** @internal */
export const eventsAppended = Metric.counter("eventfold_events_appended", {
  description: "Events written by appends (idempotent repeats write none), by stream type",
  incremental: true
})

/** @internal */
export const appendConflicts = Metric.counter("eventfold_append_conflicts", {
  description: "Appends refused with ConcurrencyConflict, by stream type and reason",
  incremental: true
})

const { measured } = telemetry

const appendTimer = telemetry.taggedBy(appendDuration, "stream_type", "outcome")
const appendedEvents = telemetry.taggedBy(eventsAppended, "stream_type")
const conflicts = telemetry.taggedBy(appendConflicts, "stream_type", "reason")

const appendDone = (options: EventStore.AppendOptions) =>
(
  span: Tracer.Span | undefined,
  exit: Exit.Exit<EventStore.AppendResult, EventStore.AppendError>,
  seconds: number,
  labels: ReadonlyArray<MetricLabel.MetricLabel>
): void => {
  const outcome = exit._tag === "Success"
    ? (exit.value.idempotent ? "idempotent" : "ok")
    : telemetry.outcomeOf(exit, "ok")
  span?.attribute("outcome", outcome)
  // A refused stream type (too long, not a string) must not become a metric series.
  const streamType = outcome === "InvalidInput" || typeof options.streamType !== "string"
    ? "invalid"
    : options.streamType
  appendTimer(streamType, outcome).unsafeUpdate(seconds, labels)
  if (exit._tag === "Success") {
    span?.attribute("tenantId", exit.value.tenantId)
    span?.attribute("version", exit.value.version)
    if (outcome === "ok") appendedEvents(streamType).unsafeUpdate(options.events.length, labels)
    return
  }
  const conflict = conflictOf(exit)
  if (conflict === undefined) return
  if (conflict.tenantId !== undefined) span?.attribute("tenantId", conflict.tenantId)
  span?.attribute("actualVersion", conflict.actual)
  span?.attribute("conflictReason", conflict.reason ?? "version")
  conflicts(streamType, conflict.reason ?? "version").unsafeUpdate(1, labels)
}

const conflictOf = (exit: Exit.Exit<unknown, unknown>): Errors.ConcurrencyConflict | undefined =>
  exit._tag === "Failure" && exit.cause._tag === "Fail" && exit.cause.error instanceof Errors.ConcurrencyConflict
    ? exit.cause.error
    : undefined

/** Attributes known before a read starts: the stream, and its tenant when given. */
const streamAttributes = (ref: EventStore.StreamRef): Record<string, unknown> =>
  ref.tenantId === undefined
    ? { streamType: ref.streamType, streamId: ref.streamId }
    : { tenantId: ref.tenantId, streamType: ref.streamType, streamId: ref.streamId }

const countRead = (span: Tracer.Span | undefined, exit: Exit.Exit<ReadonlyArray<unknown>, unknown>): void => {
  span?.attribute("outcome", telemetry.outcomeOf(exit, "ok"))
  if (exit._tag === "Success") span?.attribute("events", exit.value.length)
}

const outcomeOnly = (span: Tracer.Span | undefined, exit: Exit.Exit<unknown, unknown>): void => {
  span?.attribute("outcome", telemetry.outcomeOf(exit, "ok"))
}

// The outcome `readStream` would report: a missing stream is a StreamNotFound there.
const countColumns = (span: Tracer.Span | undefined, exit: Exit.Exit<EventStore.StreamColumns, unknown>): void => {
  if (span === undefined) return
  span.attribute("outcome", telemetry.outcomeOf(exit, "ok"))
  if (exit._tag !== "Success") return
  if (exit.value.exists) span.attribute("events", exit.value.versions.length)
  else span.attribute("outcome", "StreamNotFound")
}

/** The instrumented `readStream`, with the store's column reader (if any) instrumented as the same span. */
const instrumentReadStream = (store: EventStore.EventStore["Type"]): EventStore.EventStore["Type"]["readStream"] => {
  const readStream: EventStore.EventStore["Type"]["readStream"] = (options) =>
    measured(
      "EventStore.readStream",
      () => ({ attributes: streamAttributes(options) }),
      store.readStream(options),
      countRead
    )
  const reader = columns.readerOf(store.readStream)
  return reader === undefined ? readStream : columns.attach(readStream, (options) =>
    measured(
      "EventStore.readStream",
      () => ({ attributes: streamAttributes(options) }),
      reader(options),
      countColumns
    ))
}

/** @internal Wraps a store's operations in spans (`EventStore.<operation>`) and records the append metrics. */
export const instrument = (store: EventStore.EventStore["Type"]): EventStore.EventStore["Type"] => ({
  tenancy: store.tenancy,
  // The span is current while the store prepares the append, so the events record it as their trace context.
  append: (options) =>
    measured(
      "EventStore.append",
      () => ({
        attributes: {
          ...streamAttributes(options),
          events: Array.isArray(options.events) ? options.events.length : 0,
          expectedVersion: telemetry.expectedVersionAttribute(options.expectedVersion)
        }
      }),
      store.append(options),
      appendDone(options)
    ),
  readStream: instrumentReadStream(store),
  readAll: (options) =>
    measured(
      "EventStore.readAll",
      () => options?.limit === undefined ? {} : { attributes: { limit: options.limit } },
      store.readAll(options),
      countRead
    ),
  headPosition: measured("EventStore.headPosition", () => ({}), store.headPosition, outcomeOnly),
  streamVersion: (stream) =>
    measured(
      "EventStore.streamVersion",
      () => ({ attributes: streamAttributes(stream) }),
      store.streamVersion(stream),
      outcomeOnly
    ),
  eventExists: (eventId) =>
    measured(
      "EventStore.eventExists",
      () => ({ attributes: { eventId } }),
      store.eventExists(eventId),
      outcomeOnly
    )
})
