/**
 * Command handling for one aggregate: load (events, or snapshot plus tail) → decide → append with the expected
 * version, retrying a version `ConcurrencyConflict` on fresh state under a `Schedule`. A conflict that only a new
 * transaction can fix (`retriesTransaction`: a caller's transaction that is older than the stream's last append, or
 * a serialization failure) is handed to the caller, who retries the whole transaction.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Aggregate from "./Aggregate.js"
import * as Errors from "./Errors.js"
import * as EventMetadata from "./EventMetadata.js"
import * as EventStore from "./EventStore.js"
import * as ExpectedVersion from "./ExpectedVersion.js"
import * as loader from "./internal/load.js"
import type * as Position from "./Position.js"
import * as SnapshotStore from "./SnapshotStore.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface HandleOptions {
  /**
   * Pin the decision to what the caller saw (`Exact(n)`, `NoStream`, `StreamExists`): a mismatch fails with
   * `ConcurrencyConflict` and is not retried. `Any` (like no option) re-decides on fresh state after a conflict.
   */
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
 * What a manual `snapshot(id)` can fail with.
 *
 * @since 0.1.0
 * @category models
 */
export type SnapshotError = LoadError | SnapshotStore.SnapshotEncodeError

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
  /**
   * Snapshots the stream's current state now, whatever the policy's mode. Returns the stored snapshot, or None when
   * the stream does not exist or the store already holds one as new. Fails with `InvalidInput` when the aggregate
   * has no snapshot policy or no `SnapshotStore` is in context.
   */
  readonly snapshot: (id: string) => Effect.Effect<Option.Option<SnapshotStore.Snapshot>, SnapshotError>
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
 * Builds a handler over the `EventStore` in context. When the aggregate has a snapshot policy and a `SnapshotStore`
 * is in context, loads start from the latest usable snapshot, and an append that crosses a multiple of
 * `snapshot.every` writes one (inline before `handle` returns, or forked in "background" mode). A failed snapshot
 * write is logged and counted in `SnapshotStore.writeFailures`, never failing the command: events are the truth.
 * A background write is a daemon fiber; inside a caller's database transaction it is written inline instead, so it
 * commits or rolls back with the events it covers.
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
    const snapshotStore = yield* Effect.serviceOption(SnapshotStore.SnapshotStore)
    const policy = aggregate.snapshot
    const stateSchema = aggregate.state
    const snapshots: loader.Snapshots<State> | undefined = Option.isSome(snapshotStore) && policy && stateSchema
      ? {
        store: snapshotStore.value,
        every: policy.every,
        schemaVersion: policy.schemaVersion,
        mode: policy.mode ?? "inline",
        decodeState: Schema.decodeUnknownEither(stateSchema),
        encodeState: Schema.encodeEither(stateSchema)
      }
      : undefined
    const load = (id: string): Effect.Effect<loader.Loaded<State>, LoadError> =>
      snapshots
        ? loader.loadWithSnapshot(store, snapshots, aggregate, id)
        : loader.load(store, aggregate, id, { state: aggregate.decider.initialState, version: 0 })

    const writeSnapshot = (s: loader.Snapshots<State>, id: string, loaded: loader.Loaded<State>) =>
      Effect.gen(function*() {
        const encoded = s.encodeState(loaded.state)
        if (Either.isLeft(encoded)) {
          return yield* new SnapshotStore.SnapshotEncodeError({
            streamType,
            streamId: id,
            version: loaded.version,
            issue: ParseResult.TreeFormatter.formatErrorSync(encoded.left)
          })
        }
        return yield* s.store.save({
          streamType,
          streamId: id,
          version: loaded.version,
          schemaVersion: s.schemaVersion,
          state: encoded.right
        })
      })

    // Called once per successful command, with the versions before and after its append.
    const snapshotAfterAppend = (id: string, from: number, result: HandleResult<State, Event>) => {
      if (!snapshots || snapshots.mode === "manual" || !SnapshotStore.crosses(snapshots.every, from, result.version)) {
        return Effect.void
      }
      const write = writeSnapshot(snapshots, id, result).pipe(
        Effect.catchAllCause((cause) =>
          Cause.isInterruptedOnly(cause) ? Effect.interrupt : Effect.zipRight(
            Effect.logWarning("eventfold: snapshot write failed; the command succeeded", cause),
            Metric.increment(Metric.tagged(SnapshotStore.writeFailures, "aggregate", streamType))
          )
        ),
        Effect.annotateLogs({ streamType, streamId: id, version: result.version }),
        Effect.withSpan("CommandHandler.snapshot", {
          attributes: { streamType, streamId: id, version: result.version, mode: snapshots.mode }
        })
      )
      if (snapshots.mode !== "background") return write
      // A fork would outlive the caller's transaction on its connection: inside one, write inline with it instead.
      return Effect.flatMap(
        snapshots.store.inTransaction ?? Effect.succeed(false),
        (inTransaction) => inTransaction ? write : Effect.asVoid(Effect.forkDaemon(write))
      )
    }

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
        const handled: HandleResult<State, Event> = {
          events,
          state,
          version: result.version,
          position: Option.some(result.position)
        }
        // The state after the append is exactly the fold of events 1..version: no read is needed to snapshot it.
        return result.idempotent ? handled : yield* Effect.as(snapshotAfterAppend(id, loaded.version, handled), handled)
      })

    const handle = (id: string, command: Command, handleOptions?: HandleOptions) =>
      Effect.suspend(() => {
        // The generated id is merged last: a caller's `correlationId: undefined` must not erase it.
        const metadata = EventMetadata.merge(handleOptions?.metadata ?? EventMetadata.empty, {
          correlationId: handleOptions?.metadata?.correlationId ?? crypto.randomUUID()
        })
        const once = attempt(id, command, handleOptions, metadata)
        // A pinned version is the caller's decision; re-deciding on fresh state would betray it.
        const pinned = handleOptions?.expectedVersion
        return pinned !== undefined && pinned._tag !== "Any"
          ? once
          : once.pipe(Effect.retry({ schedule: retry, while: (e) => isConflict(e) }))
      }).pipe(Effect.withSpan("CommandHandler.handle", { attributes: { streamType, streamId: id } }))

    const snapshot = (id: string): Effect.Effect<Option.Option<SnapshotStore.Snapshot>, SnapshotError> =>
      Effect.gen(function*() {
        if (!snapshots) {
          return yield* new Errors.InvalidInput({
            reason: `CommandHandler.snapshot: aggregate ${streamType} has ${
              aggregate.snapshot ? "no SnapshotStore in context" : "no snapshot policy"
            }`
          })
        }
        const loaded = yield* load(id)
        if (loaded.version === 0) return Option.none()
        if (!(yield* writeSnapshot(snapshots, id, loaded))) return Option.none()
        const stored = yield* snapshots.store.load({ streamType, streamId: id })
        // A concurrent writer may already have replaced it with a newer one; report only our own.
        return Option.filter(
          stored,
          (s) => s.version === loaded.version && s.schemaVersion === snapshots.schemaVersion
        )
      }).pipe(Effect.withSpan("CommandHandler.snapshot", { attributes: { streamType, streamId: id, mode: "manual" } }))

    return { handle, load, snapshot }
  })

/** A version conflict is retried here, on fresh state; one that only a new transaction can fix goes to the caller. */
const isConflict = (e: unknown): boolean => e instanceof Errors.ConcurrencyConflict && !e.retriesTransaction
