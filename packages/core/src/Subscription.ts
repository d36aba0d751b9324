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
 * `lagSeconds`, and set `idle_in_transaction_session_timeout`.
 *
 * Each page a subscription handles is a trace of its own (`Subscription.handlePage`); when a tracer that exports
 * spans is installed, each event is handled in a `Subscription.handle` span linked to the span that appended it
 * (`EventMetadata.appendSpan`).
 *
 * This module holds the public types and `make`; the machinery is in `internal/subscription/`: `feedReader` (pages,
 * the head, re-reads after hints, the plain `stream`), `lease` (claim, renew, session ended), `delivery` (the
 * handler, batches and the error policy), `progress` (status, guarded checkpoint advances, `waitFor`, `reset`) and
 * `session` (the run loop).
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Stream from "effect/Stream"
import * as CheckpointStore from "./CheckpointStore.js"
import type * as Errors from "./Errors.js"
import * as EventStore from "./EventStore.js"
import * as FeedNotifier from "./FeedNotifier.js"
import * as Delivery from "./internal/subscription/delivery.js"
import * as FeedReader from "./internal/subscription/feedReader.js"
import * as Progress from "./internal/subscription/progress.js"
import * as Session from "./internal/subscription/session.js"
import * as Settings from "./internal/subscription/settings.js"
import * as Position from "./Position.js"
import type * as RecordedEvent from "./RecordedEvent.js"
import * as Tenant from "./Tenant.js"

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
  /**
   * The tenant whose events to handle; defaults to the ambient tenant when the subscription is built. A subscription
   * for one tenant stores its checkpoint per tenant, so the same id can run once per tenant. With neither, a
   * `single`-mode store runs it over every tenant and a `multi`-mode store fails with `TenantRequired`.
   */
  readonly tenantId?: string | undefined
  /**
   * Handle every tenant's events (the explicit admin form); one checkpoint covers them all. The handler runs in
   * each event's tenant (`Tenant.with(event.tenantId)`), so what it writes through eventfold lands in that tenant.
   */
  readonly allTenants?: boolean | undefined
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
  readonly run: Effect.Effect<
    never,
    SubscriptionStopped | Errors.InvalidInput | Tenant.TenantRequired | Errors.StoreError
  >
  readonly status: Effect.Effect<Status>
  /**
   * Completes once the subscription has handled (or filtered out) every event up to a write: a `Position`, the
   * result of `CommandHandler.handle` or `EventStore.append`, or `Position.latest` of several (None: at once). It
   * reads the stored checkpoint, so it holds across processes, and after a `reset` it waits for the replay.
   */
  readonly waitFor: (
    written: Position.Written
  ) => Effect.Effect<void, Errors.StoreError | Errors.InvalidInput | Tenant.TenantRequired>
  /**
   * Rewinds the checkpoint to the beginning and runs `onReset`, atomically with a `transaction`; a running owner
   * replays. Waits for a batch this process is committing, and no batch handled before it moves the checkpoint
   * after it, so `reset` then `waitFor` waits for the rebuilt read model. Never call it from the handler.
   */
  readonly reset: Effect.Effect<void, E | Errors.StoreError | Errors.InvalidInput | Tenant.TenantRequired>
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
 * Age in seconds of the newest event a subscription handled while catching up; 0 when live.
 *
 * @since 0.4.0
 * @category metrics
 */
export const lagSeconds = Metric.gauge("eventfold_subscription_lag_seconds", {
  description: "age of the newest handled event while catching up"
})

/**
 * Age in milliseconds of the newest event a subscription handled while catching up; 0 when live.
 *
 * @deprecated The same as `lagSeconds`, in milliseconds; kept for existing dashboards.
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

/**
 * Failures while a subscription runs, tagged `subscription` and `kind`: `handler` (each failed attempt of the handler,
 * retried or not) or `store` (a store operation of the run failed; retryable ones are retried).
 *
 * @since 0.4.0
 * @category metrics
 */
export const errors = Metric.counter("eventfold_subscription_errors", {
  description: "Handler attempts and store operations that failed while a subscription ran",
  incremental: true
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
    const mode = store.tenancy
    // The tenant scope, resolved when the subscription is built (the ambient tenant then). Its checkpoint and dead
    // letters are kept under it: the CheckpointStore keys them by the ambient tenant, none meaning every tenant.
    const scope = yield* Effect.either(Tenant.resolveScope(mode, `subscription ${options.id}`, options))
    const inScope = <A, E2, R2>(effect: Effect.Effect<A, E2, R2>): Effect.Effect<A, E2 | ScopeError, R2> =>
      Either.isLeft(scope) ? Effect.fail(scope.left) : Effect.provideService(
        effect,
        Tenant.CurrentTenant,
        scope.right === Tenant.allScope ? Option.none() : Option.some(scope.right)
      )
    const notifier = yield* FeedNotifier.FeedNotifier
    const context = yield* Effect.context<R>()
    const settings = Settings.resolve(options, defaultErrorPolicy)
    const { id, owner } = settings
    const progress = yield* Progress.make(settings, checkpoints, {
      lagEvents: Metric.tagged(lagEvents, "subscription", id),
      lagMillis: Metric.tagged(lagMillis, "subscription", id),
      lagSeconds: Metric.tagged(lagSeconds, "subscription", id),
      handled: Metric.tagged(eventsHandled, "subscription", id),
      parked: Metric.tagged(eventsParked, "subscription", id),
      errors: Metric.tagged(errors, "subscription", id)
    })
    const delivery = Delivery.make({
      settings,
      checkpoints,
      progress,
      handler: options.handler,
      stopped: (stop) => new SubscriptionStopped({ subscriptionId: id, ...stop }),
      eventTenant: Either.isRight(scope) && scope.right === Tenant.allScope
        ? (mode === "multi" ? "always" : "named")
        : "never"
    })
    const running = yield* Effect.makeSemaphore(1)

    const run: Subscription<E>["run"] = Effect.zipRight(
      Settings.validate(options),
      Session.run(
        { settings, store, checkpoints, notifier, progress, delivery },
        options.startFrom ?? StartFrom.Beginning()
      )
    ).pipe(
      // Scoped first, so the run's own Scope wins over any Scope captured with the context; the tenant scope next,
      // so it wins over a tenant captured with the context (an allTenants subscription built inside Tenant.with).
      Effect.scoped,
      inScope,
      Effect.provide(context),
      Effect.onExit(() =>
        Effect.zipRight(inScope(checkpoints.release(id, owner)).pipe(Effect.ignore), progress.stopped)
      ),
      running.withPermits(1),
      Effect.withSpan("Subscription.run", { attributes: { subscription: id, owner } })
    )

    const reset: Subscription<E>["reset"] = progress.reset(options.onReset ?? Effect.void, settings.transaction).pipe(
      inScope,
      Effect.provide(context),
      Effect.withSpan("Subscription.reset", { attributes: { subscription: id } })
    )

    return {
      id,
      owner,
      run,
      status: progress.status,
      waitFor: (position) => inScope(progress.waitFor(position)),
      reset
    }
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
  SubscriptionStopped | Errors.InvalidInput | Tenant.TenantRequired | Errors.StoreError,
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
  Errors.StoreError | Errors.InvalidInput | Tenant.TenantRequired,
  EventStore.EventStore | FeedNotifier.FeedNotifier
> => FeedReader.stream({ ...options, startFrom: options.startFrom ?? StartFrom.Beginning() })

type ScopeError = Tenant.TenantRequired | Errors.InvalidInput
