/**
 * @internal Group commit: requests submitted by concurrent fibers are coalesced into batches, with up to
 * `concurrency` batches in flight.
 *
 * A request that finds a batch slot free leads: it yields once, so that the fibers resumed with it (the callers of
 * the batch that just ended) can queue behind it, then goes out with everything queued, up to `maxBatch`, as one
 * batch. A lone request thus goes out at once, in a fiber of its own: no timer, no queue. A request that
 * finds every slot taken queues; the slot's holder, when done, hands the queue to a drain fiber of the store, which
 * runs it batch after batch until it is empty. A batch of several requests always runs in such a fiber, so that an
 * interrupted caller never takes its neighbours' requests down with it. Each request gets its own outcome back.
 */
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberSet from "effect/FiberSet"
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
  /** Runs a request that found no other queued behind it, holding the slot, in a fiber of the store. */
  readonly runAlone: (request: A) => Effect.Effect<B, E>
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
    // Drains run on the store's own runtime (its context, no caller's span or annotations), in a set that the scope
    // interrupts after the finalizer below has closed the queue.
    const drains = yield* FiberSet.make<void>()
    const runFork = yield* FiberSet.runtime(drains)<R>()
    // Every decision on these is taken in one synchronous step, so no request can queue unseen by the slot's holder
    // as it gives the slot back, and every slot taken is given back exactly once.
    let inFlight = 0
    let closed = false
    const queued: Array<Entry<A, B, E>> = []

    // Holds a slot: runs the queue batch after batch, then gives the slot back. Uninterruptible but for the batch's
    // own statement, so that the requests it takes off the queue always get an outcome (an interruption or a defect
    // of the batch is each request's failure).
    const drain: Effect.Effect<void, never, R> = Effect.suspend(() => {
      const batch = queued.splice(0, options.maxBatch)
      if (batch.length === 0) {
        inFlight--
        return Effect.void
      }
      return Effect.interruptible(options.run(batch.map((entry) => entry.request))).pipe(
        Effect.exit,
        Effect.flatMap((exit) =>
          Exit.isSuccess(exit)
            ? Effect.zipRight(
              Effect.forEach(
                batch,
                (entry, i) => Deferred.done(entry.deferred, exit.value[i] ?? Exit.die(missing)),
                { discard: true }
              ),
              drain
            )
            : Effect.zipRight(
              Effect.forEach(batch, (entry) => Deferred.failCause(entry.deferred, exit.cause), { discard: true }),
              // Interrupted: the store is closing, and the finalizer has failed what is still queued.
              Cause.isInterruptedOnly(exit.cause) ? Effect.void : drain
            )
        )
      )
    })
    const startDrain = Effect.sync(() => {
      runFork(Effect.uninterruptible(drain))
    })
    // The slot's holder is done: whatever queued meanwhile goes out next, else the slot is free again.
    const release = Effect.suspend(() => {
      if (queued.length > 0 && !closed) return startDrain
      inFlight--
      return Effect.void
    })
    // Runs with the slot taken, uninterruptible but where `restore` says.
    const lead = (request: A, fiberId: Parameters<typeof Deferred.unsafeMake>[0], restore: Restore) =>
      Effect.zipRight(
        Effect.yieldNow(),
        Effect.suspend(() => {
          if (closed) return Effect.zipRight(release, Effect.interrupt)
          if (queued.length === 0) {
            // Alone, at once, in a fiber of the store: the caller's interruption (a timeout, a race) stops its wait,
            // never the statement. An interrupted statement is cancelled with pg_cancel_backend, a signal that can
            // land on the connection's next statement instead, another caller's.
            const deferred = Deferred.unsafeMake<B, E>(fiberId)
            return Effect.zipRight(
              Effect.sync(() => {
                runFork(
                  Effect.suspend(() => options.runAlone(request)).pipe(
                    Effect.exit,
                    Effect.flatMap((exit) => Deferred.done(deferred, exit)),
                    // The store is closing.
                    Effect.onInterrupt(() => Deferred.interrupt(deferred)),
                    Effect.ensuring(release)
                  )
                )
              }),
              restore(Deferred.await(deferred))
            )
          }
          // Others queued behind it: they go out together from a drain, which takes the slot over.
          const deferred = Deferred.unsafeMake<B, E>(fiberId)
          queued.unshift({ request, deferred })
          return Effect.zipRight(startDrain, restore(Deferred.await(deferred)))
        })
      )
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        closed = true
        return Effect.forEach(queued.splice(0), (entry) => Deferred.interrupt(entry.deferred), { discard: true })
      })
    )
    return {
      // The slot is taken and handed on in one uninterruptible step: an interruption of the caller can never keep it.
      submit: (request) =>
        Effect.uninterruptibleMask((restore) =>
          Effect.withFiberRuntime((fiber) => {
            if (closed) return Effect.interrupt
            if (inFlight < options.concurrency) {
              inFlight++
              return lead(request, fiber.id(), restore)
            }
            const deferred = Deferred.unsafeMake<B, E>(fiber.id())
            queued.push({ request, deferred })
            return restore(Deferred.await(deferred))
          })
        )
    }
  })

type Restore = <X, XE, XR>(effect: Effect.Effect<X, XE, XR>) => Effect.Effect<X, XE, XR>

const missing = new Error("group commit: the batch returned fewer outcomes than requests")
