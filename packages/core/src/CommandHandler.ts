/**
 * Command handling for one aggregate: load (events, or snapshot plus tail) → decide → append with the expected
 * version, retrying a version `ConcurrencyConflict` on fresh state under a `Schedule`. A conflict that only a new
 * transaction can fix (`retriesTransaction`: a caller's transaction that is older than the stream's last append, or
 * a serialization failure) is handed to the caller, who retries the whole transaction.
 *
 * With an `idempotencyKey`, a command is applied once however often it is repeated (a client's retry after a
 * timeout, a redelivered message): its event ids are derived from the key, and a repeat returns the first result.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import type * as MetricKeyType from "effect/MetricKeyType"
import type * as MetricLabel from "effect/MetricLabel"
import type * as MetricState from "effect/MetricState"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Tracer from "effect/Tracer"
import type * as Aggregate from "./Aggregate.js"
import * as Errors from "./Errors.js"
import * as EventMetadata from "./EventMetadata.js"
import * as EventStore from "./EventStore.js"
import * as EventValidation from "./EventValidation.js"
import * as ExpectedVersion from "./ExpectedVersion.js"
import * as idempotency from "./internal/idempotency.js"
import * as keyedLock from "./internal/keyedLock.js"
import * as loader from "./internal/load.js"
import { streamKey } from "./internal/streamKey.js"
import * as telemetry from "./internal/telemetry.js"
import type * as Position from "./Position.js"
import * as RecordedEvent from "./RecordedEvent.js"
import * as SnapshotStore from "./SnapshotStore.js"
import * as StreamLifecycle from "./StreamLifecycle.js"
import * as Tenant from "./Tenant.js"

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
  /**
   * Applies the command once per key and stream, however often it is repeated (an HTTP `Idempotency-Key`, a message
   * id): the event ids are derived from the stream and the key, and a repeat, also a concurrent one, writes nothing
   * and returns the first result (its events, ids, version and position, and the state they left) without deciding
   * again. The same key with a different command fails with `IdempotencyKeyReused`. A command that decides no events
   * records nothing under its key, so a repeat decides again, on the state of its time. The events carry the key and
   * a SHA-256 of the command in their metadata headers (`eventfold-idempotency-key`, `eventfold-command-sha256`).
   */
  readonly idempotencyKey?: string | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface HandleResult<State, Event> {
  /** The events the command produced (empty when it decided nothing). */
  readonly events: ReadonlyArray<Event>
  /** The ids of the appended events, in order (empty when it decided nothing). */
  readonly eventIds: ReadonlyArray<string>
  readonly state: State
  readonly version: number
  /**
   * The feed position of the last appended event (None when it decided nothing), for read-your-writes: pass the
   * result to `Subscription.waitFor`, or combine several with `Position.latest`.
   */
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
 * Which state to load: the current one (no option), the one the stream had at a version, or the one it had at a
 * time. At most one of them.
 *
 * @since 0.4.0
 * @category models
 */
export interface LoadOptions {
  /**
   * The state after the events up to this version (all of them when the stream is shorter; 0: the initial state).
   * Uses the latest snapshot when it is at or below this version.
   */
  readonly atVersion?: number | undefined
  /**
   * The state as of this time: the fold of the longest prefix of the stream recorded at or before it (a stream's
   * events are recorded in version order, so this is every event recorded by then). Uses the latest snapshot when
   * its event was recorded by then.
   */
  readonly asOf?: Date | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export type LoadError =
  | Errors.EventDecodeError
  | Errors.StreamArchived
  | Errors.StreamDeleted
  | Errors.StreamTruncated
  | Errors.InvalidInput
  | Tenant.TenantRequired
  | Errors.StoreError

/**
 * @since 0.1.0
 * @category models
 */
export type HandleError<DomainError> =
  | DomainError
  | LoadError
  | EventStore.AppendError
  | Errors.EventEncodeError
  | Errors.IdempotencyKeyReused

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
  /** The stream's state now, or at a version or a time (`LoadOptions`). */
  readonly load: (id: string, options?: LoadOptions) => Effect.Effect<LoadResult<State>, LoadError>
  /**
   * Snapshots the stream's current state now, whatever the policy's mode. Returns the stored snapshot, or None when
   * the stream does not exist or the store already holds one as new. Fails with `InvalidInput` when the aggregate
   * has no snapshot policy.
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
 * Histogram: seconds per `handle`, tagged `aggregate` and `outcome`: `ok` (events appended), `unchanged` (decided
 * no events), `idempotent` (a repeat: the first result returned), or the error's tag (a domain error's own, or
 * `ConcurrencyConflict`, `StoreError`, ...). Its count is the number of commands.
 *
 * @since 0.4.0
 * @category metrics
 */
export const duration: Metric.Metric<
  MetricKeyType.MetricKeyType.Histogram,
  number,
  MetricState.MetricState.Histogram
> = Metric.histogram(
  "eventfold_command_duration_seconds",
  telemetry.durationBoundaries,
  "Seconds per command (load, decide, append, retries), by aggregate and outcome"
)

/**
 * Counter: commands decided again on fresh state after a `ConcurrencyConflict`, tagged `aggregate`.
 *
 * @since 0.4.0
 * @category metrics
 */
export const retries: Metric.Metric.Counter<number> = Metric.counter("eventfold_command_retries", {
  description: "Commands decided again after a ConcurrencyConflict, by aggregate",
  incremental: true
})

/**
 * Builds a handler over the `EventStore` in context. When the aggregate has a snapshot policy, loads start from the
 * latest usable snapshot in the `SnapshotStore`, and an append that crosses a multiple of `snapshot.every` writes one
 * (inline before `handle` returns, or forked in "background" mode). A failed snapshot write is logged and counted in
 * `SnapshotStore.writeFailures`, never failing the command: events are the truth. A background write is a daemon
 * fiber; inside a caller's database transaction it is written inline instead, so it commits or rolls back with the
 * events it covers. A snapshot policy with no `SnapshotStore` in context fails with `SnapshotStoreMissing`, rather
 * than replaying every stream from its first event unnoticed.
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
): Effect.Effect<
  CommandHandler<State, Command, Event, DomainError>,
  Errors.SnapshotStoreMissing,
  EventStore.EventStore
> =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const retry = options?.retry ?? defaultRetry
    // Commands for one stream in this process run one at a time, so they never conflict with each other: only
    // another process can cause a ConcurrencyConflict. Shared by every handler on this store.
    const streamLock = keyedLock.forStore(store)
    const streamType = aggregate.name
    const byAggregate = {
      duration: telemetry.taggedBy(duration, "aggregate", "outcome"),
      retries: Metric.tagged(retries, "aggregate", streamType)
    }
    const snapshotStore = yield* Effect.serviceOption(SnapshotStore.SnapshotStore)
    // Tells a stream recreated after a soft delete from a truncated one (see StreamLifecycle).
    const origin = loader.originOf(yield* Effect.serviceOption(StreamLifecycle.StreamLifecycle))
    const policy = aggregate.snapshot
    if (policy && Option.isNone(snapshotStore)) {
      return yield* new Errors.SnapshotStoreMissing({
        aggregate: streamType,
        provide: "a SnapshotStore (SnapshotStore.layerMemory or PgSnapshotStore.layer)"
      })
    }
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
    // The current state, or with `until` the state the stream had at that version.
    const load = (id: string, until?: number): Effect.Effect<loader.Loaded<State>, LoadError> =>
      snapshots
        ? loader.loadWithSnapshot(store, snapshots, aggregate, id, until, origin)
        : loader.load(store, aggregate, id, { state: aggregate.decider.initialState, version: 0 }, until, origin)

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

    // One load → decide → append. `fresh` says whether this attempt wrote its events (not an idempotent repeat).
    const attempt = (
      id: string,
      command: Command,
      handleOptions: HandleOptions | undefined,
      metadata: EventMetadata.EventMetadata,
      key: Keyed | undefined
    ): Effect.Effect<Attempted<State, Event>, HandleError<DomainError>> =>
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
          const nothing = {
            events,
            eventIds: [],
            state: loaded.state,
            version: loaded.version,
            position: Option.none()
          }
          return { handled: nothing, fresh: false }
        }
        const encoded = yield* Effect.forEach(events, aggregate.encodeEvent)
        const result = yield* store.append({
          streamType,
          streamId: id,
          expectedVersion: loaded.version === 0 ? ExpectedVersion.NoStream : ExpectedVersion.Exact(loaded.version),
          events: encoded.map((e, i) => ({
            type: e.type,
            payload: e.payload,
            schemaVersion: e.schemaVersion,
            metadata,
            ...(key ? { eventId: idempotency.eventId(key.tenantId, streamType, id, key.key, i) } : {})
          }))
        })
        let state = loaded.state
        for (const event of events) state = aggregate.decider.evolve(state, event)
        const handled: HandleResult<State, Event> = {
          events,
          eventIds: result.eventIds,
          state,
          version: result.version,
          position: Option.some(result.position)
        }
        if (result.idempotent) return { handled, fresh: false }
        // The state after the append is exactly the fold of events 1..version: no read is needed to snapshot it.
        return yield* Effect.as(snapshotAfterAppend(id, loaded.version, handled), { handled, fresh: true })
      })

    // The result a keyed command already has in the stream: its events read back by their derived ids, and the
    // state they left. None when the key wrote nothing yet; `IdempotencyKeyReused` when another command wrote them.
    const firstResult = (
      id: string,
      key: Keyed
    ): Effect.Effect<Option.Option<HandleResult<State, Event>>, HandleError<DomainError>> =>
      Effect.gen(function*() {
        const found = yield* idempotency.findKeyed(store, { tenantId: key.tenantId, streamType, streamId: id }, key.key)
        if (Option.isNone(found) || found.value.length === 0) return Option.none<HandleResult<State, Event>>()
        const recorded = found.value
        if (recorded[0]!.metadata.headers?.[idempotency.commandHeader] !== key.fingerprint) {
          return yield* new Errors.IdempotencyKeyReused({ streamType, streamId: id, idempotencyKey: key.key })
        }
        const last = recorded[recorded.length - 1]!
        const events = yield* Effect.forEach(recorded, aggregate.decodeEvent)
        const { state } = yield* load(id, last.version)
        return Option.some({
          events,
          eventIds: recorded.map((e) => e.eventId),
          state,
          version: last.version,
          position: Option.some(RecordedEvent.position(last))
        })
      })

    // A keyed command is decided only while its key has written nothing. Any outcome but a fresh append (an
    // idempotent or duplicate append, a failed or empty decision on the newer state a concurrent repeat left, a
    // conflict) may mean a repeat won the race: the stream is asked once more, and its first result wins.
    const keyedAttempt = (
      id: string,
      command: Command,
      handleOptions: HandleOptions | undefined,
      metadata: EventMetadata.EventMetadata,
      key: Keyed
    ): Effect.Effect<Attempted<State, Event>, HandleError<DomainError>> => {
      const repeat = (handled: HandleResult<State, Event>) => Effect.succeed({ handled, fresh: false })
      // A failure of this second look reports the original outcome, unless it proves the key was reused.
      const orFirst = (otherwise: Effect.Effect<Attempted<State, Event>, HandleError<DomainError>>) =>
        Effect.flatMap(
          Effect.catchAll(
            firstResult(id, key),
            (e) =>
              e instanceof Errors.IdempotencyKeyReused
                ? Effect.fail(e)
                : Effect.succeed(Option.none<HandleResult<State, Event>>())
          ),
          Option.match({ onNone: () => otherwise, onSome: repeat })
        )
      const decided = attempt(id, command, handleOptions, metadata, key).pipe(
        Effect.matchEffect({
          onFailure: (error) => orFirst(Effect.fail(error)),
          onSuccess: (attempted) => attempted.fresh ? Effect.succeed(attempted) : orFirst(Effect.succeed(attempted))
        })
      )
      return Effect.flatMap(firstResult(id, key), Option.match({ onNone: () => decided, onSome: repeat }))
    }

    const handle = (id: string, command: Command, handleOptions?: HandleOptions) =>
      Effect.suspend(() => {
        const idempotencyKey = handleOptions?.idempotencyKey
        const key = idempotencyKey === undefined
          ? undefined
          : { key: idempotencyKey, fingerprint: idempotency.fingerprint(command), tenantId: Tenant.defaultId }
        // The generated id is merged last: a caller's `correlationId: undefined` must not erase it.
        const metadata = EventMetadata.merge(handleOptions?.metadata ?? EventMetadata.empty, {
          correlationId: handleOptions?.metadata?.correlationId ?? crypto.randomUUID(),
          ...(key
            ? { headers: { [idempotency.keyHeader]: key.key, [idempotency.commandHeader]: key.fingerprint } }
            : {})
        })
        let attempts = 0
        const once = Effect.suspend(() => {
          attempts++
          return key
            ? Effect.zipRight(
              EventValidation.validateName("idempotencyKey", key.key),
              Effect.flatMap(
                Tenant.resolve(store.tenancy, "handle"),
                (tenantId) => keyedAttempt(id, command, handleOptions, metadata, { ...key, tenantId })
              )
            )
            : attempt(id, command, handleOptions, metadata, undefined)
        })
        // A pinned version is the caller's decision; re-deciding on fresh state would betray it.
        const pinned = handleOptions?.expectedVersion
        const run = pinned !== undefined && pinned._tag !== "Any"
          ? once
          : once.pipe(Effect.retry({ schedule: retry, while: (e) => isConflict(e) }))
        const done = (
          span: Tracer.Span | undefined,
          exit: Exit.Exit<Attempted<State, Event>, HandleError<DomainError>>,
          seconds: number,
          labels: ReadonlyArray<MetricLabel.MetricLabel>
        ) => {
          const outcome = exit._tag === "Failure"
            ? telemetry.outcomeOf(exit, "ok")
            : exit.value.fresh
            ? "ok"
            : exit.value.handled.events.length === 0
            ? "unchanged"
            : "idempotent"
          span?.attribute("outcome", outcome)
          span?.attribute("attempts", attempts)
          if (exit._tag === "Success") {
            span?.attribute("version", exit.value.handled.version)
            span?.attribute("events", exit.value.handled.events.length)
          }
          byAggregate.duration(streamType, outcome).unsafeUpdate(seconds, labels)
          if (attempts > 1) byAggregate.retries.unsafeUpdate(attempts - 1, labels)
        }
        // Without a valid tenant there is nothing to lock: the command fails on its first read.
        return Effect.flatMap(
          Effect.either(Tenant.resolve(store.tenancy, "handle")),
          (tenant) =>
            telemetry.measured(
              "CommandHandler.handle",
              () => ({
                attributes: Either.isRight(tenant)
                  ? {
                    streamType,
                    streamId: id,
                    tenantId: tenant.right,
                    ...(pinned ? { expectedVersion: telemetry.expectedVersionAttribute(pinned) } : {})
                  }
                  : { streamType, streamId: id }
              }),
              Either.isRight(tenant)
                ? streamLock.withLock(streamKey(tenant.right, { streamType, streamId: id }))(run)
                : run,
              done
            )
        ).pipe(Effect.map(({ handled }) => handled))
      })

    const snapshot = (id: string): Effect.Effect<Option.Option<SnapshotStore.Snapshot>, SnapshotError> =>
      Effect.gen(function*() {
        if (!snapshots) {
          return yield* new Errors.InvalidInput({
            reason: `CommandHandler.snapshot: aggregate ${streamType} has no snapshot policy`
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

    const loadAt = (id: string, at?: LoadOptions): Effect.Effect<LoadResult<State>, LoadError> => {
      if (at?.atVersion === undefined && at?.asOf === undefined) return load(id)
      if (at.atVersion !== undefined && at.asOf !== undefined) {
        return Effect.fail(new Errors.InvalidInput({ reason: "CommandHandler.load: give atVersion or asOf, not both" }))
      }
      if (at.atVersion !== undefined) {
        return Number.isSafeInteger(at.atVersion) && at.atVersion >= 0
          ? load(id, at.atVersion)
          : Effect.fail(
            new Errors.InvalidInput({
              reason: `CommandHandler.load: atVersion must be a non-negative integer, got ${at.atVersion}`
            })
          )
      }
      const asOf = at.asOf!
      return asOf instanceof Date && !Number.isNaN(asOf.getTime())
        ? loader.loadAsOf(store, snapshots, aggregate, id, asOf, origin)
        : Effect.fail(new Errors.InvalidInput({ reason: "CommandHandler.load: asOf must be a valid Date" }))
    }

    return {
      handle,
      load: (id, at) =>
        loadAt(id, at).pipe(
          Effect.withSpan("CommandHandler.load", {
            attributes: {
              streamType,
              streamId: id,
              ...(at?.atVersion === undefined ? {} : { atVersion: at.atVersion }),
              ...(at?.asOf === undefined ? {} : { asOf: String(at.asOf) })
            }
          })
        ),
      snapshot
    }
  })

/** One attempt's result; `fresh` when it wrote its events (not an idempotent repeat, not an empty decision). */
interface Attempted<State, Event> {
  readonly handled: HandleResult<State, Event>
  readonly fresh: boolean
}

/** An idempotency key and the fingerprint of the command it was given with. */
interface Keyed {
  readonly key: string
  readonly fingerprint: string
  /** The tenant the command runs in: part of its events' derived ids. */
  readonly tenantId: string
}

/** A version conflict is retried here, on fresh state; one that only a new transaction can fix goes to the caller. */
const isConflict = (e: unknown): boolean => e instanceof Errors.ConcurrencyConflict && !e.retriesTransaction
