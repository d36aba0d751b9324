/**
 * @internal Group commit: requests submitted by concurrent fibers are coalesced into batches. A lone request goes out
 * at once (no timer, no added delay); while `concurrency` batches are in flight, later requests queue, and the next
 * free worker takes everything queued, up to `maxBatch`, as one batch. Each request gets its own outcome back.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Queue from "effect/Queue"
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
}

/** @internal */
export interface GroupCommit<A, B, E> {
  readonly submit: (request: A) => Effect.Effect<B, E>
}

interface Entry<A, B, E> {
  readonly request: A
  readonly deferred: Deferred.Deferred<B, E>
}

/** @internal The workers live in the scope; closing it interrupts the requests still queued or in flight. */
export const make = <A, B, E, R>(
  options: Options<A, B, E, R>
): Effect.Effect<GroupCommit<A, B, E>, never, Scope.Scope | R> =>
  Effect.gen(function*() {
    const queue = yield* Queue.unbounded<Entry<A, B, E>>()
    const runBatch = (entries: ReadonlyArray<Entry<A, B, E>>) =>
      options.run(entries.map((entry) => entry.request)).pipe(
        Effect.flatMap((exits) =>
          Effect.forEach(entries, (entry, i) => Deferred.done(entry.deferred, exits[i] ?? Exit.die(missing)), {
            discard: true
          })
        ),
        // A worker interrupted mid-batch (the store's scope closes) leaves no caller waiting.
        Effect.onInterrupt(() => Effect.forEach(entries, (entry) => Deferred.interrupt(entry.deferred)))
      )
    const worker = Queue.takeBetween(queue, 1, options.maxBatch).pipe(
      Effect.flatMap((chunk) => runBatch(Array.from(chunk))),
      Effect.forever
    )
    yield* Effect.forkScoped(Effect.all(Array.from({ length: options.concurrency }, () => worker), {
      concurrency: "unbounded",
      discard: true
    }))
    yield* Effect.addFinalizer(() =>
      Queue.takeAll(queue).pipe(
        Effect.flatMap((left) => Effect.forEach(left, (entry) => Deferred.interrupt(entry.deferred))),
        Effect.zipRight(Queue.shutdown(queue))
      )
    )
    return {
      submit: (request) =>
        Effect.flatMap(Deferred.make<B, E>(), (deferred) =>
          Effect.zipRight(Queue.offer(queue, { request, deferred }), Deferred.await(deferred)))
    }
  })

const missing = new Error("group commit: the batch returned fewer outcomes than requests")
