/**
 * An aggregate binds a stream type to a decider and the Schemas of its events (and optionally its state). It encodes
 * events on write and decodes them on read, so the store only ever sees the encoded form.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Schema from "effect/Schema"
import type * as Decider from "./Decider.js"
import type * as Errors from "./Errors.js"
import * as EventCodec from "./EventCodec.js"
import type * as RecordedEvent from "./RecordedEvent.js"

/**
 * When and how snapshots of the state are taken.
 *
 * @since 0.1.0
 * @category models
 */
export interface SnapshotPolicy {
  /** Take a snapshot whenever an append crosses a multiple of this many events. */
  readonly every: number
  /** Bump it when the state's Schema changes: older snapshots are then ignored. */
  readonly schemaVersion: number
  /** "inline" (default) writes before `handle` returns, "background" forks the write, "manual" only on request. */
  readonly mode?: "inline" | "background" | "manual" | undefined
}

/**
 * An encoded event ready for the store: its type and payload.
 *
 * @since 0.1.0
 * @category models
 */
export interface EncodedEvent {
  readonly type: string
  readonly payload: unknown
  /** The type's current version (see `EventCodec`), written to the event's `schemaVersion`. */
  readonly schemaVersion: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Aggregate<
  State,
  Command,
  Event extends { readonly _tag: string },
  DomainError = never,
  EventEncoded extends { readonly _tag: string } = { readonly _tag: string },
  StateEncoded = unknown
> {
  /** The stream type of every instance. */
  readonly name: string
  readonly decider: Decider.Decider<State, Command, Event, DomainError>
  readonly events: Schema.Schema<Event, EventEncoded>
  /** The events' Schema with their versions and former names: encodes at the current version, upcasts on read. */
  readonly codec: EventCodec.EventCodec<Event, EventEncoded>
  readonly state: Schema.Schema<State, StateEncoded> | undefined
  readonly snapshot: SnapshotPolicy | undefined
  readonly encodeEvent: (event: Event) => Effect.Effect<EncodedEvent, Errors.EventEncodeError>
  /** Upcasts a stored event of any version or former name to its current type and decodes it. */
  readonly decodeEvent: (event: RecordedEvent.RecordedEvent) => Effect.Effect<Event, Errors.EventDecodeError>
  /** The same as `decodeEvent`, synchronously: folding thousands of events should not pay for an Effect each. */
  readonly decodeEventEither: (event: RecordedEvent.RecordedEvent) => Either.Either<Event, Errors.EventDecodeError>
}

/**
 * @since 0.1.0
 * @category models
 */
export declare namespace Aggregate {
  /** Any aggregate. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  export type Any = Aggregate<any, any, any, any, any, any>
  /** The event union of an aggregate. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  export type Event<A> = A extends Aggregate<any, any, infer E, any, any, any> ? E : never
  /** The event type names (tags) of an aggregate. */
  export type EventType<A> = Event<A>["_tag"]
  /** The state of an aggregate. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  export type State<A> = A extends Aggregate<infer S, any, any, any, any, any> ? S : never
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = <
  State,
  Command,
  Event extends { readonly _tag: string },
  DomainError,
  EventEncoded extends { readonly _tag: string },
  StateEncoded = unknown
>(options: {
  readonly name: string
  readonly decider: Decider.Decider<State, Command, Event, DomainError>
  readonly events: Schema.Schema<Event, EventEncoded>
  /**
   * How the events' shapes changed over time: per type, its upcasters from each older version and its former names
   * (see `EventCodec`). Every read path (loads, typed reads, typed subscriptions) upcasts through it.
   */
  readonly evolution?: EventCodec.Evolution<Event> | undefined
  readonly state?: Schema.Schema<State, StateEncoded> | undefined
  readonly snapshot?: SnapshotPolicy | undefined
}): Aggregate<State, Command, Event, DomainError, EventEncoded, StateEncoded> => {
  if (options.name.length === 0) throw new TypeError("Aggregate.make: name must not be empty")
  if (options.snapshot) {
    if (!options.state) throw new TypeError(`Aggregate.make(${options.name}): a snapshot policy needs a state Schema`)
    if (!Number.isSafeInteger(options.snapshot.every) || options.snapshot.every < 1) {
      throw new TypeError(`Aggregate.make(${options.name}): snapshot.every must be a positive integer`)
    }
  }
  // Compiled once: decoding is on the hot path of every load.
  const codec = EventCodec.make(options.events, options.evolution, options.name)
  const encodeEvent = (event: Event): Effect.Effect<EncodedEvent, Errors.EventEncodeError> =>
    Either.match(codec.encode(event), { onLeft: Effect.fail, onRight: Effect.succeed })

  return {
    name: options.name,
    decider: options.decider,
    events: options.events,
    codec,
    state: options.state,
    snapshot: options.snapshot,
    encodeEvent,
    decodeEvent: (event) => Either.match(codec.decode(event), { onLeft: Effect.fail, onRight: Effect.succeed }),
    decodeEventEither: codec.decode
  }
}
