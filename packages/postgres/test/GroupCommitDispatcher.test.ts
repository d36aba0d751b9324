// The group-commit dispatcher (internal/groupCommit.ts) on its own, with no database: what it promises whatever the
// timing. An interrupted caller never keeps the batch slot; closing the store's scope leaves no caller waiting; a
// batch that dies fails exactly its own requests; a lone request runs in its caller's fiber; the requests that queue
// behind a lone one go out together. Interruptions and scope closes are swept across many points of the fibers'
// progress (Effect may pause a fiber between any two operations), so a window between two steps is hit, not hoped for.
import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as GroupCommit from "../src/internal/groupCommit.js"

/** `n` operations of nothing: moves the point where the runtime's operation budget runs out. */
const steps = (n: number): Effect.Effect<void> => {
  let effect: Effect.Effect<void> = Effect.void
  for (let i = 0; i < n; i++) effect = Effect.flatMap(effect, () => Effect.void)
  return effect
}

const yields = (n: number) => Effect.forEach(Array.from({ length: n }), () => Effect.yieldNow(), { discard: true })

/** Completes within a bound, or is reported as hanging. */
const settles = <A, E>(fiber: Fiber.Fiber<A, E>) =>
  Fiber.await(fiber).pipe(Effect.timeout("5 seconds"), Effect.option, Effect.map(Option.isSome))

interface Recorded {
  readonly batches: Array<ReadonlyArray<number>>
  readonly alone: Array<number>
}

const dispatcher = (
  recorded: Recorded,
  options: {
    readonly concurrency?: number
    readonly maxBatch?: number
    readonly run?: (batch: ReadonlyArray<number>) => Effect.Effect<ReadonlyArray<Exit.Exit<number, string>>>
    readonly runAlone?: (request: number) => Effect.Effect<number, string>
  } = {}
) =>
  GroupCommit.make<number, number, string, never>({
    maxBatch: options.maxBatch ?? 16,
    concurrency: options.concurrency ?? 1,
    run: (batch) =>
      Effect.suspend(() => {
        recorded.batches.push(batch)
        return options.run?.(batch) ?? Effect.succeed(batch.map((n) => Exit.succeed(n * 10)))
      }),
    runAlone: (request) =>
      Effect.suspend(() => {
        recorded.alone.push(request)
        return options.runAlone?.(request) ?? Effect.succeed(request * 10)
      })
  })

const fresh = (): Recorded => ({ batches: [], alone: [] })

