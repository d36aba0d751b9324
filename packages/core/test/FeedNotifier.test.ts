// The waits of a caught-up feed reader: the poll interval, and the re-reads after a hint whose events the horizon still
// hid; and `follower`, which waits on hints with them. No database: the hints are a queue the test fills.
import { assert, describe, it } from "@effect/vitest"
import * as FeedNotifier from "@eventfold/core/FeedNotifier"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as TestClock from "effect/TestClock"

const millis = (d: Duration.Duration) => Duration.toMillis(d)

describe("FeedNotifier.liveWait", () => {
  it("waits the poll interval until a hint", () => {
    const wait = FeedNotifier.liveWait("10 seconds")
    assert.deepStrictEqual([wait.next(false), wait.next(true), wait.next(false)].map(millis), [10_000, 10_000, 10_000])
  })

  it("after a hint whose events the read did not find, re-reads quickly, then a second apart, for about 5 s", () => {
    const wait = FeedNotifier.liveWait("10 minutes")
    wait.hinted()
    const waits = Array.from({ length: 12 }, () => millis(wait.next(false)))
    assert.deepStrictEqual(waits, [20, 40, 80, 160, 320, 640, 1000, 1000, 1000, 1000, 600_000, 600_000])
  })

  it("stops re-reading once a read finds events, and starts again on the next hint", () => {
    const wait = FeedNotifier.liveWait("10 minutes")
    wait.hinted()
    assert.deepStrictEqual([wait.next(false), wait.next(false), wait.next(true)].map(millis), [20, 40, 600_000])
    wait.hinted()
    assert.strictEqual(millis(wait.next(false)), 20)
  })

  it("never waits longer than the poll interval", () => {
    const wait = FeedNotifier.liveWait("100 millis")
    wait.hinted()
    assert.deepStrictEqual(Array.from({ length: 8 }, () => millis(wait.next(false))), [
      20,
      40,
      80,
      100,
      100,
      100,
      100,
      100
    ])
  })
})

describe("FeedNotifier.follower", () => {
  it.effect("a hint ends the wait at once; with none, the reader re-reads on the poll interval", () =>
    Effect.gen(function*() {
      const hints = yield* Queue.sliding<void>(1)
      const wait = FeedNotifier.follower(hints, "1 minute")
      const polled = yield* Effect.fork(wait(false))
      yield* TestClock.adjust("59 seconds")
      assert.isTrue(Option.isNone(yield* Fiber.poll(polled)))
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(polled)

      const hinted = yield* Effect.fork(wait(false))
      yield* Queue.offer(hints, undefined)
      yield* Fiber.join(hinted)
      // The read after the hint found nothing (the horizon hid it): the next wait is a quick re-read.
      const recheck = yield* Effect.fork(wait(false))
      yield* TestClock.adjust("20 millis")
      yield* Fiber.join(recheck)
    }))
})
