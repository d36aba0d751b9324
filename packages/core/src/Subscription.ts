/**
 * Subscriptions: run a handler over the global feed from a stored checkpoint. A subscription catches up in pages,
 * then goes live, woken by `FeedNotifier` hints and polling as the fallback. One process at a time owns it, through
 * the `CheckpointStore` lease, and the checkpoint moves only by compare-and-set, so a stale owner cannot move it.
 *
 * Delivery is at-least-once: the handler runs, then the checkpoint advances, so a crash in between repeats events.
 * Give a `transaction` (as `PgProjection` does) to make the handler's writes and the checkpoint advance commit
 * together: each event is then applied exactly once, also across crashes and takeovers.
 *
 * On PostgreSQL the feed only shows transactions older than every running one, so a long-open writing transaction
 * anywhere on the server delays every subscription (it never makes one skip an event): watch `lagEvents` and
 * `lagMillis`, and set `idle_in_transaction_session_timeout`.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import * as CheckpointStore from "./CheckpointStore.js"
import * as Errors from "./Errors.js"
import * as EventStore from "./EventStore.js"
import * as EventValidation from "./EventValidation.js"
import * as FeedNotifier from "./FeedNotifier.js"
import * as Position from "./Position.js"
import * as RecordedEvent from "./RecordedEvent.js"

/**
 * Where a subscription with no stored checkpoint starts; a stored checkpoint always wins. `End` starts after the
 * last event the feed can deliver now (`EventStore.headPosition`). An event that has committed but is still hidden
 * behind an older open transaction is therefore delivered: `End` errs on the side of delivering, never skipping,
 * because an event that commits later can sort before one that committed earlier.
 *
 * @since 0.1.0
 * @category models
 */
export type StartFrom = Data.TaggedEnum<{
  Beginning: {}
  End: {}
  At: { readonly position: Position.Position }
}>

/**
 * Constructors for `StartFrom`: `StartFrom.Beginning()`, `StartFrom.End()`, `StartFrom.At({ position })`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const StartFrom = Data.taggedEnum<StartFrom>()

/**
 * What to do when the handler fails on an event: retry under `retry`, then park the event in the dead-letter store
 * and continue, or stop the subscription.
 *
 * @since 0.1.0
 * @category models
 */
export interface ErrorPolicy {
  readonly retry: Schedule.Schedule<unknown, unknown>
  readonly onExhausted: "park" | "stop"
}

/**
 * Three retries with exponential backoff from 100 ms, then stop: nothing is skipped unless asked for.
 *
 * @since 0.1.0
 * @category constructors
 */
export const defaultErrorPolicy: ErrorPolicy = {
  retry: Schedule.exponential("100 millis").pipe(Schedule.intersect(Schedule.recurs(3))),
  onExhausted: "stop"
}

/**
 * Which events of the feed a subscription sees.
 *
 * @since 0.1.0
 * @category models
 */
export interface Filter {
  readonly eventTypes?: ReadonlyArray<string> | undefined
  readonly streamTypes?: ReadonlyArray<string> | undefined
  readonly tenantId?: string | undefined
}

/**
 * Runs an effect atomically, so the handler's writes and the checkpoint advance commit together (or neither).
 *
 * @since 0.1.0
 * @category models
 */
