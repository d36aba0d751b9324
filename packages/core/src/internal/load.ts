/** @internal Loading an aggregate's state: read its stream (after the latest usable snapshot), decode, fold. */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import type * as Aggregate from "../Aggregate.js"
import type * as Errors from "../Errors.js"
import type * as EventStore from "../EventStore.js"
import type * as RecordedEvent from "../RecordedEvent.js"
import * as SnapshotStore from "../SnapshotStore.js"
import type * as Tenant from "../Tenant.js"

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

/** @internal Folds the events after `from`, up to version `until` when given (the state a past command left). */
export const load = <State>(
  store: EventStore.EventStore["Type"],
  aggregate: Aggregate.Aggregate.Any,
  id: string,
  from: Loaded<State> = { state: aggregate.decider.initialState, version: 0 },
  until?: number
): Effect.Effect<
  Loaded<State>,
  Errors.EventDecodeError | Errors.InvalidInput | Tenant.TenantRequired | Errors.StoreError
> => {
  if (until !== undefined && until <= from.version) return Effect.succeed(from)
  return store.readStream({
    streamType: aggregate.name,
    streamId: id,
    fromVersion: from.version + 1,
    ...(until === undefined ? {} : { limit: until - from.version })
  }).pipe(
    Effect.catchTag("StreamNotFound", () => Effect.succeed([])),
    Effect.flatMap((events) => foldEvents(aggregate, events, from))
  )
}

/** @internal What a load needs to use snapshots: the store, the policy and the aggregate's compiled state codec. */
export interface Snapshots<State> {
  readonly store: SnapshotStore.SnapshotStore["Type"]
  readonly every: number
  readonly schemaVersion: number
  readonly mode: "inline" | "background" | "manual"
  readonly decodeState: (u: unknown) => Either.Either<State, ParseResult.ParseError>
  readonly encodeState: (state: State) => Either.Either<unknown, ParseResult.ParseError>
}

const countMiss = (aggregate: Aggregate.Aggregate.Any, reason: SnapshotStore.MissReason) =>
  Metric.increment(
    Metric.tagged(Metric.tagged(SnapshotStore.misses, "aggregate", aggregate.name), "reason", reason)
  )

/**
 * @internal The latest usable snapshot, or none. A snapshot of another schema version, or one that fails to decode,
 * or one the store cannot read, is a miss: counted, and the load replays events instead. Snapshots are a cache.
 */
const usableSnapshot = <State>(
  snapshots: Snapshots<State>,
  aggregate: Aggregate.Aggregate.Any,
  id: string
): Effect.Effect<Option.Option<Loaded<State>>> =>
  snapshots.store.load({ streamType: aggregate.name, streamId: id }).pipe(
    Effect.matchCauseEffect({
      onFailure: (cause) =>
        Cause.isInterruptedOnly(cause)
          ? Effect.interrupt
          // No tenant: not a snapshot problem; the read that follows fails with the same TenantRequired.
          : Cause.failureOption(cause).pipe(Option.exists((e) => e._tag === "TenantRequired"))
          ? Effect.succeedNone
          : Effect.as(
            Effect.zipRight(
              Effect.logWarning("eventfold: cannot read the snapshot; replaying events", cause),
              countMiss(aggregate, "read-error")
            ),
            Option.none()
          ),
      onSuccess: Option.match({
        onNone: () => Effect.succeedNone,
        onSome: (snapshot) => {
          if (snapshot.schemaVersion !== snapshots.schemaVersion) {
            return Effect.as(countMiss(aggregate, "schema-version"), Option.none())
          }
          const decoded = snapshots.decodeState(snapshot.state)
          if (Either.isLeft(decoded)) {
            return Effect.as(
              Effect.zipRight(
                Effect.logWarning(
                  `eventfold: the snapshot at version ${snapshot.version} does not decode; replaying events`,
                  ParseResult.TreeFormatter.formatErrorSync(decoded.left)
                ),
                countMiss(aggregate, "decode")
              ),
              Option.none()
            )
          }
          return Effect.succeedSome({ state: decoded.right, version: snapshot.version })
        }
      })
    }),
    Effect.annotateLogs({ streamType: aggregate.name, streamId: id })
  )

/**
 * @internal Loads through the latest usable snapshot, then only the events after it (up to version `until` when
 * given; a snapshot past it is not used). The tail is read from the snapshot's own version, so one extra row proves
 * the stream really reaches it; a snapshot ahead of the stream (a stream reset, a corrupt row) is a miss and the load
 * replays events.
 */
export const loadWithSnapshot = <State>(
  store: EventStore.EventStore["Type"],
  snapshots: Snapshots<State>,
  aggregate: Aggregate.Aggregate.Any,
  id: string,
  until?: number
): Effect.Effect<
  Loaded<State>,
  Errors.EventDecodeError | Errors.InvalidInput | Tenant.TenantRequired | Errors.StoreError
> =>
  Effect.flatMap(usableSnapshot(snapshots, aggregate, id), (snapshot) => {
    const initial = { state: aggregate.decider.initialState, version: 0 }
    if (Option.isNone(snapshot) || (until !== undefined && snapshot.value.version > until)) {
      return load<State>(store, aggregate, id, initial, until)
    }
    const from = snapshot.value
    return store.readStream({
      streamType: aggregate.name,
      streamId: id,
      fromVersion: from.version,
      ...(until === undefined ? {} : { limit: until - from.version + 1 })
    }).pipe(
      Effect.catchTag("StreamNotFound", () => Effect.succeed([])),
      Effect.flatMap((events) =>
        events[0]?.version === from.version
          ? foldEvents(aggregate, events.slice(1), from)
          : Effect.zipRight(countMiss(aggregate, "ahead-of-stream"), load<State>(store, aggregate, id, initial, until))
      )
    )
  })