describe("group commit dispatcher", () => {
  it.live("a lone request runs alone; the requests that queue behind it go out together, each with its outcome", () =>
    Effect.scoped(Effect.gen(function*() {
      const recorded = fresh()
      const gate = yield* Deferred.make<void>()
      const gc = yield* dispatcher(recorded, { runAlone: (n) => Effect.as(Deferred.await(gate), n * 10) })
      const first = yield* Effect.fork(gc.submit(1))
      yield* yields(5)
      const rest = yield* Effect.fork(
        Effect.all([2, 3, 4].map((n) => gc.submit(n)), { concurrency: "unbounded" })
      )
      yield* yields(5)
      yield* Deferred.succeed(gate, undefined)
      assert.strictEqual(yield* Fiber.join(first), 10)
      assert.deepStrictEqual(yield* Fiber.join(rest), [20, 30, 40])
      assert.deepStrictEqual(recorded.alone, [1])
      assert.deepStrictEqual(recorded.batches, [[2, 3, 4]])
      // Nothing queued any more: the next one is alone again.
      assert.strictEqual(yield* gc.submit(5), 50)
      assert.deepStrictEqual(recorded.alone, [1, 5])
    })))

  it.live(
    "an interrupted caller never keeps the batch slot, wherever the interruption lands",
    () =>
      Effect.gen(function*() {
        for (let n = 0; n < 2_100; n += 7) {
          const leaked = yield* Effect.scoped(Effect.gen(function*() {
            const gc = yield* dispatcher(fresh())
            const caller = yield* Effect.fork(Effect.zipRight(steps(n), gc.submit(1)))
            yield* Effect.yieldNow()
            yield* Fiber.interrupt(caller)
            const next = yield* Effect.fork(gc.submit(2))
            return !(yield* settles(next))
          }))
          assert.isFalse(leaked, `a later request hung after a caller was interrupted ${n} steps in`)
        }
      }),
    60_000
  )

  it.live(
    "interrupted callers in the middle of batches: every other caller gets its outcome",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const recorded = fresh()
        const gc = yield* dispatcher(recorded, {
          run: (batch) => Effect.as(Effect.sleep("1 millis"), batch.map((n) => Exit.succeed(n * 10))),
          runAlone: (n) => Effect.as(Effect.sleep("1 millis"), n * 10)
        })
        const callers = yield* Effect.forEach(
          Array.from({ length: 300 }, (_, i) => i),
          (i) => Effect.fork(Effect.zipRight(steps(i % 13), gc.submit(i))),
          { concurrency: "unbounded" }
        )
        // Every third caller is interrupted, at whatever point it has reached.
        for (let i = 0; i < callers.length; i += 3) {
          yield* yields(i % 4)
          yield* Fiber.interrupt(callers[i]!)
        }
        for (let i = 0; i < callers.length; i++) {
          if (i % 3 === 0) continue
          assert.deepStrictEqual(yield* Fiber.await(callers[i]!), Exit.succeed(i * 10), `caller ${i}`)
        }
        assert.strictEqual(yield* gc.submit(1_000), 10_000, "the slot is free afterwards")
      })),
    60_000
  )

  it.live(
    "closing the scope leaves no caller waiting, queued or in a batch, wherever it lands",
    () =>
      Effect.gen(function*() {
        for (let k = 0; k < 40; k++) {
          for (let j = 1; j <= 3; j++) {
            const scope = yield* Scope.make()
            const gate = yield* Deferred.make<void>()
            const gc = yield* Scope.extend(
              dispatcher(fresh(), {
                maxBatch: 4,
                run: (batch) => Effect.as(steps(k), batch.map((n) => Exit.succeed(n))),
                runAlone: (n) => Effect.as(Deferred.await(gate), n)
              }),
              scope
            )
            yield* Effect.fork(gc.submit(0))
            yield* yields(5)
            const callers = yield* Effect.forEach(
              Array.from({ length: 200 }, (_, i) => i + 1),
              (i) => Effect.fork(gc.submit(i))
            )
            yield* yields(5)
            yield* Deferred.succeed(gate, undefined)
            yield* yields(j)
            yield* Scope.close(scope, Exit.void)
            for (const caller of callers) {
              assert.isTrue(yield* settles(caller), `a caller hung after the scope closed (k=${k}, j=${j})`)
            }
            // Closed: new requests are interrupted, not queued for ever.
            const late = yield* Effect.exit(gc.submit(-1))
            assert.isTrue(Exit.isInterrupted(late))
          }
        }
      }),
    60_000
  )

  it.live("interrupting a lone request's caller stops its wait, never the request itself", () =>
    Effect.scoped(Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const done: Array<number> = []
      const gc = yield* dispatcher(fresh(), {
        runAlone: (n) => Effect.as(Effect.zipRight(Deferred.await(gate), Effect.sync(() => done.push(n))), n)
      })
      const caller = yield* Effect.fork(gc.submit(1))
      yield* yields(5)
      // The caller gives up at once (a timeout, say) ...
      yield* Fiber.interrupt(caller)
      assert.deepStrictEqual(done, [])
      // ... and the request still runs to its end, then gives the slot back.
      yield* Deferred.succeed(gate, undefined)
      yield* yields(5)
      assert.deepStrictEqual(done, [1])
      assert.strictEqual(yield* gc.submit(2), 2)
      assert.deepStrictEqual(done, [1, 2])
    })))

  it.live("a batch that dies fails exactly its own requests; the dispatcher goes on", () =>
    Effect.scoped(Effect.gen(function*() {
      const recorded = fresh()
      const gate = yield* Deferred.make<void>()
      let die = true
      const gc = yield* dispatcher(recorded, {
        run: (batch) => die ? Effect.die("the batch died") : Effect.succeed(batch.map((n) => Exit.succeed(n * 10))),
        runAlone: (n) => n === 0 ? Effect.as(Deferred.await(gate), 0) : Effect.succeed(n * 10)
      })
      const first = yield* Effect.fork(gc.submit(0))
      yield* yields(5)
      const queued = yield* Effect.forEach([1, 2, 3], (n) => Effect.fork(gc.submit(n)))
      yield* yields(5)
      yield* Deferred.succeed(gate, undefined)
      assert.strictEqual(yield* Fiber.join(first), 0)
      for (const caller of queued) {
        const exit = yield* Fiber.await(caller).pipe(
          Effect.timeoutFail({ duration: "2 seconds", onTimeout: () => "hung" })
        )
        assert.isTrue(Exit.isFailure(exit) && !Exit.isInterrupted(exit), "died with its batch")
      }
      die = false
      assert.strictEqual(yield* gc.submit(7), 70)
    })))

  it.live("a request that fails alone fails only itself", () =>
    Effect.scoped(Effect.gen(function*() {
      const gc = yield* dispatcher(fresh(), { runAlone: (n) => n === 1 ? Effect.fail("refused") : Effect.succeed(n) })
      assert.deepStrictEqual(yield* Effect.flip(gc.submit(1)), "refused")
      assert.strictEqual(yield* gc.submit(2), 2)
    })))
})
