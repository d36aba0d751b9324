/**
 * @internal Delivering a page of the feed to the handler, and the error policy. The fast path handles the page in
 * order and advances the checkpoint once (in one transaction when there is one). The first handler failure switches
 * to the slow path: every event on its own, retried under the policy, then parked as a dead letter or the
 * subscription stopped. Every checkpoint advance goes through `Progress.guarded`, so none lands after a reset.
 */
import * as Cause from "effect/Cause"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type * as CheckpointStore from "../../CheckpointStore.js"
import type * as Errors from "../../Errors.js"
import * as Position from "../../Position.js"
import * as RecordedEvent from "../../RecordedEvent.js"
import type * as Subscription from "../../Subscription.js"
import * as Tenant from "../../Tenant.js"
import * as telemetry from "../telemetry.js"
import type { SessionEnded } from "./lease.js"
import type * as Progress from "./progress.js"
import type * as Settings from "./settings.js"

/** @internal The handler's failure (or defect), kept apart from the store's own failures. */
export class HandlerFailed extends Data.TaggedError("HandlerFailed")<{ readonly cause: Cause.Cause<unknown> }> {}

/** @internal What the error policy's "stop" reports, besides the subscription id. */
export type Stop = Omit<ConstructorParameters<typeof Subscription.SubscriptionStopped>[0], "subscriptionId">

/** @internal */
export interface Delivery<R> {
  /** Handles a page after `from` in the session of `epoch`; the position the checkpoint advanced to. */
  readonly handlePage: (
    epoch: number,
    events: ReadonlyArray<RecordedEvent.RecordedEvent>,
    from: Position.Position
  ) => Effect.Effect<
    Position.Position,
    Subscription.SubscriptionStopped | CheckpointStore.CheckpointConflict | Errors.StoreError | SessionEnded,
    R
  >
}