export interface Transaction {
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | Errors.StoreError, R>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options<E, R> extends Filter {
  /**
   * The subscription's name; its checkpoint is stored under it. A name PostgreSQL cannot store as given (see
   * `EventValidation.validateName`), like an owner or filter with a NUL character, fails `run` at once with
   * `InvalidInput`.
   */
  readonly id: string
  readonly handler: (event: RecordedEvent.RecordedEvent) => Effect.Effect<void, E, R>
  /** Used only when no checkpoint is stored; defaults to `StartFrom.Beginning()`. */
  readonly startFrom?: StartFrom | undefined
  /** Events per page; defaults to 500. */
  readonly batchSize?: number | undefined
  /** How often to read the feed when no hint arrives; defaults to 1 second. */
  readonly pollInterval?: Duration.DurationInput | undefined
  /**
   * How long ownership lasts without renewal; defaults to 10 seconds. The owner renews it every third of it and
   * standbys try to claim as often, so when an owner dies another instance takes over within lease + lease / 3
   * (within lease / 3 when it stops gracefully, since it releases the lease).
   */
  readonly lease?: Duration.DurationInput | undefined
  /** Defaults to `defaultErrorPolicy`. */
  readonly errorPolicy?: ErrorPolicy | undefined
  /** This instance's name in the checkpoint's owner column; defaults to a random UUID. */
  readonly owner?: string | undefined
  /** Makes each handled batch and its checkpoint advance atomic; without it delivery is at-least-once. */
  readonly transaction?: Transaction | undefined
  /** Runs by `reset`, in the same transaction as the checkpoint rewind: clear the read model here. */
  readonly onReset?: Effect.Effect<void, E, R> | undefined
  /** Backoff between attempts after a store failure (the subscription keeps going); capped at 5 seconds. */
  readonly storeRetry?: Schedule.Schedule<unknown, unknown> | undefined
}

/**
 * The handler failed on an event and the error policy said stop. The checkpoint stays before the event.
 *
 * @since 0.1.0
 * @category errors
 */
export class SubscriptionStopped extends Schema.TaggedError<SubscriptionStopped>()("SubscriptionStopped", {
  subscriptionId: Schema.String,
  eventId: Schema.String,
  eventType: Schema.String,
  position: Position.Position,
  attempts: Schema.Number,
  reason: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {
  override get message(): string {
    return `Subscription ${this.subscriptionId} stopped at event ${this.eventId} (${this.eventType}, ${
      Position.format(this.position)
    }) after ${this.attempts} attempts: ${this.reason}`
  }
}

/**
 * @since 0.1.0
 * @category models
 */
export type Phase = "idle" | "standby" | "catching-up" | "live" | "failed"

/**
 * What a subscription is doing now, as seen from this process.
 *
 * @since 0.1.0
 * @category models
 */
export interface Status {
  readonly id: string
  readonly owner: string
  /** idle: not running; standby: another process owns it; catching-up / live: this process owns it. */
  readonly phase: Phase
  /** The last position this process committed (or claimed). */
  readonly position: Position.Position
  readonly handled: number
  readonly parked: number
  /** Events between the checkpoint and the feed head (approximate: a difference of global positions). */
  readonly lagEvents: bigint
  /** Age of the newest handled event while catching up; 0 when live. */
  readonly lagMillis: number
  readonly lastError: Option.Option<string>
}

/**
 * A subscription: fork `run` in your scope; the other members work while it runs (and `waitFor` also across
 * processes, through the checkpoint store).
 *
 * @since 0.1.0
 * @category models
 */
export interface Subscription<E> {
  readonly id: string
  readonly owner: string
  /**
   * Runs until interrupted (releasing ownership), until the error policy stops it, or until the store fails in a way
   * retrying cannot help (a `StoreError` that is not `retryable`: a missing table, a permission, a bad checkpoint).
   * Retryable store failures (a lost connection, a timeout) are retried under `storeRetry`. Run it once at a time.
   */
  readonly run: Effect.Effect<never, SubscriptionStopped | Errors.InvalidInput | Errors.StoreError>
  readonly status: Effect.Effect<Status>
  /** Completes once the subscription has handled (or filtered out) every event up to `position`. */
  readonly waitFor: (position: Position.Position) => Effect.Effect<void, Errors.StoreError>
  /** Rewinds the checkpoint to the beginning and runs `onReset`, atomically with a `transaction`; a running owner replays. */
  readonly reset: Effect.Effect<void, E | Errors.StoreError>
}

/**
 * Events between a subscription's checkpoint and the feed head, per subscription (`subscription` tag).
 *
 * @since 0.1.0
 * @category metrics
 */
export const lagEvents = Metric.gauge("eventfold_subscription_lag_events", {
  description: "events between the checkpoint and the feed head",
  bigint: true
})

/**
 * Age in milliseconds of the newest event a subscription handled while catching up; 0 when live.
 *
 * @since 0.1.0
 * @category metrics
 */
export const lagMillis = Metric.gauge("eventfold_subscription_lag_ms", {
  description: "age of the newest handled event while catching up"
})

/**
 * Events handled, per subscription.
 *
 * @since 0.1.0
 * @category metrics
 */
export const eventsHandled = Metric.counter("eventfold_subscription_events_handled", { incremental: true })

/**
 * Events parked in the dead-letter store, per subscription.
 *
 * @since 0.1.0
 * @category metrics
 */
export const eventsParked = Metric.counter("eventfold_subscription_events_parked", { incremental: true })

/** The handler's failure (or defect), kept apart from the store's own failures. */
class HandlerFailed extends Data.TaggedError("HandlerFailed")<{ readonly cause: Cause.Cause<unknown> }> {}

type ReadError = Errors.StoreError | Errors.InvalidInput

/** Ends an ownership session so the run loop claims again (checkpoint reset, lease lost). */
class SessionEnded extends Data.TaggedError("SessionEnded")<{ readonly reason: string }> {}

const noTransaction: Transaction = (effect) => effect

const validate = <E, R>(options: Options<E, R>): Effect.Effect<void, Errors.InvalidInput> => {
  const batch = options.batchSize ?? 500
  if (!Number.isInteger(batch) || batch < 1 || batch > 10_000) {
    return Effect.fail(new Errors.InvalidInput({ reason: `batchSize must be 1..10000, got ${batch}` }))
  }
  // PostgreSQL stores the id and owner and compares the filters: refuse up front what it would reject or alter.
  return Effect.all([
    EventValidation.validateName("subscription id", options.id),
    options.owner === undefined ? Effect.void : EventValidation.validateName("subscription owner", options.owner),
    EventValidation.validateFilter(options)
  ], { discard: true })
}

const resolveStart = (
  store: EventStore.EventStore["Type"],
  startFrom: StartFrom
): Effect.Effect<Position.Position, Errors.StoreError> =>
  StartFrom.$match(startFrom, {
    Beginning: () => Effect.succeed(Position.start),
    End: () => store.headPosition,
    At: ({ position }) => Effect.succeed(position)
  })

/**
 * Builds a subscription from the `EventStore`, `CheckpointStore` and `FeedNotifier` in context; the handler's
 * requirements are captured here too, so `run` needs nothing.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <E, R>(
  options: Options<E, R>
): Effect.Effect<
  Subscription<E>,
  never,
  EventStore.EventStore | CheckpointStore.CheckpointStore | FeedNotifier.FeedNotifier | R
> =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const checkpoints = yield* CheckpointStore.CheckpointStore
    const notifier = yield* FeedNotifier.FeedNotifier
    const context = yield* Effect.context<R>()
    const id = options.id
    const owner = options.owner ?? crypto.randomUUID()
    const batchSize = options.batchSize ?? 500
    const pollInterval = Duration.decode(options.pollInterval ?? "1 second")
    const lease = Duration.decode(options.lease ?? "10 seconds")
    const renewEvery = Duration.millis(Math.max(1, Math.floor(Duration.toMillis(lease) / 3)))
    const policy = options.errorPolicy ?? defaultErrorPolicy
    const transactional = options.transaction !== undefined
    const transaction = options.transaction ?? noTransaction
    const storeRetry = Schedule.union(
      options.storeRetry ?? Schedule.exponential("200 millis"),
      Schedule.spaced("5 seconds")
    )
    const filter = { eventTypes: options.eventTypes, streamTypes: options.streamTypes, tenantId: options.tenantId }
    const metrics = {
      lagEvents: Metric.tagged(lagEvents, "subscription", id),
      lagMillis: Metric.tagged(lagMillis, "subscription", id),
      handled: Metric.tagged(eventsHandled, "subscription", id),
      parked: Metric.tagged(eventsParked, "subscription", id)
    }

    const status = yield* Ref.make<Status>({
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
    const reached = yield* SubscriptionRef.make(Position.start)
    const restarts = yield* Queue.sliding<void>(1)
    const running = yield* Effect.makeSemaphore(1)

    const setPhase = (phase: Phase) => Ref.update(status, (s) => ({ ...s, phase }))
    const noteError = (error: string) => Ref.update(status, (s) => ({ ...s, lastError: Option.some(error) }))

    // The context is provided once around `run`, not per event: providing per call costs more than the handler.
    const invoke = (event: RecordedEvent.RecordedEvent): Effect.Effect<void, HandlerFailed, R> =>
      options.handler(event).pipe(
        Effect.catchAllCause((cause) =>
          Cause.isInterruptedOnly(cause) ? Effect.interrupt : Effect.fail(new HandlerFailed({ cause }))
        )
      )

    const commit = (expected: Position.Position, position: Position.Position) =>
      checkpoints.commit({ subscriptionId: id, owner, expected, position })

    const committed = (position: Position.Position, handled: number, parked: number) =>
      Effect.zipRight(
        Ref.update(status, (s) => ({ ...s, position, handled: s.handled + handled, parked: s.parked + parked })),
        SubscriptionRef.set(reached, position)
      ).pipe(
        Effect.zipRight(handled > 0 ? Metric.incrementBy(metrics.handled, handled) : Effect.void),
        Effect.zipRight(parked > 0 ? Metric.incrementBy(metrics.parked, parked) : Effect.void)
      )

    // The slow path, after the fast path failed on `events[failed.index]`: every event on its own, retried under the
    // policy (the failed fast attempt counts as the first), then parked or stopped. In transactional mode each event
    // and its checkpoint advance commit together and the page restarts at 0 (the fast transaction rolled back);
    // otherwise the events before the failure were handled and the checkpoint advances once at the end.
    const handleOneByOne = (
      events: ReadonlyArray<RecordedEvent.RecordedEvent>,
      from: Position.Position,
      failed: { readonly index: number; readonly failure: HandlerFailed }
    ) =>
      Effect.gen(function*() {
        const skip = transactional ? 0 : failed.index
        let position = skip > 0 ? RecordedEvent.position(events[skip - 1]!) : from
        let handled = skip
        let parked = 0
        for (let i = skip; i < events.length; i++) {
          const event = events[i]!
          const next = RecordedEvent.position(event)
          let tries = i === failed.index ? 1 : 0
          const run = Effect.suspend(() => {
            tries++
            return transactional ? transaction(Effect.zipRight(invoke(event), commit(position, next))) : invoke(event)
          })
          let replay = i === failed.index
          const outcome = yield* Effect.suspend(() => {
            if (!replay) return run
            replay = false
            return Effect.fail(failed.failure)
          }).pipe(
            Effect.retry({ schedule: policy.retry, while: (e) => e instanceof HandlerFailed }),
            Effect.either
          )
          if (Either.isLeft(outcome)) {
            const failure = outcome.left
            if (!(failure instanceof HandlerFailed)) return yield* Effect.fail(failure)
            const reason = Cause.pretty(failure.cause)
            yield* noteError(`event ${event.eventId} (${event.type}): ${reason}`)
            if (policy.onExhausted === "stop") {
              if (!transactional && Position.isAfter(position, from)) {
                yield* commit(from, position)
                yield* committed(position, handled, parked)
              }
              yield* Ref.update(status, (s) => ({ ...s, phase: "failed" as const }))
              yield* checkpoints.release(id, owner, "failed").pipe(Effect.ignore)
              return yield* new SubscriptionStopped({
                subscriptionId: id,
                eventId: event.eventId,
                eventType: event.type,
                position: next,
                attempts: tries,
                reason,
                cause: Cause.squash(failure.cause)
              })
            }
            const deadLetter = {
              subscriptionId: id,
              eventId: event.eventId,
              position: next,
              streamType: event.streamType,
              streamId: event.streamId,
              eventType: event.type,
              error: reason,
              attempts: tries
            }
            yield* Effect.logWarning(`subscription ${id} parked event ${event.eventId} after ${tries} attempts`)
            yield* transactional
              ? transaction(Effect.zipRight(checkpoints.park(deadLetter), commit(position, next)))
              : checkpoints.park(deadLetter)
            parked++
          } else {
            handled++
          }
          position = next
          if (transactional) {
            yield* committed(position, handled, parked)
            handled = 0
            parked = 0
          }
        }
        if (!transactional) {
          yield* commit(from, position)
          yield* committed(position, handled, parked)
        }
        return position
      })

    // The fast path: the page in order and one checkpoint advance, in one transaction when there is one. The first
    // handler failure switches to the slow path (after a rollback in transactional mode).
    const handleBatch = (events: ReadonlyArray<RecordedEvent.RecordedEvent>, from: Position.Position) =>
      Effect.suspend(() => {
        const last = RecordedEvent.position(events[events.length - 1]!)
        let done = 0
        return transaction(
          Effect.zipRight(
            Effect.forEach(events, (event) => Effect.map(invoke(event), () => void done++), { discard: true }),
            commit(from, last)
          )
        ).pipe(
          Effect.zipRight(committed(last, events.length, 0)),
          Effect.as(last),
          Effect.catchIf(
            (e): e is HandlerFailed => e instanceof HandlerFailed,
            (failure) => handleOneByOne(events, from, { index: done, failure })
          )
        )
      })

    const process = (claimed: Position.Position, hints: Queue.Dequeue<void>) =>
      Effect.gen(function*() {
        let position = claimed
        yield* Ref.update(status, (s) => ({ ...s, position }))
        yield* SubscriptionRef.set(reached, position)
        // The head is read before the page, so every event up to it was visible to the page's read.
        const readPage = (after: Position.Position) =>
          Effect.zip(store.headPosition, store.readAll({ ...filter, after, limit: batchSize }))
        let recheck = 0
        let prefetched:
          | Fiber.Fiber<readonly [Position.Position, ReadonlyArray<RecordedEvent.RecordedEvent>], ReadError>
          | undefined
        while (true) {
          const [head, page] = prefetched ? yield* Fiber.join(prefetched) : yield* readPage(position)
          prefetched = undefined
          const caughtUp = page.length < batchSize
          if (!caughtUp) {
            // While catching up, read the next page (on its own pooled connection, outside any transaction) while
            // this one is handled.
            prefetched = yield* Effect.fork(readPage(RecordedEvent.position(page[page.length - 1]!)))
          }
          if (page.length > 0) position = yield* handleBatch(page, position)
          // Everything up to `head` was visible to this read, so events the filter dropped are behind us too.
          if (caughtUp && Position.isAfter(head, position)) {
            yield* commit(position, head)
            position = head
            yield* committed(position, 0, 0)
          }
          const now = yield* Clock.currentTimeMillis
          const lag = caughtUp ? 0n : head.globalPosition - position.globalPosition
          const age = caughtUp || page.length === 0 ? 0 : Math.max(0, now - page[page.length - 1]!.recordedAt.getTime())
          yield* Ref.update(status, (s) => ({
            ...s,
            phase: caughtUp ? "live" as const : "catching-up" as const,
            lagEvents: lag > 0n ? lag : 0n,
            lagMillis: age
          }))
          yield* Metric.set(metrics.lagEvents, lag > 0n ? lag : 0n)
          yield* Metric.set(metrics.lagMillis, age)
          if (caughtUp) {
            // A hint whose events are not readable yet (another transaction on the server holds the feed horizon
            // back) is followed by a few quick re-reads, 20 ms to 320 ms apart, before waiting a whole poll interval.
            if (page.length > 0) recheck = 0
            const wait = recheck > 0
              ? Duration.min(pollInterval, Duration.millis(20 * 2 ** (5 - recheck--)))
              : pollInterval
            const woken = yield* Effect.raceFirst(
              Effect.map(
                FeedNotifier.awaitHint(hints, wait),
                (hinted) => hinted ? "hint" as const : "timeout" as const
              ),
              Effect.as(Queue.take(restarts), "restart" as const)
            )
            if (woken === "restart") return yield* new SessionEnded({ reason: "reset" })
            if (woken === "hint") recheck = 5
          }
        }
      })

    // Renews the lease; ends the session when another owner has it or the checkpoint was moved under us.
    const renew = Effect.gen(function*() {
      while (true) {
        yield* Effect.sleep(renewEvery)
        const claim = yield* Effect.either(
          checkpoints.claim({ subscriptionId: id, owner, lease, initial: Position.start })
        )
        if (Either.isLeft(claim)) {
          // The commit's compare-and-set still guards the checkpoint; keep working and try again.
          yield* noteError(claim.left.message)
          continue
        }
        if (Option.isNone(claim.right)) return yield* new SessionEnded({ reason: "lease lost" })
        if (Position.isAfter((yield* Ref.get(status)).position, claim.right.value)) {
          return yield* new SessionEnded({ reason: "checkpoint reset" })
        }
      }
    })

    const session = (initial: Position.Position, hints: Queue.Dequeue<void>) =>
      Effect.gen(function*() {
        yield* setPhase("standby")
        const claimed = yield* checkpoints.claim({ subscriptionId: id, owner, lease, initial }).pipe(
          Effect.flatMap(Option.match({
            onNone: () => Effect.fail("standby" as const),
            onSome: Effect.succeed
          })),
          Effect.retry({ schedule: Schedule.spaced(renewEvery), while: (e) => e === "standby" }),
          Effect.catchIf((e) => e === "standby", () => Effect.never)
        )
        yield* Queue.takeAll(restarts)
        yield* setPhase("catching-up")
        yield* Effect.raceFirst(process(claimed, hints), renew).pipe(
          Effect.catchTags({
            SessionEnded: (e) => Effect.logDebug(`subscription ${id}: ${e.reason}`),
            CheckpointConflict: (e) => Effect.logInfo(e.message)
          })
        )
      })

    const run: Subscription<E>["run"] = Effect.gen(function*() {
      yield* validate(options)
      const hints = yield* notifier.subscribe
      const initial = yield* resolveStart(store, options.startFrom ?? StartFrom.Beginning()).pipe(
        Effect.tapError((e) => noteError(e.message)),
        Effect.retry({ schedule: storeRetry, while: Errors.isRetryableStoreError })
      )
      // Retryable store failures never end the run: note them, back off, claim again and resume from the
      // checkpoint. Any other store failure (missing table, permission, bad checkpoint) stops it, typed.
      const backoff = yield* Schedule.driver(storeRetry)
      return yield* session(initial, hints).pipe(
        Effect.zipRight(backoff.reset),
        Effect.catchTag("StoreError", (e) =>
          Effect.zipRight(
            noteError(e.message),
            e.retryable === true
              ? Effect.zipRight(Effect.logWarning(`subscription ${id}: ${e.message}`), Effect.ignore(backoff.next(e)))
              : Effect.zipRight(setPhase("failed"), Effect.fail(e))
          )),
        Effect.forever
      )
    }).pipe(
      // Scoped first, so the run's own Scope wins over any Scope captured with the context.
      Effect.scoped,
      Effect.provide(context),
      Effect.onExit(() =>
        Effect.zipRight(
          checkpoints.release(id, owner).pipe(Effect.ignore),
          Ref.update(status, (s) => (s.phase === "failed" ? s : { ...s, phase: "idle" as const }))
        )
      ),
      running.withPermits(1),
      Effect.withSpan("Subscription.run", { attributes: { subscription: id, owner } })
    )

    const waitFor = (target: Position.Position) =>
      Effect.race(
        reached.changes.pipe(Stream.filter((p) => !Position.isAfter(target, p)), Stream.take(1), Stream.runDrain),
        checkpoints.get(id).pipe(
          Effect.filterOrFail(
            (c) => Option.isSome(c) && !Position.isAfter(target, c.value.position),
            () => "not yet" as const
          ),
          Effect.retry({ schedule: Schedule.spaced(pollInterval), while: (e) => e === "not yet" }),
          Effect.catchIf((e) => e === "not yet", () => Effect.never),
          Effect.asVoid
        )
      )

    // Read model first, checkpoint last: the same lock order as a projection's batch, so the two cannot deadlock.
    const reset: Subscription<E>["reset"] = transaction(
      Effect.zipRight(options.onReset ?? Effect.void, checkpoints.reset(id, Position.start))
    ).pipe(
      Effect.provide(context),
      Effect.zipRight(Queue.offer(restarts, undefined)),
      Effect.asVoid,
      Effect.withSpan("Subscription.reset", { attributes: { subscription: id } })
    )

    return { id, owner, run, status: Ref.get(status), waitFor, reset }
  })

/**
 * Builds and runs a subscription: `Subscription.run(options).pipe(Effect.forkScoped)`.
 *
 * @since 0.1.0
 * @category running
 */
export const run = <E, R>(
  options: Options<E, R>
): Effect.Effect<
  never,
  SubscriptionStopped | Errors.InvalidInput | Errors.StoreError,
  EventStore.EventStore | CheckpointStore.CheckpointStore | FeedNotifier.FeedNotifier | R
> => Effect.flatMap(make(options), (subscription) => subscription.run)

/**
 * The feed as an endless `Stream`, without checkpoint or ownership: catch up from `startFrom` in pages, then
 * emit new events as they become visible. Each event is emitted once, in feed order.
 *
 * @since 0.1.0
 * @category streams
 */
export const stream = (
  options: Filter & {
    readonly startFrom?: StartFrom | undefined
    readonly batchSize?: number | undefined
    readonly pollInterval?: Duration.DurationInput | undefined
  } = {}
): Stream.Stream<
  RecordedEvent.RecordedEvent,
  Errors.StoreError | Errors.InvalidInput,
  EventStore.EventStore | FeedNotifier.FeedNotifier
> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const hints = yield* Effect.flatMap(FeedNotifier.FeedNotifier, (n) => n.subscribe)
    const batchSize = options.batchSize ?? 500
    const pollInterval = options.pollInterval ?? "1 second"
    const filter = { eventTypes: options.eventTypes, streamTypes: options.streamTypes, tenantId: options.tenantId }
    const start = yield* resolveStart(store, options.startFrom ?? StartFrom.Beginning())
    return Stream.paginateChunkEffect(
      { position: start, wait: false },
      (state) =>
        Effect.zipRight(
          state.wait ? FeedNotifier.awaitHint(hints, pollInterval) : Effect.void,
          Effect.map(store.readAll({ ...filter, after: state.position, limit: batchSize }), (page) => {
            const position = page.length > 0 ? RecordedEvent.position(page[page.length - 1]!) : state.position
            return [
              Chunk.unsafeFromArray(page),
              Option.some({ position, wait: page.length < batchSize })
            ] as const
          })
        )
    )
  }))
