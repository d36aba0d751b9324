/**
 * The `EventStore` service: append to streams with optimistic concurrency, read streams, read the global feed.
 * It works on encoded events; typed access goes through `Aggregate` and `CommandHandler`.
 *
 * @since 0.1.0
 */
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Metric from "effect/Metric"
import type * as MetricKeyType from "effect/MetricKeyType"
import type * as MetricState from "effect/MetricState"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type * as Errors from "./Errors.js"
import type * as ExpectedVersion from "./ExpectedVersion.js"
import * as telemetry from "./internal/eventStoreTelemetry.js"
import * as internal from "./internal/memoryEventStore.js"
import * as columns from "./internal/streamColumns.js"
import type * as NewEvent from "./NewEvent.js"
import * as Position from "./Position.js"
import * as RecordedEvent from "./RecordedEvent.js"
import type * as Tenant from "./Tenant.js"

/**
 * Identifies one stream: its tenant, its type (aggregate or category name) and its id. The tenant is usually left
 * out and comes from the ambient tenant (`Tenant.with`); given here, it is an explicit argument for admin tools, and
 * must agree with the ambient tenant when both are set (see `Tenant.resolve`).
 *
 * @since 0.1.0
 * @category models
 */
export interface StreamRef {
  readonly tenantId?: string | undefined
  readonly streamType: string
  readonly streamId: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface AppendOptions extends StreamRef {
  readonly events: ReadonlyArray<NewEvent.NewEvent>
  /** Defaults to `ExpectedVersion.Any`. */
  readonly expectedVersion?: ExpectedVersion.ExpectedVersion | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface AppendResult extends StreamRef {
  /** The tenant the stream belongs to. */
  readonly tenantId: string
  /** The stream's version after the append: the version to expect next time. */
  readonly version: number
  /** The ids of the appended events, in order (generated where the caller supplied none). */
  readonly eventIds: ReadonlyArray<string>
  /** The feed position of the last appended event. */
  readonly position: Position.Position
  /** True when every event was already stored with the same content, so nothing was written. */
  readonly idempotent: boolean
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ReadStreamOptions extends StreamRef {
  /** Defaults to "forward". */
  readonly direction?: "forward" | "backward" | undefined
  /** The first version to read: forward reads go up from it, backward reads go down. */
  readonly fromVersion?: number | undefined
  readonly limit?: number | undefined
  /** Read an archived stream too (see `StreamLifecycle`); by default it fails with `StreamArchived`. */
  readonly includeArchived?: boolean | undefined
}

/**
 * Filters and paging for the global feed.
 *
 * @since 0.1.0
 * @category models
 */
export interface ReadAllOptions {
  /** Read events strictly after this position; defaults to `Position.start`. */
  readonly after?: Position.Position | undefined
  /** Defaults to 1000. */
  readonly limit?: number | undefined
  /** Only events of these types (none for an empty array). */
  readonly eventTypes?: ReadonlyArray<string> | undefined
  /** Only events of streams of these types (none for an empty array). */
  readonly streamTypes?: ReadonlyArray<string> | undefined
  /**
   * Only events recorded at or after this time (`recordedAt >= since`); an invalid `Date` fails with `InvalidInput`.
   * Pages stay in feed order and page with `after` like any other: `recordedAt` (when the append's transaction began)
   * need not grow along the feed.
   *
   * @since 0.4.0
   */
  readonly since?: Date | undefined
  /**
   * The tenant whose events to read; defaults to the ambient tenant. With neither, a `single`-mode store reads every
   * tenant's events (the whole feed) and a `multi`-mode store fails with `TenantRequired`.
   */
  readonly tenantId?: string | undefined
  /** Read every tenant's events: the explicit admin form of a cross-tenant read. Excludes `tenantId`. */
  readonly allTenants?: boolean | undefined
  /**
   * Keep archived streams' events in a read filtered by `streamTypes` (see `StreamLifecycle`); by default such a read
   * leaves them out. A read without `streamTypes` (the whole log) always has them.
   */
  readonly includeArchived?: boolean | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export type AppendError =
  | Errors.ConcurrencyConflict
  | Errors.DuplicateEvent
  | Errors.StreamArchived
  | Errors.StreamDeleted
  | Errors.InvalidInput
  | Tenant.TenantRequired
  | Errors.TenantUnavailable
  | Errors.StoreError

/**
 * @since 0.4.0
 * @category models
 */
export type ReadStreamError =
  | Errors.StreamNotFound
  | Errors.StreamArchived
  | Errors.StreamDeleted
  | Errors.InvalidInput
  | Tenant.TenantRequired
  | Errors.StoreError

/**
 * A forward read of one stream for a fold (see `readStreamColumns`): the options of `readStream`, and which of the
 * costlier fields to read.
 *
 * @since 0.4.0
 * @category models
 */
export interface ReadColumnsOptions extends StreamRef {
  /** The first version to read. */
  readonly fromVersion?: number | undefined
  readonly limit?: number | undefined
  /** Read an archived stream too; by default it fails with `StreamArchived`. */
  readonly includeArchived?: boolean | undefined
  /** Read when each event was recorded (`StreamColumns.recordedAt`), as a point-in-time load needs. */
  readonly recordedAt?: boolean | undefined
  /** Keep every event whole at hand (`StreamColumns.event`), as upcasters need. */
  readonly events?: boolean | undefined
}

/**
 * A stream's events as a fold reads them: a column per field, an entry per event, in version order. A store reads
 * only these fields and makes no `RecordedEvent` per event unless `events` was asked for.
 *
 * @since 0.4.0
 * @category models
 */
export interface StreamColumns {
  /** False for a stream that does not exist (where `readStream` fails with `StreamNotFound`); it has no events. */
  readonly exists: boolean
  readonly versions: ReadonlyArray<number>
  readonly types: ReadonlyArray<string>
  readonly schemaVersions: ReadonlyArray<number>
  /** The encoded payloads, as `RecordedEvent.payload`. */
  readonly payloads: ReadonlyArray<unknown>
  /** With `recordedAt: true`; empty otherwise. */
  readonly recordedAt: ReadonlyArray<Date>
  /** The event at an index, whole: with `events: true`; undefined otherwise. */
  readonly event: ((index: number) => RecordedEvent.RecordedEvent) | undefined
}

/**
 * What a column read fails with: what `readStream` fails with, except `StreamNotFound` (a missing stream reads as
 * `exists: false`: a command creating a stream should not pay for an error).
 *
 * @since 0.4.0
 * @category models
 */
export type ReadColumnsError = Exclude<ReadStreamError, Errors.StreamNotFound>

/**
 * A column reader: reads what `readStream` reads forward, as `StreamColumns`, failing as it does (but for a
 * missing stream, see `ReadColumnsError`).
 *
 * @since 0.4.0
 * @category models
 */
export type ReadColumns = (options: ReadColumnsOptions) => Effect.Effect<StreamColumns, ReadColumnsError>

/**
 * The event store. Every implementation passes `EventStoreContract`.
 *
 * @since 0.1.0
 * @category tags
 */
export class EventStore extends Context.Tag("@eventfold/core/EventStore")<EventStore, {
  /** The store's tenancy mode (see `Tenant`): whether operations without a tenant use the default one or fail. */
  readonly tenancy: Tenant.Mode
  /** Appends events atomically, checking the expected version. */
  readonly append: (options: AppendOptions) => Effect.Effect<AppendResult, AppendError>
  /** Reads one stream; a stream with no events fails with `StreamNotFound`. */
  readonly readStream: (
    options: ReadStreamOptions
  ) => Effect.Effect<
    ReadonlyArray<RecordedEvent.RecordedEvent>,
    ReadStreamError
  >
  /** Reads one page of the global feed, in feed order, never skipping an event that commits later. */
  readonly readAll: (
    options?: ReadAllOptions
  ) => Effect.Effect<
    ReadonlyArray<RecordedEvent.RecordedEvent>,
    Errors.InvalidInput | Tenant.TenantRequired | Errors.StoreError
  >
  /** The position of the last event the feed can deliver now (`Position.start` when empty), over every tenant. */
  readonly headPosition: Effect.Effect<Position.Position, Errors.StoreError>
  /** The stream's current version; 0 when it does not exist. */
  readonly streamVersion: (
    stream: StreamRef
  ) => Effect.Effect<number, Errors.InvalidInput | Tenant.TenantRequired | Errors.StoreError>
  /**
   * Whether an event with this id is stored in the ambient tenant, or in any tenant when none is set (event ids are
   * unique across tenants).
   */
  readonly eventExists: (eventId: string) => Effect.Effect<boolean, Errors.StoreError>
}>() {}

/**
 * Histogram: seconds per append, tagged `stream_type` and `outcome` (`ok`, `idempotent`, or the error's tag:
 * `ConcurrencyConflict`, `DuplicateEvent`, `StoreError`, ...). Its count is the number of appends.
 *
 * @since 0.4.0
 * @category metrics
 */
export const appendDuration: Metric.Metric<
  MetricKeyType.MetricKeyType.Histogram,
  number,
  MetricState.MetricState.Histogram
> = telemetry.appendDuration

/**
 * Counter: events written by appends, tagged `stream_type` (idempotent repeats write none).
 *
 * @since 0.4.0
 * @category metrics
 */
export const eventsAppended: Metric.Metric.Counter<number> = telemetry.eventsAppended

/**
 * Counter: appends refused with `ConcurrencyConflict`, tagged `stream_type` and `reason` (`version`,
 * `transaction-order`, `serialization`).
 *
 * @since 0.4.0
 * @category metrics
 */
export const appendConflicts: Metric.Metric.Counter<number> = telemetry.appendConflicts

/**
 * For implementers: wraps a store's operations in the spans every `EventStore` reports (`EventStore.append`,
 * `EventStore.readStream`, `EventStore.readAll`, `EventStore.headPosition`, `EventStore.streamVersion`,
 * `EventStore.eventExists`) and records `appendDuration`, `eventsAppended` and `appendConflicts`. The spans are made
 * only when a tracer that exports spans is installed; the metrics always. The append span is current while the store
 * runs `EventValidation.prepareAppend`, which records it in the events' metadata as their trace context. The memory
 * and PostgreSQL stores are built with it.
 *
 * @since 0.4.0
 * @category constructors
 */
export const instrument: (store: EventStore["Type"]) => EventStore["Type"] = telemetry.instrument

/**
 * For implementers: attaches a column reader to a store's `readStream` function and returns that function. The
 * reader must read exactly the events `readStream` reads forward, fail exactly as it does, and report the same
 * `EventStore.readStream` span (`instrument` keeps it). It belongs to that function alone: a decorator that replaces
 * `readStream` has none, so `readStreamColumns` reads through the decorator. The memory and PostgreSQL stores have
 * one.
 *
 * @since 0.4.0
 * @category constructors
 */
export const withColumnReader: <F extends EventStore["Type"]["readStream"]>(readStream: F, read: ReadColumns) => F =
  columns.attach

/**
 * Whether a store reads columns through a reader of its own (see `withColumnReader`), rather than by `readStream`.
 *
 * @since 0.4.0
 * @category utils
 */
export const hasColumnReader = (store: EventStore["Type"]): boolean => columns.readerOf(store.readStream) !== undefined

/**
 * Reads a stream forward as `StreamColumns`: the same events as `readStream`, and the same errors but for a missing
 * stream (`exists: false`). Through the store's column reader when its `readStream` has one (no `RecordedEvent` per
 * event, only the fields a fold needs), else by `readStream` itself. Loads (`CommandHandler`) read this way.
 *
 * @since 0.4.0
 * @category utils
 */
export const readStreamColumns: (
  store: EventStore["Type"],
  options: ReadColumnsOptions
) => Effect.Effect<StreamColumns, ReadColumnsError> = columns.read

/**
 * The `StreamColumns` of a stream that does not exist, for column readers.
 *
 * @since 0.4.0
 * @category constants
 */
export const missingColumns: StreamColumns = columns.missing

/**
 * `StreamColumns` over events read by `readStream`: what a column reader returns for the same options.
 *
 * @since 0.4.0
 * @category utils
 */
export const columnsOf: (
  events: ReadonlyArray<RecordedEvent.RecordedEvent>,
  options?: Pick<ReadColumnsOptions, "recordedAt" | "events">
) => StreamColumns = (events, options = {}) => columns.fromEvents(events, options)

/**
 * An in-memory `EventStore`, for tests and prototypes. It keeps the same guarantees as the PostgreSQL one.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: Effect.Effect<EventStore["Type"]> = internal.make

/**
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<EventStore> = Layer.effect(EventStore, makeMemory)

/**
 * The global feed from a position as a `Stream`, read in pages until it reaches the current end.
 *
 * @since 0.1.0
 * @category streams
 */
export const streamAll = (
  options?: ReadAllOptions & { readonly pageSize?: number | undefined }
): Stream.Stream<
  RecordedEvent.RecordedEvent,
  Errors.InvalidInput | Tenant.TenantRequired | Errors.StoreError,
  EventStore
> => {
  const pageSize = options?.pageSize ?? 1000
  return Stream.unwrap(
    Effect.map(
      EventStore,
      (store) =>
        Stream.paginateChunkEffect(
          options?.after ?? Position.start,
          (after) =>
            Effect.map(store.readAll({ ...options, after, limit: pageSize }), (page) =>
              [
                Chunk.unsafeFromArray(page),
                page.length < pageSize ? Option.none() : Option.some(RecordedEvent.position(page[page.length - 1]!))
              ] as const)
        )
    )
  )
}
