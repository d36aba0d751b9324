/** @internal Loading an aggregate's state: read its stream, decode each event, fold. */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Aggregate from "../Aggregate.js"
import type * as Errors from "../Errors.js"
import type * as EventStore from "../EventStore.js"
import type * as RecordedEvent from "../RecordedEvent.js"

/** @internal */
export interface Loaded<State> {
  readonly state: State
  readonly version: number
}

/** @internal */
export const foldEvents = <State>(
  aggregate: Aggregate.Aggregate.Any,
  events: ReadonlyArray<RecordedEvent.RecordedEvent>,
  initial: Loaded<State>
): Either.Either<Loaded<State>, Errors.EventDecodeError> => {
  let state = initial.state
  let version = initial.version
  for (const event of events) {
    const decoded = aggregate.decodeEventEither(event)
    if (Either.isLeft(decoded)) return Either.left(decoded.left)
    state = aggregate.decider.evolve(state, decoded.right)
    version = event.version
  }
  return Either.right({ state, version })
}

/** @internal */
export const load = <State>(
  store: EventStore.EventStore["Type"],
  aggregate: Aggregate.Aggregate.Any,
  id: string,
  from: Loaded<State> = { state: aggregate.decider.initialState, version: 0 }
): Effect.Effect<Loaded<State>, Errors.EventDecodeError | Errors.InvalidInput | Errors.StoreError> =>
  store.readStream({ streamType: aggregate.name, streamId: id, fromVersion: from.version + 1 }).pipe(
    Effect.catchTag("StreamNotFound", () => Effect.succeed([])),
    Effect.flatMap((events) => foldEvents(aggregate, events, from))
  )
