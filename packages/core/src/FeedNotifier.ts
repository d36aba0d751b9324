/**
 * The `FeedNotifier` service: a wake-up hint that the global feed may have new events. It is never the delivery
 * channel: subscriptions always read the feed from their checkpoint, and poll on a schedule when no hint comes.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as PubSub from "effect/PubSub"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import * as EventStore from "./EventStore.js"
import * as memoryStack from "./internal/memoryStack.js"

/**
 * Wake-up hints for feed readers.
 *
 * @since 0.1.0
 * @category tags
 */
export class FeedNotifier extends Context.Tag("@eventfold/core/FeedNotifier")<FeedNotifier, {
  /** A queue that receives a hint after each append (hints coalesce); subscribe before the first read. */
  readonly subscribe: Effect.Effect<Queue.Dequeue<void>, never, Scope.Scope>
}>() {}

/**
 * Waits for a hint or until `pollInterval` passes, whichever comes first, then drops hints already queued. Returns
 * whether a hint woke it.
 *
 * @since 0.1.0
 * @category utils
 */
export const awaitHint = (hints: Queue.Dequeue<void>, pollInterval: Duration.DurationInput): Effect.Effect<boolean> =>
  Effect.raceFirst(Effect.as(Queue.take(hints), true), Effect.as(Effect.sleep(pollInterval), false)).pipe(
    Effect.zipLeft(Queue.takeAll(hints))
  )

/**
 * The waits of a reader that has caught up with the feed. `next(found)` gives the wait before the next read
 * (`found`: the last read returned events): a whole poll interval, except after a hint whose events that read did
 * not find (another transaction on the server holds the feed horizon back, so they are not readable yet); then
 * re-reads follow, 20 ms apart at first and a second apart at most, for about 5 s (never longer apart than the poll
 * interval), before it waits a whole poll interval again. `hinted()` records
 * that a hint ended the last wait.
 *
 * @since 0.4.0
 * @category models
 */
export interface LiveWait {
  readonly next: (found: boolean) => Duration.Duration
  readonly hinted: () => void
}

// The re-reads after a hint whose events were not readable yet, in milliseconds: quick at first, then a second apart,
// about 5 s in all, so a transaction that holds the horizon back for a few seconds delays them no longer.
const RECHECKS: ReadonlyArray<number> = [20, 40, 80, 160, 320, 640, 1000, 1000, 1000, 1000]

/**
 * A reader's `LiveWait` for a poll interval.
 *
 * @since 0.4.0
 * @category utils
 */
export const liveWait = (pollInterval: Duration.DurationInput): LiveWait => {
  const poll = Duration.decode(pollInterval)
  let recheck = RECHECKS.length
  return {
    next: (found) => {
      if (found) recheck = RECHECKS.length
      return recheck < RECHECKS.length ? Duration.min(poll, Duration.millis(RECHECKS[recheck++]!)) : poll
    },
    hinted: () => {
      recheck = 0
    }
  }
}

/**
 * The wait between reads of a caught-up follower of the feed, on `hints` subscribed before its first read: until a
 * hint, or `pollInterval` at most, with the quick re-reads of `liveWait` after a hint whose events the read did not
 * find yet. The returned function takes whether the last read returned events.
 *
 * @since 0.4.0
 * @category utils
 */
export const follower = (
  hints: Queue.Dequeue<void>,
  pollInterval: Duration.DurationInput
): (found: boolean) => Effect.Effect<void> => {
  const wait = liveWait(pollInterval)
  return (found) =>
    Effect.suspend(() =>
      Effect.map(awaitHint(hints, wait.next(found)), (hinted) => {
        if (hinted) wait.hinted()
      })
    )
}

/**
 * A notifier over a `PubSub`, with `signal` to send a hint; the building block of the other Layers.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeHub: Effect.Effect<{ readonly notifier: FeedNotifier["Type"]; readonly signal: Effect.Effect<void> }> =
  Effect.map(PubSub.sliding<void>(1), (hub) => ({
    notifier: { subscribe: PubSub.subscribe(hub) },
    signal: Effect.asVoid(PubSub.publish(hub, undefined))
  }))

/**
 * A notifier that never sends a hint: readers rely on polling alone (e.g. behind PgBouncer in transaction mode).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerPolling: Layer.Layer<FeedNotifier> = Layer.sync(FeedNotifier, () => polling)

/**
 * A notifier that never hints: readers rely on their poll interval alone (behind a pooler in transaction mode).
 *
 * @since 0.2.0
 * @category constructors
 */
export const polling: FeedNotifier["Type"] = { subscribe: Queue.sliding<void>(1) }

/**
 * An in-memory `EventStore` together with a notifier that it signals after every append. (`MemoryEventfold.layer`
 * assembles it with the other in-memory services.)
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<FeedNotifier | EventStore.EventStore> = Layer.effectContext(
  Effect.map(
    memoryStack.make({ outbox: false, notify: true }),
    ({ notifier, store }) => Context.make(FeedNotifier, notifier).pipe(Context.add(EventStore.EventStore, store))
  )
)
