/**
 * @internal Reading the global feed: where a reader starts, pages read together with the head they were read under,
 * the wait between reads once caught up (`FeedNotifier.liveWait`: quick re-reads after a hint the feed horizon still
 * hides), and the plain `Subscription.stream`, which has no checkpoint and no owner.
 */
import * as Chunk from "effect/Chunk"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import type * as Errors from "../../Errors.js"
import * as EventStore from "../../EventStore.js"
import * as FeedNotifier from "../../FeedNotifier.js"
import * as Position from "../../Position.js"
import * as RecordedEvent from "../../RecordedEvent.js"
import type * as Subscription from "../../Subscription.js"
import type * as Tenant from "../../Tenant.js"

/** @internal The position a reader with no checkpoint starts after. */
export const resolveStart = (
  store: EventStore.EventStore["Type"],
  startFrom: Subscription.StartFrom
): Effect.Effect<Position.Position, Errors.StoreError> => {
  switch (startFrom._tag) {
    case "Beginning":
      return Effect.succeed(Position.start)
    case "End":
      return store.headPosition
    case "At":
      return Effect.succeed(startFrom.position)
  }
}

/** @internal A page of the feed and the head read just before it. */
export type Page = readonly [head: Position.Position, events: ReadonlyArray<RecordedEvent.RecordedEvent>]

/**
 * @internal Reads the page after a position. The head is read before the page, so every event up to it was visible
 * to the page's read: once caught up, events the filter dropped up to the head are behind the reader too.
 */
export const pageReader = (
  store: EventStore.EventStore["Type"],
  filter: Subscription.Filter,
  batchSize: number
) =>
(after: Position.Position): Effect.Effect<Page, Errors.StoreError | Errors.InvalidInput | Tenant.TenantRequired> =>
  Effect.zip(store.headPosition, store.readAll({ ...filter, after, limit: batchSize }))

/** @internal Waits up to `wait` for a feed hint or a restart signal (a reset), whichever comes first. */
export const awaitWake = (
  hints: Queue.Dequeue<void>,
  wait: Duration.Duration,
  restarts: Queue.Dequeue<void>
): Effect.Effect<"hint" | "timeout" | "restart"> =>
  Effect.raceFirst(
    Effect.map(FeedNotifier.awaitHint(hints, wait), (hinted) => hinted ? "hint" as const : "timeout" as const),
    Effect.as(Queue.take(restarts), "restart" as const)
  )

/** @internal The implementation of `Subscription.stream`. */
export const stream = (
  options: Subscription.Filter & {
    readonly startFrom: Subscription.StartFrom
    readonly batchSize?: number | undefined
    readonly pollInterval?: Duration.DurationInput | undefined
  }
): Stream.Stream<
  RecordedEvent.RecordedEvent,
  Errors.StoreError | Errors.InvalidInput | Tenant.TenantRequired,
  EventStore.EventStore | FeedNotifier.FeedNotifier
> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const hints = yield* Effect.flatMap(FeedNotifier.FeedNotifier, (n) => n.subscribe)
    const batchSize = options.batchSize ?? 500
    const pollInterval = options.pollInterval ?? "1 second"
    const filter = {
      eventTypes: options.eventTypes,
      streamTypes: options.streamTypes,
      tenantId: options.tenantId,
      allTenants: options.allTenants
    }
    const start = yield* resolveStart(store, options.startFrom)
    const wait = FeedNotifier.follower(hints, pollInterval)
    return Stream.paginateChunkEffect(
      { position: start, wait: false, found: false },
      (state) =>
        Effect.zipRight(
          state.wait ? wait(state.found) : Effect.void,
          Effect.map(store.readAll({ ...filter, after: state.position, limit: batchSize }), (page) => {
            const position = page.length > 0 ? RecordedEvent.position(page[page.length - 1]!) : state.position
            return [
              Chunk.unsafeFromArray(page),
              Option.some({ position, wait: page.length < batchSize, found: page.length > 0 })
            ] as const
          })
        )
    )
  }))
