/** @internal Loading an aggregate's state: read its stream (after the latest usable snapshot), decode, fold. */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import type * as Aggregate from "../Aggregate.js"
import * as Errors from "../Errors.js"
import type * as EventStore from "../EventStore.js"
import * as SnapshotStore from "../SnapshotStore.js"
import type * as StreamLifecycle from "../StreamLifecycle.js"
import type * as Tenant from "../Tenant.js"
import * as streamColumns from "./streamColumns.js"
import * as telemetry from "./telemetry.js"

/** @internal What a load can fail with. */
export type Failure =
  | Errors.EventDecodeError
  | Errors.StreamArchived
  | Errors.StreamDeleted
  | Errors.StreamTruncated
  | Errors.InvalidInput
  | Tenant.TenantRequired
  | Errors.StoreError

/**
 * @internal Where a stream whose first stored event is not version 1 begins: a stream recreated after a soft delete
 * begins after its `origin` (see `StreamLifecycle`); any other gap means its older events were deleted, and its state
 * cannot be rebuilt (`StreamTruncated`).
 */
export type Origin = (
  aggregate: Aggregate.Aggregate.Any,
  id: string,
  firstVersion: number | undefined
) => Effect.Effect<number, Failure>

/** @internal The `Origin` of a stream, from the lifecycle service when there is one. */
export const originOf =
  (lifecycle: Option.Option<StreamLifecycle.StreamLifecycle["Type"]>): Origin => (aggregate, id, firstVersion) => {
    const truncated = new Errors.StreamTruncated({
      streamType: aggregate.name,
      streamId: id,
      ...(firstVersion === undefined ? {} : { firstVersion })
    })
    if (firstVersion === undefined || Option.isNone(lifecycle)) return Effect.fail(truncated)
    return Effect.flatMap(
      lifecycle.value.info({ streamType: aggregate.name, streamId: id }),
      (info) =>
        Option.isSome(info) && info.value.origin > 0 && firstVersion === info.value.origin + 1
          ? Effect.succeed(info.value.origin)
          : Effect.fail(truncated)
    )
  }

/** @internal */
export interface Loaded<State> {
  readonly state: State
  readonly version: number
}

/**
 * Whether the aggregate decodes with its codec (as `Aggregate.make` builds it): then a fold decodes from the stored
 * fields, and needs whole events only for upcasters. A hand-made aggregate with a decoder of its own gets whole events.
 */
const decodesWithCodec = (aggregate: Aggregate.Aggregate.Any): boolean =>
  aggregate.decodeEventEither === aggregate.codec.decode

/** Whether a fold needs whole events: for a decoder of the aggregate's own, or an upcaster (maybe: unknown types). */
const needsEvents = (aggregate: Aggregate.Aggregate.Any): boolean => {
  if (!decodesWithCodec(aggregate)) return true
  const codec = aggregate.codec
  return codec.types.length === 0 || codec.types.some((type: string) => codec.versionOf(type) > 1)
}

/** The fields of the event being decoded, overwritten for each: the codec reads them only while it decodes. */
interface Cursor {
  streamType: string
  streamId: string
  version: number
  type: string
  schemaVersion: number
  payload: unknown
}

/**
 * @internal Decodes and folds the events at indexes `start` to `end` (excluded) of a read: one step per event, from
 * the columns straight to `evolve`, with no `RecordedEvent` unless an upcaster needs one.
 */
