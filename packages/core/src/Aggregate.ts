/**
 * An aggregate binds a stream type to a decider and the Schemas of its events (and optionally its state). It encodes
 * events on write and decodes them on read, so the store only ever sees the encoded form.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type * as Decider from "./Decider.js"
import * as Errors from "./Errors.js"
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
  readonly state: Schema.Schema<State, StateEncoded> | undefined
  readonly snapshot: SnapshotPolicy | undefined
  readonly encodeEvent: (event: Event) => Effect.Effect<EncodedEvent, Errors.EventEncodeError>
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
}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

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
  const encode = Schema.encodeEither(options.events)
  const decode = Schema.decodeUnknownEither(options.events)
  const name = options.name

  const encodeEvent = (event: Event): Effect.Effect<EncodedEvent, Errors.EventEncodeError> => {
    const result = encode(event)
    if (Either.isLeft(result)) {
      return Effect.fail(
        new Errors.EventEncodeError({
          streamType: name,
          type: String(event?._tag),
          issue: ParseResult.TreeFormatter.formatErrorSync(result.left)
        })
      )
    }
    const { _tag, ...payload } = result.right
    return Effect.succeed({ type: _tag, payload })
  }

  const decodeEventEither = (event: RecordedEvent.RecordedEvent): Either.Either<Event, Errors.EventDecodeError> => {
    const fail = (issue: string) =>
      Either.left(
        new Errors.EventDecodeError({
          streamType: event.streamType,
          streamId: event.streamId,
          version: event.version,
          type: event.type,
          issue
        })
      )
    if (!isRecord(event.payload)) return fail(`payload must be a JSON object, got ${JSON.stringify(event.payload)}`)
    const result = decode({ ...event.payload, _tag: event.type })
    return Either.isRight(result)
      ? Either.right(result.right)
      : fail(ParseResult.TreeFormatter.formatErrorSync(result.left))
  }

  return {
    name,
    decider: options.decider,
    events: options.events,
    state: options.state,
    snapshot: options.snapshot,
    encodeEvent,
    decodeEvent: (event) => Either.match(decodeEventEither(event), { onLeft: Effect.fail, onRight: Effect.succeed }),
    decodeEventEither
  }
}
