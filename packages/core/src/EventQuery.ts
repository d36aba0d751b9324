/**
 * Typed reads: events decoded (and upcast, see `EventCodec`) into their aggregates' current types, with the event
 * type names checked at compile time against the aggregates' unions.
 *
 * - Per aggregate: `readStream` / `stream` read one stream, optionally only some of its event types.
 * - Across aggregates: `readAll` / `streamAll` read the global feed for one or more aggregates, by event type, by
 *   tenant and from a timestamp. Each filter is served by an index on PostgreSQL (migration 0008).
 * - Subscriptions and projections get the same decoding through `handler`.
 *
 * A stored event that does not decode (an unknown type, a version newer than the code, a failing upcaster, a bad
 * payload) follows the read's `unknown` policy: `"fail"` (the default) fails with `EventDecodeError`; `"skip"` leaves
 * it out, counts it in `undecodable` and logs a warning; `"raw"` yields it as `Undecoded`, with its error, for the
 * caller to handle. Nothing is dropped silently unless asked for.
 *
 * @since 0.4.0
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type * as Aggregate from "./Aggregate.js"
import * as Errors from "./Errors.js"
import * as EventStore from "./EventStore.js"
import * as Position from "./Position.js"
import * as RecordedEvent from "./RecordedEvent.js"
import type * as Tenant from "./Tenant.js"

/**
 * A stored event decoded into its current type.
 *
 * @since 0.4.0
 * @category models
 */
export interface Decoded<Event> {
  readonly _tag: "Decoded"
  readonly event: Event
  /** The event as stored: its envelope (stream, version, position, metadata, time) and its stored payload. */
  readonly recorded: RecordedEvent.RecordedEvent
}

/**
 * A stored event that did not decode, under the `"raw"` policy.
 *
 * @since 0.4.0
 * @category models
 */
export interface Undecoded {
  readonly _tag: "Undecoded"
  readonly recorded: RecordedEvent.RecordedEvent
  readonly error: Errors.EventDecodeError
}

/**
 * What to do with a stored event that does not decode: fail (default), skip (counted and logged), or pass it raw.
 *
 * @since 0.4.0
 * @category models
 */
export type UnknownPolicy = "fail" | "skip" | "raw"

/**
 * What a read yields under a policy: `Decoded` events, and `Undecoded` ones too under `"raw"`.
 *
 * @since 0.4.0
 * @category models
 */
export type Item<Event, Policy extends UnknownPolicy> = "raw" extends Policy ? Decoded<Event> | Undecoded
  : Decoded<Event>

/**
 * The events of an aggregate (or several) whose type is among `Types`: what a read with `types` yields.
 *
 * @since 0.4.0
 * @category models
 */
export type Selected<A extends Aggregate.Aggregate.Any, Types extends string> = Extract<
  Aggregate.Aggregate.Event<A>,
  { readonly _tag: Types }
>

/**
 * Undecodable events left out under the `"skip"` policy, tagged with `stream_type` and `reason`.
 *
 * @since 0.4.0
 * @category metrics
 */
export const undecodable: Metric.Metric.Counter<number> = Metric.counter("eventfold_events_undecodable", {
  description: "Stored events a typed read or subscription skipped because they did not decode",
  incremental: true
})

/**
 * Decodes recorded events of the given aggregates under a policy: a function to a `Decoded`, an `Undecoded`, or
 * None for a skipped event. An event of a stream type none of the aggregates has is undecodable (`unknown-type`).
 *
 * @since 0.4.0
 * @category decoding
 */