export const foldColumns = <State>(
  aggregate: Aggregate.Aggregate.Any,
  id: string,
  columns: EventStore.StreamColumns,
  initial: Loaded<State>,
  start = 0,
  end = columns.versions.length
): Either.Either<Loaded<State>, Errors.EventDecodeError> => {
  const { codec, decider } = aggregate
  const { event, payloads, schemaVersions, types, versions } = columns
  const own = event !== undefined && !decodesWithCodec(aggregate)
  const cursor: Cursor = {
    streamType: aggregate.name,
    streamId: id,
    version: 0,
    type: "",
    schemaVersion: 0,
    payload: null
  }
  let index = start
  const whole = event === undefined ? undefined : () => event(index)
  let state = initial.state
  let version = initial.version
  for (; index < end; index++) {
    let decoded: Either.Either<unknown, Errors.EventDecodeError>
    if (own) {
      decoded = aggregate.decodeEventEither(event(index))
    } else {
      cursor.version = versions[index]!
      cursor.type = types[index]!
      cursor.schemaVersion = schemaVersions[index]!
      cursor.payload = payloads[index]
      decoded = codec.decodeStored(cursor, whole)
    }
    if (Either.isLeft(decoded)) return Either.left(decoded.left)
    state = decider.evolve(state, decoded.right)
    version = versions[index]!
  }
  return Either.right({ state, version })
}

/** Reads the stream's events from `fromVersion` as columns (`exists: false` when there is no such stream). */
const readColumns = (
  store: EventStore.EventStore["Type"],
  aggregate: Aggregate.Aggregate.Any,
  id: string,
  fromVersion: number,
  limit: number | undefined,
  recordedAt: boolean
): Effect.Effect<EventStore.StreamColumns, Failure> =>
  streamColumns.read(store, {
    streamType: aggregate.name,
    streamId: id,
    fromVersion,
    ...(limit === undefined ? {} : { limit }),
    ...(recordedAt ? { recordedAt } : {}),
    ...(needsEvents(aggregate) ? { events: true } : {})
  })

const fromEither = <A, E>(either: Either.Either<A, E>): Effect.Effect<A, E> =>
  Either.match(either, { onLeft: Effect.fail, onRight: Effect.succeed })

/** @internal Folds the events after `from`, up to version `until` when given (the state a past command left). */
export const load = <State>(
  store: EventStore.EventStore["Type"],
  aggregate: Aggregate.Aggregate.Any,
  id: string,
  from: Loaded<State> = { state: aggregate.decider.initialState, version: 0 },
  until?: number,
  origin: Origin = originOf(Option.none())
): Effect.Effect<
  Loaded<State>,
  Failure
