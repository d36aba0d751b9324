/**
 * Command handling for one aggregate: load (events, or snapshot plus tail) → decide → append with the expected
 * version, retrying on `ConcurrencyConflict` under a `Schedule`.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type * as Aggregate from "./Aggregate.js"
import * as Errors from "./Errors.js"
import * as EventMetadata from "./EventMetadata.js"
import * as EventStore from "./EventStore.js"
import * as ExpectedVersion from "./ExpectedVersion.js"
import * as loader from "./internal/load.js"
import type * as Position from "./Position.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface HandleOptions {
  /** Pin the decision to a version the caller saw; a mismatch fails with `ConcurrencyConflict` and is not retried. */
  readonly expectedVersion?: ExpectedVersion.ExpectedVersion | undefined
  /** Metadata for every appended event. A missing correlation id is generated, one per command. */
  readonly metadata?: EventMetadata.EventMetadata | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface HandleResult<State, Event> {
  /** The events the command produced (empty when it decided nothing). */
  readonly events: ReadonlyArray<Event>
  readonly state: State
  readonly version: number
  /** The feed position of the last appended event, for read-your-writes waits. */
  readonly position: Option.Option<Position.Position>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface LoadResult<State> {
  readonly state: State
  /** 0 when the stream does not exist. */
  readonly version: number
}

/**
 * @since 0.1.0
 * @category models
 */
export type LoadError = Errors.EventDecodeError | Errors.InvalidInput | Errors.StoreError

/**
 * @since 0.1.0
 * @category models
 */
export type HandleError<DomainError> =
  | DomainError
  | LoadError
  | EventStore.AppendError
  | Errors.EventEncodeError

/**
 * @since 0.1.0
 * @category models
 */
export interface CommandHandler<State, Command, Event, DomainError> {
  readonly handle: (
    id: string,
    command: Command,
    options?: HandleOptions
  ) => Effect.Effect<HandleResult<State, Event>, HandleError<DomainError>>
  readonly load: (id: string) => Effect.Effect<LoadResult<State>, LoadError>
}

/**
 * Retry a conflict after 5 ms, growing to at most 200 ms with jitter, 20 times at most.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultRetry: Schedule.Schedule<unknown, unknown> = Schedule.exponential("5 millis").pipe(
  Schedule.union(Schedule.spaced("200 millis")),
  Schedule.jittered,
  Schedule.intersect(Schedule.recurs(20))
)

/**
 * Builds a handler over the `EventStore` in context.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <
  State,
  Command,
  Event extends { readonly _tag: string },
  DomainError,
  EventEncoded extends { readonly _tag: string },
  StateEncoded
>(
  aggregate: Aggregate.Aggregate<State, Command, Event, DomainError, EventEncoded, StateEncoded>,
  options?: { readonly retry?: Schedule.Schedule<unknown, unknown> | undefined }
): Effect.Effect<CommandHandler<State, Command, Event, DomainError>, never, EventStore.EventStore> =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const retry = options?.retry ?? defaultRetry
    const streamType = aggregate.name
    const load = (id: string) =>
      loader.load(store, aggregate, id, { state: aggregate.decider.initialState, version: 0 })

    const attempt = (
      id: string,
      command: Command,
      handleOptions: HandleOptions | undefined,
      metadata: EventMetadata.EventMetadata
    ) =>
      Effect.gen(function*() {
        const loaded = yield* load(id)
        const pinned = handleOptions?.expectedVersion
        if (pinned && !ExpectedVersion.matches(pinned, loaded.version)) {
          return yield* new Errors.ConcurrencyConflict({
            streamType,
            streamId: id,
            expected: pinned,
            actual: loaded.version
          })
        }
        const events = yield* aggregate.decider.decide(command, loaded.state)
        if (events.length === 0) {
          return { events, state: loaded.state, version: loaded.version, position: Option.none() }
        }
        const encoded = yield* Effect.forEach(events, aggregate.encodeEvent)
        const result = yield* store.append({
          streamType,
          streamId: id,
          expectedVersion: loaded.version === 0 ? ExpectedVersion.NoStream : ExpectedVersion.Exact(loaded.version),
          events: encoded.map((e) => ({ type: e.type, payload: e.payload, metadata }))
        })
        let state = loaded.state
        for (const event of events) state = aggregate.decider.evolve(state, event)
        return { events, state, version: result.version, position: Option.some(result.position) }
      })

    const handle = (id: string, command: Command, handleOptions?: HandleOptions) =>
      Effect.suspend(() => {
        const metadata = EventMetadata.merge(
          { correlationId: handleOptions?.metadata?.correlationId ?? crypto.randomUUID() },
          handleOptions?.metadata ?? {}
        )
        const once = attempt(id, command, handleOptions, metadata)
        // A pinned version is the caller's decision; re-deciding on fresh state would betray it.
        return handleOptions?.expectedVersion
          ? once
          : once.pipe(Effect.retry({ schedule: retry, while: (e) => isConflict(e) }))
      }).pipe(Effect.withSpan("CommandHandler.handle", { attributes: { streamType, streamId: id } }))

    return { handle, load }
  })

const isConflict = (e: unknown): boolean =>
  typeof e === "object" && e !== null && "_tag" in e && e._tag === "ConcurrencyConflict"