export const decoder = <A extends Aggregate.Aggregate.Any, Policy extends UnknownPolicy = "fail">(
  aggregates: ReadonlyArray<A>,
  policy?: Policy
): (
  recorded: RecordedEvent.RecordedEvent
) => Effect.Effect<Option.Option<Item<Aggregate.Aggregate.Event<A>, Policy>>, Errors.EventDecodeError> => {
  const byName = new Map<string, Aggregate.Aggregate.Any>()
  for (const aggregate of aggregates) byName.set(aggregate.name, aggregate)
  const mode: UnknownPolicy = policy ?? "fail"
  type Out = Option.Option<Item<Aggregate.Aggregate.Event<A>, Policy>>
  return (recorded) => {
    const aggregate = byName.get(recorded.streamType)
    const decoded: Either.Either<unknown, Errors.EventDecodeError> = aggregate
      ? aggregate.codec.decode(recorded)
      : Either.left(
        new Errors.EventDecodeError({
          streamType: recorded.streamType,
          streamId: recorded.streamId,
          version: recorded.version,
          type: recorded.type,
          issue: `stream type "${recorded.streamType}" is not one of ${[...byName.keys()].join(", ")}`,
          reason: "unknown-type",
          schemaVersion: recorded.schemaVersion
        })
      )
    if (Either.isRight(decoded)) {
      return Effect.succeed(Option.some({ _tag: "Decoded", event: decoded.right, recorded }) as Out)
    }
    const error = decoded.left
    switch (mode) {
      case "raw":
        return Effect.succeed(Option.some({ _tag: "Undecoded", recorded, error }) as Out)
      case "skip":
        return Effect.as(
          Effect.zipRight(
            Effect.logWarning(`eventfold: skipped an event that does not decode: ${error.message}`),
            Metric.increment(
              Metric.tagged(
                Metric.tagged(undecodable, "stream_type", recorded.streamType),
                "reason",
                error.reason ?? "payload"
              )
            )
          ),
          Option.none() as Out
        )
      default:
        return Effect.fail(error)
    }
  }
}

/**
 * @since 0.4.0
 * @category models
 */
export interface StreamOptions<
  A extends Aggregate.Aggregate.Any,
  Types extends Aggregate.Aggregate.EventType<A>,
  Policy extends UnknownPolicy
> {
  /**
   * Only these event types (checked at compile time, and narrowing the result's type); stored events under a type's
   * former names are included.
   */
  readonly types?: ReadonlyArray<Types> | undefined
  readonly direction?: "forward" | "backward" | undefined
  /** The first version to read: forward reads go up from it, backward reads go down. */
  readonly fromVersion?: number | undefined
  /** The most events to return (after the type filter). */
  readonly limit?: number | undefined
  readonly tenantId?: string | undefined
  readonly unknown?: Policy | undefined
  /** Events read per round trip; defaults to 1000. */
  readonly pageSize?: number | undefined
}

/**
 * @since 0.4.0
 * @category models
 */
export type StreamError =
  | Errors.EventDecodeError
  | Errors.StreamNotFound
  | Errors.StreamArchived
  | Errors.StreamDeleted
  | Errors.InvalidInput
  | Tenant.TenantRequired
  | Errors.StoreError

const positiveInteger = (what: string, value: number | undefined): Effect.Effect<void, Errors.InvalidInput> =>
  value === undefined || (Number.isSafeInteger(value) && value > 0)
    ? Effect.void
    : Effect.fail(new Errors.InvalidInput({ reason: `${what} must be a positive integer, got ${value}` }))

/**
 * One aggregate's stream, decoded, read in pages. A stream with no events fails with `StreamNotFound`.
 *
 * @since 0.4.0
 * @category reads
 */
export const stream = <
  A extends Aggregate.Aggregate.Any,
  const Types extends Aggregate.Aggregate.EventType<A> = Aggregate.Aggregate.EventType<A>,
  Policy extends UnknownPolicy = "fail"
>(
  aggregate: A,
  id: string,
  options?: StreamOptions<A, Types, Policy>
): Stream.Stream<Item<Selected<A, Types>, Policy>, StreamError, EventStore.EventStore> => {
  const backward = options?.direction === "backward"
  const pageSize = options?.pageSize ?? 1000
  const wanted = options?.types === undefined ? undefined : new Set(aggregate.codec.storedNames(options.types))
  const decode = decoder<A, Policy>([aggregate], options?.unknown)
  const first: number | undefined = options?.fromVersion
  const pages = Stream.unwrap(
    Effect.map(
      EventStore.EventStore,
      (store) =>
        Stream.paginateChunkEffect(first, (from) =>
          Effect.map(
            store.readStream({
              ...(options?.tenantId === undefined ? {} : { tenantId: options.tenantId }),
              streamType: aggregate.name,
              streamId: id,
              ...(from === undefined ? {} : { fromVersion: from }),
              direction: backward ? "backward" : "forward",
              limit: pageSize
            }),
            (page) => {
              const last = page[page.length - 1]
              const next = last === undefined || page.length < pageSize
                ? Option.none<number | undefined>()
                : backward
                ? (last.version > 1 ? Option.some(last.version - 1) : Option.none())
                : Option.some(last.version + 1)
              return [Chunk.unsafeFromArray(page), next] as const
            }
          ))
    )
  )
  const decoded = pages.pipe(
    Stream.filter((recorded) => wanted === undefined || wanted.has(recorded.type)),
    Stream.mapEffect(decode),
    Stream.filterMap((item) => item as Option.Option<Item<Selected<A, Types>, Policy>>)
  )
  // Checked before any read: `Stream.take(0)` would never run the reads that report it.
  return Stream.unwrap(
    Effect.as(
      Effect.all([positiveInteger("pageSize", options?.pageSize), positiveInteger("limit", options?.limit)]),
      options?.limit === undefined ? decoded : Stream.take(decoded, options.limit)
    )
  )
}