> => {
  if (until !== undefined && until <= from.version) return Effect.succeed(from)
  return Effect.flatMap(
    readColumns(store, aggregate, id, from.version + 1, until === undefined ? undefined : until - from.version, false),
    (columns): Effect.Effect<Loaded<State>, Failure> => {
      if (!columns.exists) return Effect.succeed(from)
      // The stream exists but does not continue from where the fold stands: it was recreated after a soft delete,
      // or its older events were deleted.
      const first: number | undefined = columns.versions[0]
      if (first === undefined ? from.version === 0 : first !== from.version + 1) {
        if (from.version !== 0) {
          return Effect.fail(
            new Errors.StreamTruncated({
              streamType: aggregate.name,
              streamId: id,
              ...(first === undefined ? {} : { firstVersion: first })
            })
          )
        }
        return Effect.flatMap(
          origin(aggregate, id, first),
          (version) => fromEither(foldColumns<State>(aggregate, id, columns, { ...from, version }))
        )
      }
      return fromEither(foldColumns<State>(aggregate, id, columns, from))
    }
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

const hitsOf = telemetry.taggedBy(SnapshotStore.hits, "aggregate")
const countHit = (aggregate: Aggregate.Aggregate.Any) => Metric.increment(hitsOf(aggregate.name))

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
  until?: number,
  origin?: Origin
): Effect.Effect<
  Loaded<State>,
  Failure
> =>
  Effect.flatMap(usableSnapshot(snapshots, aggregate, id), (snapshot) => {
    const initial = { state: aggregate.decider.initialState, version: 0 }
    if (Option.isNone(snapshot) || (until !== undefined && snapshot.value.version > until)) {
      return load<State>(store, aggregate, id, initial, until, origin)
    }
    const from = snapshot.value
    return Effect.flatMap(
      readColumns(
        store,
        aggregate,
        id,
        from.version,
        until === undefined ? undefined : until - from.version + 1,
        false
      ),
      (columns) =>
        columns.versions[0] === from.version
          ? Effect.zipRight(countHit(aggregate), fromEither(foldColumns<State>(aggregate, id, columns, from, 1)))
          : Effect.zipRight(
            countMiss(aggregate, "ahead-of-stream"),
            load<State>(store, aggregate, id, initial, until, origin)
          )
    )
  })

/** @internal Events read per round trip by a point-in-time load, which stops at the first event after its time. */
const AS_OF_PAGE = 1000

/**
 * @internal Folds the events after `from` recorded at or before `asOf`, stopping at the first one recorded after it:
 * the longest prefix of the stream recorded by then. With `prove`, the first event read must be the one at
 * `from.version` (a snapshot's), recorded by `asOf`; None when it is not, so the caller replays from the start.
 */
const foldAsOf = <State>(
  store: EventStore.EventStore["Type"],
  aggregate: Aggregate.Aggregate.Any,
  id: string,
  from: Loaded<State>,
  asOf: Date,
  prove: boolean,
  origin: Origin
): Effect.Effect<
  Option.Option<Loaded<State>>,
  Failure
> => {
  const limit = asOf.getTime()
  const page = (loaded: Loaded<State>, first: boolean): Effect.Effect<
    Option.Option<Loaded<State>>,
    Failure
  > =>
    Effect.flatMap(
      readColumns(store, aggregate, id, first && prove ? loaded.version : loaded.version + 1, AS_OF_PAGE, true),
      (columns) => {
        const versions = columns.versions
        const head: number | undefined = versions[0]
        if (first && !prove && loaded.version === 0 && head !== undefined && head !== 1) {
          return Effect.flatMap(origin(aggregate, id, head), (version) => page({ ...loaded, version: version }, true))
        }
        let start = 0
        if (first && prove) {
          if (head === undefined || head !== loaded.version || columns.recordedAt[0]!.getTime() > limit) {
            return Effect.succeedNone
          }
          start = 1
        }
        let cut = start
        while (cut < versions.length && columns.recordedAt[cut]!.getTime() <= limit) cut++
        const folded = foldColumns<State>(aggregate, id, columns, loaded, start, cut)
        if (Either.isLeft(folded)) return Effect.fail(folded.left)
        return cut === versions.length && versions.length === AS_OF_PAGE
          ? page(folded.right, false)
          : Effect.succeedSome(folded.right)
      }
    )
  return page(from, true)
}

/**
 * @internal The state as of a time: the fold of the longest prefix of the stream recorded at or before `asOf`.
 * Starts from the latest usable snapshot when its own event was recorded by then.
 */
export const loadAsOf = <State>(
  store: EventStore.EventStore["Type"],
  snapshots: Snapshots<State> | undefined,
  aggregate: Aggregate.Aggregate.Any,
  id: string,
  asOf: Date,
  origin: Origin = originOf(Option.none())
): Effect.Effect<
  Loaded<State>,
  Failure
> => {
  const initial: Loaded<State> = { state: aggregate.decider.initialState, version: 0 }
  const replay = Effect.map(
    foldAsOf(store, aggregate, id, initial, asOf, false, origin),
    Option.getOrElse(() => initial)
  )
  if (snapshots === undefined) return replay
  return Effect.flatMap(
    usableSnapshot(snapshots, aggregate, id),
    (snapshot) =>
      Option.isNone(snapshot) ? replay : Effect.flatMap(
        foldAsOf(store, aggregate, id, snapshot.value, asOf, true, origin),
        Option.match({ onNone: () => replay, onSome: (loaded) => Effect.as(countHit(aggregate), loaded) })
      )
  )
}
