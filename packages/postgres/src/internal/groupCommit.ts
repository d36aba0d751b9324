/**
 * @internal Group commit: requests submitted by concurrent fibers are coalesced into batches, with up to
 * `concurrency` batches in flight.
 *
 * A request that finds a batch slot free leads: it yields once, so that the fibers resumed with it (the callers of
 * the batch that just ended) can queue behind it, then goes out with everything queued, up to `maxBatch`, as one
 * batch. A lone request thus goes out at once from its caller's fiber: no timer, no hop to a worker. A request that
 * finds every slot taken queues; the slot's holder, when done, hands the queue to a fiber of the store's scope, which
 * runs it batch after batch until it is empty. A batch of several requests always runs in such a fiber, so that an
 * interrupted caller never takes its neighbours' requests down with it. Each request gets its own outcome back.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Scope from "effect/Scope"

/** @internal */
export interface Options<A, B, E, R> {
  readonly maxBatch: number
  /** How many batches may be in flight at once. */
  readonly concurrency: number
  /**
   * Runs a batch (never empty) and returns one outcome per request, in order. It must not fail: a failure of the
   * whole batch is each request's failure.
   */
  readonly run: (batch: ReadonlyArray<A>) => Effect.Effect<ReadonlyArray<Exit.Exit<B, E>>, never, R>
  /** Runs a request that found no other queued behind it, in its caller's fiber, holding the slot. */
  readonly runAlone: (request: A) => Effect.Effect<B, E, R>
}

/** @internal */
export interface GroupCommit<A, B, E> {
  readonly submit: (request: A) => Effect.Effect<B, E>
}

interface Entry<A, B, E> {
  readonly request: A
  readonly deferred: Deferred.Deferred<B, E>
}

/** @internal Closing the scope interrupts the requests still queued or in flight. */
export const make = <A, B, E, R>(
  options: Options<A, B, E, R>
): Effect.Effect<GroupCommit<A, B, E>, never, Scope.Scope | R> =>
  Effect.gen(function*() {
    const context = yield* Effect.context<R>()
    const scope = yield* Effect.scope
    // Every decision on these two is taken in one synchronous step, so no request can queue unseen by the slot's
    // holder as it gives the slot back.
    let inFlight = 0
    let closed = false
    const queued: Array<Entry<A, B, E>> = []

    const outcomeOf = (exits: ReadonlyArray<Exit.Exit<B, E>>, i: number) => exits[i] ?? Exit.die(missing)
    const runBatch = (entries: ReadonlyArray<Entry<A, B, E>>) =>
      options.run(entries.map((entry) => entry.request)).pipe(
        Effect.flatMap((exits) =>
          Effect.forEach(entries, (entry, i) => Deferred.done(entry.deferred, outcomeOf(exits, i)), { discard: true })
        ),
        // Interrupted mid-batch (the store's scope closes): no caller is left waiting.
        Effect.onInterrupt(() => Effect.forEach(entries, (entry) => Deferred.interrupt(entry.deferred))),
        Effect.provide(context)
      )
    // Holds a slot: runs the queue batch after batch, then gives the slot back.
    const drain: Effect.Effect<void> = Effect.suspend(() => {
      const batch = queued.splice(0, options.maxBatch)
      if (batch.length === 0) {
        inFlight--
        return Effect.void
      }
      return Effect.zipRight(runBatch(batch), drain)
    })
    const startDrain = Effect.asVoid(Effect.forkIn(Effect.interruptible(drain), scope))
    // The slot's holder is done: whatever queued meanwhile goes out next, else the slot is free again.
    const release = Effect.suspend(() => {
      if (queued.length > 0 && !closed) return startDrain
      inFlight--
      return Effect.void
    })
    const lead = (request: A, fiberId: Parameters<typeof Deferred.unsafeMake>[0]) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.zipRight(
          Effect.yieldNow(),
          Effect.suspend(() => {
            if (queued.length === 0 || closed) {
              // Alone: in the caller's fiber.
              return restore(Effect.provide(options.runAlone(request), context)).pipe(Effect.ensuring(release))
            }
            // Others queued behind it: they go out together, from a fiber of the store's scope, which takes the slot.
            const deferred = Deferred.unsafeMake<B, E>(fiberId)
            queued.unshift({ request, deferred })
            return Effect.zipRight(startDrain, restore(Deferred.await(deferred)))
          })
        )
      )
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        closed = true
        return Effect.forEach(queued.splice(0), (entry) => Deferred.interrupt(entry.deferred), { discard: true })
      })
    )
    return {
      submit: (request) =>
        Effect.withFiberRuntime((fiber) => {
          if (closed) return Effect.interrupt
          if (inFlight < options.concurrency) {
            inFlight++
            return lead(request, fiber.id())
          }
          const deferred = Deferred.unsafeMake<B, E>(fiber.id())
          queued.push({ request, deferred })
          return Deferred.await(deferred)
        })
    }
  })

const missing = new Error("group commit: the batch returned fewer outcomes than requests")