/**
 * One aggregate's stream, decoded: `stream` collected.
 *
 * @since 0.4.0
 * @category reads
 */
export const readStream = <
  A extends Aggregate.Aggregate.Any,
  const Types extends Aggregate.Aggregate.EventType<A> = Aggregate.Aggregate.EventType<A>,
  Policy extends UnknownPolicy = "fail"
>(
  aggregate: A,
  id: string,
  options?: StreamOptions<A, Types, Policy>
): Effect.Effect<ReadonlyArray<Item<Selected<A, Types>, Policy>>, StreamError, EventStore.EventStore> =>
  Effect.map(Stream.runCollect(stream(aggregate, id, options)), Chunk.toReadonlyArray)

/**
 * @since 0.4.0
 * @category models
 */
export interface FeedOptions<
  A extends Aggregate.Aggregate.Any,
  Types extends Aggregate.Aggregate.EventType<A>,
  Policy extends UnknownPolicy
> {
  /** The aggregates whose events to read: the feed is filtered to their stream types. */
  readonly aggregates: ReadonlyArray<A>
  /**
   * Only these event types (checked at compile time against the aggregates' unions, and narrowing the result's
   * type), former names included.
   */
  readonly types?: ReadonlyArray<Types> | undefined
  /** Only events recorded at or after this time. */
  readonly since?: Date | undefined
  /** Read events strictly after this position; defaults to `Position.start`. */
  readonly after?: Position.Position | undefined
  /** The tenant whose events to read (see `EventStore.ReadAllOptions.tenantId`). */
  readonly tenantId?: string | undefined
  /** Read every tenant's events. */
  readonly allTenants?: boolean | undefined
  readonly unknown?: Policy | undefined
}

/**
 * @since 0.4.0
 * @category models
 */
export type FeedError = Errors.EventDecodeError | Errors.InvalidInput | Tenant.TenantRequired | Errors.StoreError

/**
 * The store filter of a typed feed read: the aggregates' stream types and the stored names of the chosen types.
 *
 * @since 0.4.0
 * @category decoding
 */
export const filter = <A extends Aggregate.Aggregate.Any>(
  options: {
    readonly aggregates: ReadonlyArray<A>
    readonly types?: ReadonlyArray<Aggregate.Aggregate.EventType<A>> | undefined
  }
): { readonly streamTypes: ReadonlyArray<string>; readonly eventTypes?: ReadonlyArray<string> } => {
  const streamTypes = options.aggregates.map((a) => a.name)
  const types = options.types
  if (types === undefined) return { streamTypes }
  const eventTypes = new Set<string>()
  for (const aggregate of options.aggregates) {
    const own = types.filter((t) => aggregate.codec.resolve(t) === t)
    for (const name of aggregate.codec.storedNames(own)) eventTypes.add(name)
  }
  return { streamTypes, eventTypes: [...eventTypes] }
}

const feedOptions = <A extends Aggregate.Aggregate.Any>(
  options: FeedOptions<A, Aggregate.Aggregate.EventType<A>, UnknownPolicy>
): EventStore.ReadAllOptions => ({
  ...filter(options),
  ...(options.after === undefined ? {} : { after: options.after }),
  ...(options.since === undefined ? {} : { since: options.since }),
  ...(options.tenantId === undefined ? {} : { tenantId: options.tenantId }),
  ...(options.allTenants === undefined ? {} : { allTenants: options.allTenants })
})

const noAggregates = Effect.fail(new Errors.InvalidInput({ reason: "EventQuery: aggregates must not be empty" }))