/** @internal */
export const make = <E, R>(options: {
  readonly settings: Settings.Settings
  readonly checkpoints: CheckpointStore.CheckpointStore["Type"]
  readonly progress: Progress.Progress
  readonly handler: (event: RecordedEvent.RecordedEvent) => Effect.Effect<void, E, R>
  readonly stopped: (stop: Stop) => Subscription.SubscriptionStopped
  /**
   * Which events the handler must be given their tenant for: none when the subscription runs in one tenant (its run
   * already has it); across tenants, every event in `multi` mode and those of named tenants in `single` mode (where
   * no tenant means the default one).
   */
  readonly eventTenant: "never" | "named" | "always"
}): Delivery<R> => {
  const { checkpoints, eventTenant, handler, progress, settings, stopped } = options
  const { id, owner, policy, transaction, transactional } = settings

  // The context is provided once around `run`, not per event: providing per call costs more than the handler (it
  // halved catch-up). Only a subscription across tenants gives each event's handler the event's tenant, so that its
  // writes through eventfold land there.
  const inTenant = (event: RecordedEvent.RecordedEvent) =>
    eventTenant === "always" || (eventTenant === "named" && event.tenantId !== Tenant.defaultId)
  // Each event's own span, linked to the span that appended it, only when a tracer exports spans: a span per event
  // costs more than many handlers.
  const traced = (event: RecordedEvent.RecordedEvent, handling: Effect.Effect<void, E, R>) =>
    Effect.withSpan(handling, "Subscription.handle", {
      kind: "consumer",
      links: telemetry.appendLinks(event.metadata),
      captureStackTrace: false,
      attributes: {
        subscription: id,
        eventId: event.eventId,
        eventType: event.type,
        tenantId: event.tenantId,
        streamType: event.streamType,
        streamId: event.streamId,
        version: event.version,
        position: Position.format(RecordedEvent.position(event))
      }
    })
  const invoke = (event: RecordedEvent.RecordedEvent, tracing: boolean): Effect.Effect<void, HandlerFailed, R> => {
    const handling = inTenant(event)
      ? Effect.provideService(handler(event), Tenant.CurrentTenant, Option.some(event.tenantId))
      : handler(event)
    return (tracing ? traced(event, handling) : handling).pipe(
      Effect.catchAllCause((cause) =>
        Cause.isInterruptedOnly(cause)
          ? Effect.interrupt
          : Effect.zipRight(progress.countError("handler"), Effect.fail(new HandlerFailed({ cause })))
      )
    )
  }

  // `work`, then the checkpoint advance `from` → `to`: in one transaction when there is one; without, only the
  // advance is guarded (the handler's writes are at-least-once anyway).
  const advance = <A, E2, R2>(
    epoch: number,
    work: Effect.Effect<A, E2, R2>,
    from: Position.Position,
    to: Position.Position,
    handled: number,
    parked: number
  ) =>
    transactional
      ? progress.guarded(
        epoch,
        Effect.zipLeft(
          transaction(Effect.zipLeft(work, progress.commit(from, to))),
          progress.committed(to, handled, parked)
        )
      )
      : Effect.zipLeft(
        work,
        progress.guarded(epoch, Effect.zipRight(progress.commit(from, to), progress.committed(to, handled, parked)))
      )

  // The slow path, after the fast path failed on `events[failed.index]`: every event on its own, retried under the
  // policy (the failed fast attempt counts as the first), then parked or stopped. In transactional mode each event
  // and its checkpoint advance commit together and the page restarts at 0 (the fast transaction rolled back);
  // otherwise the events before the failure were handled and the checkpoint advances once at the end.
  const handleOneByOne = (
    epoch: number,
    events: ReadonlyArray<RecordedEvent.RecordedEvent>,
    from: Position.Position,
    failed: { readonly index: number; readonly failure: HandlerFailed },
    tracing: boolean
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
        const attempt = Effect.suspend(() => {
          tries++
          return transactional
            ? advance(epoch, invoke(event, tracing), position, next, 1, 0)
            : invoke(event, tracing)
        })
        let replay = i === failed.index
        const outcome = yield* Effect.suspend(() => {
          if (!replay) return attempt
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
          yield* progress.noteError(`event ${event.eventId} (${event.type}): ${reason}`)
          if (policy.onExhausted === "stop") {
            if (!transactional && Position.isAfter(position, from)) {
              yield* advance(epoch, Effect.void, from, position, handled, parked)
            }
            yield* progress.setPhase("failed")
            yield* checkpoints.release(id, owner, "failed").pipe(Effect.ignore)
            return yield* Effect.fail(stopped({
              eventId: event.eventId,
              eventType: event.type,
              position: next,
              attempts: tries,
              reason,
              cause: Cause.squash(failure.cause)
            }))
          }
          const deadLetter = {
            subscriptionId: id,
            eventId: event.eventId,
            position: next,
            tenantId: event.tenantId,
            streamType: event.streamType,
            streamId: event.streamId,
            eventType: event.type,
            error: reason,
            attempts: tries
          }
          yield* Effect.logWarning(`subscription ${id} parked event ${event.eventId} after ${tries} attempts`)
          if (transactional) {
            yield* advance(epoch, checkpoints.park(deadLetter), position, next, 0, 1)
          } else {
            yield* checkpoints.park(deadLetter)
            parked++
          }
        } else if (!transactional) {
          handled++
        }
        position = next
      }
      if (!transactional) yield* advance(epoch, Effect.void, from, position, handled, parked)
      return position
    })

  // Each page is a trace of its own (the run never ends, so its span would hold every page), with the checkpoint
  // advance (and its transaction) inside.
  const handlePage = (epoch: number, events: ReadonlyArray<RecordedEvent.RecordedEvent>, from: Position.Position) =>
    Effect.flatMap(telemetry.tracing, (tracing) => {
      const last = RecordedEvent.position(events[events.length - 1]!)
      let done = 0
      return advance(
        epoch,
        Effect.forEach(events, (event) => Effect.map(invoke(event, tracing), () => void done++), { discard: true }),
        from,
        last,
        events.length,
        0
      ).pipe(
        Effect.as(last),
        Effect.catchIf(
          (e): e is HandlerFailed => e instanceof HandlerFailed,
          (failure) => handleOneByOne(epoch, events, from, { index: done, failure }, tracing)
        )
      )
    }).pipe(
      Effect.withSpan("Subscription.handlePage", {
        root: true,
        captureStackTrace: false,
        attributes: { subscription: id, events: events.length, from: Position.format(from) }
      })
    )

  return { handlePage }
}
