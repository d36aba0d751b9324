/**
 * @internal What this process knows of a subscription's progress (its `Status`), and the only way its checkpoint
 * moves forward.
 *
 * A reset races the owner's batches: a batch handled before the rebuild must never move the rebuilt checkpoint. So
 * every advance runs `guarded`: serialised with `reset` in this process, and refused (ending the session, which then
 * claims again) while a reset runs or once one has completed since the session began. `waitFor` answers from the
 * stored checkpoint, the one truth across processes and resets; this process's own commits only wake it early.
 */
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import type * as CheckpointStore from "../../CheckpointStore.js"
import * as Errors from "../../Errors.js"
import * as Position from "../../Position.js"
import type * as Subscription from "../../Subscription.js"
import { SessionEnded } from "./lease.js"
import type * as Settings from "./settings.js"

/** @internal The subscription's metrics, tagged with its id. */
export interface Metrics {
  readonly lagEvents: Metric.Metric.Gauge<bigint>
  readonly lagMillis: Metric.Metric.Gauge<number>
  readonly lagSeconds: Metric.Metric.Gauge<number>
  readonly handled: Metric.Metric.Counter<number>
  readonly parked: Metric.Metric.Counter<number>
  readonly errors: Metric.Metric.Counter<number>
}

/** @internal */
export interface Progress {
  readonly status: Effect.Effect<Subscription.Status>
  readonly setPhase: (phase: Subscription.Phase) => Effect.Effect<void>
  readonly noteError: (error: string) => Effect.Effect<void>
  /** Counts a failed handler attempt, or a failed store operation of the run. */
  readonly countError: (kind: "handler" | "store") => Effect.Effect<void>
  /** After each read of the feed: the phase it leaves the subscription in, and how far behind the head it is. */
  readonly observe: (phase: "catching-up" | "live", lagEvents: bigint, lagMillis: number) => Effect.Effect<void>
  /** The run ended: idle, unless it stopped failed. */
  readonly stopped: Effect.Effect<void>
  /** How many resets completed in this process; a session reads it before it claims. */
  readonly epoch: Effect.Effect<number>
  /** Completes when no reset is running in this process. */
  readonly awaitNoReset: Effect.Effect<void>
  /** Offered after each reset, to wake a live session that waits for events. */
  readonly restarts: Queue.Queue<void>
  /** Records the position a session claimed, unless a reset came since `epoch`. */
  readonly claimed: (epoch: number, position: Position.Position) => Effect.Effect<void, SessionEnded>
  /**
   * Runs a checkpoint advance (with a transaction, also the handler's writes that go with it), serialised with
   * `reset`; fails with `SessionEnded` instead while a reset runs or when one completed since `epoch`.
   */
  readonly guarded: <A, E, R>(epoch: number, effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | SessionEnded, R>
  /** Moves the stored checkpoint by compare-and-set; only inside `guarded`. */
  readonly commit: (
    expected: Position.Position,
    position: Position.Position
  ) => Effect.Effect<void, CheckpointStore.CheckpointConflict | Errors.StoreError>
  /** Records an advance the store holds: status, metrics, and the wake-up of `waitFor`; only inside `guarded`. */
  readonly committed: (position: Position.Position, handled: number, parked: number) => Effect.Effect<void>
  readonly waitFor: (written: Position.Written) => Effect.Effect<void, Errors.StoreError>
  readonly reset: <E, R>(
    onReset: Effect.Effect<void, E, R>,
    transaction: Subscription.Transaction
  ) => Effect.Effect<void, E | Errors.StoreError, R>
}

/** @internal */
export const make = (
  settings: Settings.Settings,
  checkpoints: CheckpointStore.CheckpointStore["Type"],
  metrics: Metrics
): Effect.Effect<Progress> =>
  Effect.gen(function*() {
    const { id, owner, pollInterval } = settings
    const status = yield* Ref.make<Subscription.Status>({
      id,
      owner,
      phase: "idle",
      position: Position.start,
      handled: 0,
      parked: 0,
      lagEvents: 0n,
      lagMillis: 0,
      lastError: Option.none()
    })
    // The last position this process committed: only a hint that wakes `waitFor`, which then asks the store.
    const reached = yield* SubscriptionRef.make(Position.start)
    const epoch = yield* Ref.make(0)
    const resetting = yield* SubscriptionRef.make(0)
    const lock = yield* Effect.makeSemaphore(1)
    const restarts = yield* Queue.sliding<void>(1)
    const handlerErrors = Metric.tagged(metrics.errors, "kind", "handler")
    const storeErrors = Metric.tagged(metrics.errors, "kind", "store")

    const guarded = <A, E, R>(sessionEpoch: number, effect: Effect.Effect<A, E, R>) =>
      lock.withPermits(1)(
        Effect.flatMap(
          Effect.zip(SubscriptionRef.get(resetting), Ref.get(epoch)),
          ([running, current]): Effect.Effect<A, E | SessionEnded, R> =>
            running > 0 || current !== sessionEpoch ? Effect.fail(new SessionEnded({ reason: "reset" })) : effect
        )
      )

    const committed = (position: Position.Position, handled: number, parked: number) =>
      Effect.zipRight(
        Ref.update(status, (s) => ({ ...s, position, handled: s.handled + handled, parked: s.parked + parked })),
        SubscriptionRef.set(reached, position)
      ).pipe(
        Effect.zipRight(handled > 0 ? Metric.incrementBy(metrics.handled, handled) : Effect.void),
        Effect.zipRight(parked > 0 ? Metric.incrementBy(metrics.parked, parked) : Effect.void)
      )

    const isStored = (target: Position.Position) =>
      checkpoints.get(id).pipe(
        Effect.map(Option.exists((c) => !Position.isAfter(target, c.position))),
        Effect.retry({ schedule: Schedule.spaced(pollInterval), while: Errors.isRetryableStoreError })
      )

    const waitUntil = (target: Position.Position) =>
      Effect.gen(function*() {
        while (true) {
          const seen = yield* SubscriptionRef.get(reached)
          if (yield* isStored(target)) return
          // Woken by a commit of this process at or past the target (then confirmed from the store), else by a poll.
          yield* Effect.raceFirst(
            reached.changes.pipe(
              Stream.filter((p) => p !== seen && !Position.isAfter(target, p)),
              Stream.take(1),
              Stream.runDrain
            ),
            Effect.sleep(pollInterval)
          )
        }
      })

    const waitFor = (written: Position.Written) =>
      Option.match(Position.fromWritten(written), {
        onNone: () => Effect.void,
        onSome: (target) => Position.isAfter(target, Position.start) ? waitUntil(target) : Effect.void
      })

    // Marked as running first, so no new advance starts; then it waits for the one in flight, if any.
    const reset = <E, R>(onReset: Effect.Effect<void, E, R>, transaction: Subscription.Transaction) =>
      Effect.acquireUseRelease(
        SubscriptionRef.update(resetting, (n) => n + 1),
        () =>
          lock.withPermits(1)(
            Effect.zipRight(
              // The checkpoint's row first: an owner's batch in another process that has already moved the checkpoint
              // commits before the read model is cleared, so its writes are cleared too and nothing applies twice. A
              // batch that has not got that far waits for the reset, or deadlocks with it; PostgreSQL then aborts one
              // of the two (40P01, retryable): the batch replays from the reset checkpoint, the reset runs again.
              transaction(
                Effect.zipRight(checkpoints.lock(id), Effect.zipRight(onReset, checkpoints.reset(id, Position.start)))
              ).pipe(Effect.retry({ while: Errors.isRetryableStoreError, times: 5 })),
              Effect.all([
                Ref.update(epoch, (n) => n + 1),
                Ref.update(status, (s) => ({ ...s, position: Position.start })),
                SubscriptionRef.set(reached, Position.start)
              ], { discard: true })
            )
          ),
        () => SubscriptionRef.update(resetting, (n) => n - 1)
      ).pipe(Effect.zipRight(Queue.offer(restarts, undefined)), Effect.asVoid)

    return {
      status: Ref.get(status),
      setPhase: (phase) => Ref.update(status, (s) => ({ ...s, phase })),
      noteError: (error) => Ref.update(status, (s) => ({ ...s, lastError: Option.some(error) })),
      countError: (kind) => Metric.increment(kind === "handler" ? handlerErrors : storeErrors),
      observe: (phase, lagEvents, lagMillis) =>
        Effect.zipRight(
          Ref.update(status, (s) => ({ ...s, phase, lagEvents, lagMillis })),
          Effect.all([
            Metric.set(metrics.lagEvents, lagEvents),
            Metric.set(metrics.lagSeconds, lagMillis / 1000),
            Metric.set(metrics.lagMillis, lagMillis)
          ], { discard: true })
        ),
      stopped: Ref.update(status, (s) => (s.phase === "failed" ? s : { ...s, phase: "idle" as const })),
      epoch: Ref.get(epoch),
      awaitNoReset: resetting.changes.pipe(Stream.filter((n) => n === 0), Stream.take(1), Stream.runDrain),
      restarts,
      claimed: (sessionEpoch, position) =>
        guarded(
          sessionEpoch,
          Effect.zipRight(Ref.update(status, (s) => ({ ...s, position })), SubscriptionRef.set(reached, position))
        ),
      guarded,
      commit: (expected, position) => checkpoints.commit({ subscriptionId: id, owner, expected, position }),
      committed,
      waitFor,
      reset
    }
  })