/**
 * One page of the feed for the given aggregates, decoded, in feed order. `limit` counts stored events read (before
 * a `"skip"`), so paging from the last event's position never misses one.
 *
 * @since 0.4.0
 * @category reads
 */
export const readAll = <
  A extends Aggregate.Aggregate.Any,
  const Types extends Aggregate.Aggregate.EventType<A> = Aggregate.Aggregate.EventType<A>,
  Policy extends UnknownPolicy = "fail"
>(
  options: FeedOptions<A, Types, Policy> & { readonly limit?: number | undefined }
): Effect.Effect<
  {
    readonly events: ReadonlyArray<Item<Selected<A, Types>, Policy>>
    /** Where the next page starts: the position of the last stored event read (`after` when none). */
    readonly next: Position.Position
  },
  FeedError,
  EventStore.EventStore
> =>
  options.aggregates.length === 0 ? noAggregates : Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const page = yield* store.readAll({
      ...feedOptions(options),
      ...(options.limit === undefined ? {} : { limit: options.limit })
    })
    const decode = decoder<A, Policy>(options.aggregates, options.unknown)
    const events: Array<Item<Selected<A, Types>, Policy>> = []
    for (const recorded of page) {
      const item = yield* decode(recorded)
      if (Option.isSome(item)) events.push(item.value as Item<Selected<A, Types>, Policy>)
    }
    const last = page[page.length - 1]
    return { events, next: last ? RecordedEvent.position(last) : (options.after ?? Position.start) }
  })

/**
 * The feed for the given aggregates, decoded, from `after` to the current end, read in pages.
 *
 * @since 0.4.0
 * @category reads
 */
export const streamAll = <
  A extends Aggregate.Aggregate.Any,
  const Types extends Aggregate.Aggregate.EventType<A> = Aggregate.Aggregate.EventType<A>,
  Policy extends UnknownPolicy = "fail"
>(
  options: FeedOptions<A, Types, Policy> & { readonly pageSize?: number | undefined }
): Stream.Stream<Item<Selected<A, Types>, Policy>, FeedError, EventStore.EventStore> =>
  options.aggregates.length === 0 ? Stream.fromEffect(noAggregates) : EventStore.streamAll({
    ...feedOptions(options),
    ...(options.pageSize === undefined ? {} : { pageSize: options.pageSize })
  }).pipe(
    Stream.mapEffect(decoder<A, Policy>(options.aggregates, options.unknown)),
    Stream.filterMap((item) => item as Option.Option<Item<Selected<A, Types>, Policy>>)
  )

/**
 * A subscription's filter and handler for the given aggregates' events, decoded: spread it into the options of
 * `Subscription.make` or `PgProjection.run`. Under `"fail"` an undecodable event fails the handler with
 * `EventDecodeError`, which the subscription's error policy then retries, parks or stops on; under `"skip"` it is
 * counted, logged and acknowledged; under `"raw"` the handler gets it as `Undecoded`.
 *
 * ```ts
 * PgProjection.run({
 *   id: "order-prices",
 *   ...EventQuery.handler({ aggregates: [Order], types: ["PriceChanged"] }, ({ event, recorded }) => ...)
 * })
 * ```
 *
 * @since 0.4.0
 * @category subscriptions
 */
export const handler = <
  A extends Aggregate.Aggregate.Any,
  E,
  R,
  const Types extends Aggregate.Aggregate.EventType<A> = Aggregate.Aggregate.EventType<A>,
  Policy extends UnknownPolicy = "fail"
>(
  options: {
    readonly aggregates: ReadonlyArray<A>
    readonly types?: ReadonlyArray<Types> | undefined
    readonly unknown?: Policy | undefined
  },
  f: (item: Item<Selected<A, Types>, Policy>) => Effect.Effect<void, E, R>
): {
  readonly streamTypes: ReadonlyArray<string>
  readonly eventTypes?: ReadonlyArray<string>
  readonly handler: (event: RecordedEvent.RecordedEvent) => Effect.Effect<void, E | Errors.EventDecodeError, R>
} => {
  if (options.aggregates.length === 0) throw new TypeError("EventQuery.handler: aggregates must not be empty")
  const decode = decoder<A, Policy>(options.aggregates, options.unknown)
  return {
    ...filter(options),
    handler: (recorded) =>
      Effect.flatMap(
        decode(recorded),
        (item) => Option.isSome(item) ? f(item.value as Item<Selected<A, Types>, Policy>) : Effect.void
      )
  }
}
