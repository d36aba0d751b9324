/**
 * @internal Running a subscription: ownership sessions in a loop. A session claims the lease, catches up from the
 * checkpoint in pages (reading the next page while the current one is handled), then follows the feed live, until
 * a reset, a lost lease or a checkpoint conflict ends it and the loop claims again. Retryable store failures back off
 * and start a new session; any other stops the run, typed.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import type * as CheckpointStore from "../../CheckpointStore.js"
import * as Errors from "../../Errors.js"
import type * as EventStore from "../../EventStore.js"
import * as FeedNotifier from "../../FeedNotifier.js"
import * as Position from "../../Position.js"
import * as RecordedEvent from "../../RecordedEvent.js"
import type * as Subscription from "../../Subscription.js"
import type * as Tenant from "../../Tenant.js"
import type * as Delivery from "./delivery.js"
import * as FeedReader from "./feedReader.js"
import * as Lease from "./lease.js"
import type * as Progress from "./progress.js"
import type * as Settings from "./settings.js"

/** @internal Everything a running subscription works with. */
export interface Runtime<R> {
  readonly settings: Settings.Settings
  readonly store: EventStore.EventStore["Type"]
  readonly checkpoints: CheckpointStore.CheckpointStore["Type"]
  readonly notifier: FeedNotifier.FeedNotifier["Type"]
  readonly progress: Progress.Progress
  readonly delivery: Delivery.Delivery<R>
}

// Catch up from the claimed position, then live; ends only by failing (a reset ends it with SessionEnded).
const follow = <R>(rt: Runtime<R>, epoch: number, claimed: Position.Position, hints: Queue.Dequeue<void>) =>
  Effect.gen(function*() {
    const { delivery, progress, settings } = rt
    let position = claimed
    yield* progress.claimed(epoch, position)
    const readPage = FeedReader.pageReader(rt.store, settings.filter, settings.batchSize)
    const wait = FeedNotifier.liveWait(settings.pollInterval)
    let lastHead: Position.Position | undefined
    let prefetched:
      | Fiber.Fiber<FeedReader.Page, Errors.StoreError | Errors.InvalidInput | Tenant.TenantRequired>
      | undefined
    while (true) {
      const [head, page] = prefetched ? yield* Fiber.join(prefetched) : yield* readPage(position)
      prefetched = undefined
      const caughtUp = page.length < settings.batchSize
      if (!caughtUp) {
        // While catching up, read the next page (on its own pooled connection, outside any transaction) while this
        // one is handled.
        prefetched = yield* Effect.fork(readPage(RecordedEvent.position(page[page.length - 1]!)))
      }
      if (page.length > 0) position = yield* delivery.handlePage(epoch, page, position)
      // Everything up to `head` was visible to this read, so events the filter dropped are behind us too.
      if (caughtUp && Position.isAfter(head, position)) {
        yield* progress.guarded(epoch, Effect.zipRight(progress.commit(position, head), progress.committed(head, 0, 0)))
        position = head
      }
      const now = yield* Clock.currentTimeMillis
      const lag = caughtUp ? 0n : head.globalPosition - position.globalPosition
      const age = caughtUp || page.length === 0 ? 0 : Math.max(0, now - page[page.length - 1]!.recordedAt.getTime())
      yield* progress.observe(caughtUp ? "live" : "catching-up", lag > 0n ? lag : 0n, age)
      if (caughtUp) {
        // The head moved (or events came): what a hint announced is readable now, even when the filter dropped it,
        // so no quick re-reads for it.
        const moved = lastHead === undefined || Position.isAfter(head, lastHead)
        lastHead = head
        const woken = yield* FeedReader.awaitWake(hints, wait.next(page.length > 0 || moved), progress.restarts)
        if (woken === "restart") return yield* new Lease.SessionEnded({ reason: "reset" })
        if (woken === "hint") wait.hinted()
      }
    }
  })

const session = <R>(rt: Runtime<R>, initial: Position.Position, hints: Queue.Dequeue<void>) =>
  Effect.gen(function*() {
    const { progress } = rt
    yield* progress.setPhase("standby")
    yield* progress.awaitNoReset
    const epoch = yield* progress.epoch
    const claimed = yield* Lease.claim(rt.checkpoints, rt.settings, initial)
    yield* Queue.takeAll(progress.restarts)
    yield* progress.setPhase("catching-up")
    yield* Effect.raceFirst(follow(rt, epoch, claimed, hints), Lease.renew(rt.checkpoints, rt.settings, progress)).pipe(
      Effect.catchTags({
        SessionEnded: (e) => Effect.logDebug(`subscription ${rt.settings.id}: ${e.reason}`),
        CheckpointConflict: (e) => Effect.logInfo(e.message)
      })
    )
  })

/** @internal Sessions in a loop; needs a `Scope` for the hint subscription. */
export const run = <R>(
  rt: Runtime<R>,
  startFrom: Subscription.StartFrom
) =>
  Effect.gen(function*() {
    const { progress, settings } = rt
    const hints = yield* rt.notifier.subscribe
    const initial = yield* FeedReader.resolveStart(rt.store, startFrom).pipe(
      Effect.tapError((e) => progress.noteError(e.message)),
      Effect.retry({ schedule: settings.storeRetry, while: Errors.isRetryableStoreError })
    )
    // Retryable store failures never end the run: note them, back off, claim again and resume from the
    // checkpoint. Any other store failure (missing table, permission, bad checkpoint) stops it, typed.
    const backoff = yield* Schedule.driver(settings.storeRetry)
    return yield* session(rt, initial, hints).pipe(
      Effect.zipRight(backoff.reset),
      Effect.catchTag("StoreError", (e) =>
        Effect.zipRight(
          Effect.zipRight(progress.countError("store"), progress.noteError(e.message)),
          e.retryable === true
            ? Effect.zipRight(
              Effect.logWarning(`subscription ${settings.id}: ${e.message}`),
              Effect.ignore(backoff.next(e))
            )
            : Effect.zipRight(progress.setPhase("failed"), Effect.fail(e))
        )),
      Effect.forever
    )
  })
