/**
 * The behaviour every `CheckpointStore` implementation must have, as one exported test suite:
 * `CheckpointStoreContract.suite("memory", CheckpointStore.layerMemory)`.
 *
 * @since 0.1.0
 */
import { assert, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as CheckpointStore from "./CheckpointStore.js"
import * as Position from "./Position.js"

const unique = (prefix: string) => `${prefix}-${crypto.randomUUID()}`

const at = (transactionId: number, globalPosition: number) =>
  Position.make(BigInt(transactionId), BigInt(globalPosition))

/**
 * Registers the contract suite against a CheckpointStore Layer, built once; every test uses its own subscription id.
 *
 * @since 0.1.0
 * @category suites
 */
export const suite = <E>(name: string, storeLayer: Layer.Layer<CheckpointStore.CheckpointStore, E>): void =>
  layer(storeLayer, { excludeTestServices: true, timeout: "120 seconds" })(
    `CheckpointStore contract: ${name}`,
    (it) => {
      it.effect("a first claim creates the checkpoint at the initial position; others wait while the lease runs", () =>
        Effect.gen(function*() {
          const store = yield* CheckpointStore.CheckpointStore
          const subscriptionId = unique("sub")
          assert.isTrue(Option.isNone(yield* store.get(subscriptionId)))
          const first = yield* store.claim({ subscriptionId, owner: "a", lease: "10 seconds", initial: at(7, 3) })
          assert.deepStrictEqual(first, Option.some(at(7, 3)))
          const other = yield* store.claim({ subscriptionId, owner: "b", lease: "10 seconds", initial: at(0, 0) })
          assert.isTrue(Option.isNone(other))
          const renewed = yield* store.claim({ subscriptionId, owner: "a", lease: "10 seconds", initial: at(0, 0) })
          assert.deepStrictEqual(renewed, Option.some(at(7, 3)))
          const stored = Option.getOrThrow(yield* store.get(subscriptionId))
          assert.deepStrictEqual(stored.owner, Option.some("a"))
          assert.deepStrictEqual(stored.position, at(7, 3))
          assert.isTrue(Option.isSome(stored.leaseUntil))
          assert.strictEqual(stored.status, "active")
        }))

      it.effect("release hands ownership over at once; an expired lease can be taken", () =>
        Effect.gen(function*() {
          const store = yield* CheckpointStore.CheckpointStore
          const subscriptionId = unique("sub")
          yield* store.claim({ subscriptionId, owner: "a", lease: "10 seconds", initial: Position.start })
          yield* store.release(subscriptionId, "b")
          assert.isTrue(
            Option.isNone(
              yield* store.claim({ subscriptionId, owner: "b", lease: "300 millis", initial: Position.start })
            )
          )
          yield* store.release(subscriptionId, "a")
          assert.isTrue(Option.isNone(Option.getOrThrow(yield* store.get(subscriptionId)).owner))
          // A lease long enough that c's first claim always runs inside it, even on a loaded machine.
          assert.isTrue(
            Option.isSome(
              yield* store.claim({ subscriptionId, owner: "b", lease: "2 seconds", initial: Position.start })
            )
          )
          assert.isTrue(
            Option.isNone(
              yield* store.claim({ subscriptionId, owner: "c", lease: "1 second", initial: Position.start })
            )
          )
          yield* Effect.sleep("2500 millis")
          assert.isTrue(
            Option.isSome(
              yield* store.claim({ subscriptionId, owner: "c", lease: "1 second", initial: Position.start })
            )
          )
          assert.deepStrictEqual(Option.getOrThrow(yield* store.get(subscriptionId)).owner, Option.some("c"))
        }))

      it.effect("commit is a compare-and-set on owner and position", () =>
        Effect.gen(function*() {
          const store = yield* CheckpointStore.CheckpointStore
          const subscriptionId = unique("sub")
          yield* store.claim({ subscriptionId, owner: "a", lease: "10 seconds", initial: Position.start })
          yield* store.commit({ subscriptionId, owner: "a", expected: Position.start, position: at(5, 10) })
          const stale = yield* Effect.flip(
            store.commit({ subscriptionId, owner: "a", expected: Position.start, position: at(6, 11) })
          )
          assert.strictEqual(stale._tag, "CheckpointConflict")
          const notOwner = yield* Effect.flip(
            store.commit({ subscriptionId, owner: "b", expected: at(5, 10), position: at(6, 11) })
          )
          assert.strictEqual(notOwner._tag, "CheckpointConflict")
          const missing = yield* Effect.flip(
            store.commit({ subscriptionId: unique("none"), owner: "a", expected: Position.start, position: at(1, 1) })
          )
          assert.strictEqual(missing._tag, "CheckpointConflict")
          yield* store.commit({ subscriptionId, owner: "a", expected: at(5, 10), position: at(9, 12) })
          assert.deepStrictEqual(Option.getOrThrow(yield* store.get(subscriptionId)).position, at(9, 12))
        }))

      it.effect("after a takeover the old owner can no longer move the checkpoint", () =>
        Effect.gen(function*() {
          const store = yield* CheckpointStore.CheckpointStore
          const subscriptionId = unique("sub")
          yield* store.claim({ subscriptionId, owner: "a", lease: "200 millis", initial: Position.start })
          yield* Effect.sleep("400 millis")
          const taken = yield* store.claim({ subscriptionId, owner: "b", lease: "10 seconds", initial: Position.start })
          assert.deepStrictEqual(taken, Option.some(Position.start))
          const error = yield* Effect.flip(
            store.commit({ subscriptionId, owner: "a", expected: Position.start, position: at(3, 3) })
          )
          assert.strictEqual(error._tag, "CheckpointConflict")
          assert.isTrue(
            Option.isNone(
              yield* store.claim({ subscriptionId, owner: "a", lease: "1 second", initial: Position.start })
            )
          )
          assert.deepStrictEqual(Option.getOrThrow(yield* store.get(subscriptionId)).position, Position.start)
        }))

      it.effect("16 instances claiming a new subscription at once: exactly one owns it", () =>
        Effect.gen(function*() {
          const store = yield* CheckpointStore.CheckpointStore
          const subscriptionId = unique("sub")
          const claims = yield* Effect.forEach(
            Array.from({ length: 16 }, (_, i) => `owner-${i}`),
            (owner) => store.claim({ subscriptionId, owner, lease: "10 seconds", initial: Position.start }),
            { concurrency: "unbounded" }
          )
          assert.strictEqual(claims.filter(Option.isSome).length, 1)
        }))

      it.effect("reset moves the checkpoint; the owner's next commit conflicts and a new claim resumes from it", () =>
        Effect.gen(function*() {
          const store = yield* CheckpointStore.CheckpointStore
          const subscriptionId = unique("sub")
          yield* store.claim({ subscriptionId, owner: "a", lease: "10 seconds", initial: Position.start })
          yield* store.commit({ subscriptionId, owner: "a", expected: Position.start, position: at(4, 4) })
          yield* store.reset(subscriptionId, Position.start)
          const error = yield* Effect.flip(
            store.commit({ subscriptionId, owner: "a", expected: at(4, 4), position: at(5, 5) })
          )
          assert.strictEqual(error._tag, "CheckpointConflict")
          const again = yield* store.claim({ subscriptionId, owner: "a", lease: "10 seconds", initial: at(9, 9) })
          assert.deepStrictEqual(again, Option.some(Position.start))
          const fresh = unique("sub")
          yield* store.reset(fresh, at(2, 2))
          assert.deepStrictEqual(
            yield* store.claim({ subscriptionId: fresh, owner: "z", lease: "1 second", initial: at(9, 9) }),
            Option.some(at(2, 2))
          )
        }))

      it.effect("release with status failed records it; a later claim makes it active again", () =>
        Effect.gen(function*() {
          const store = yield* CheckpointStore.CheckpointStore
          const subscriptionId = unique("sub")
          yield* store.claim({ subscriptionId, owner: "a", lease: "10 seconds", initial: Position.start })
          yield* store.release(subscriptionId, "a", "failed")
          assert.strictEqual(Option.getOrThrow(yield* store.get(subscriptionId)).status, "failed")
          yield* store.claim({ subscriptionId, owner: "b", lease: "10 seconds", initial: Position.start })
          assert.strictEqual(Option.getOrThrow(yield* store.get(subscriptionId)).status, "active")
        }))

      it.effect("a dead letter's error text with a NUL or a lone surrogate is kept, as U+FFFD", () =>
        Effect.gen(function*() {
          const store = yield* CheckpointStore.CheckpointStore
          const subscriptionId = unique("sub")
          yield* store.park({
            subscriptionId,
            eventId: crypto.randomUUID(),
            position: at(4, 2),
            tenantId: "default",
            streamType: "Order",
            streamId: "o-1",
            eventType: "Paid",
            error: "Error: bad byte \u0000 in \"\ud800\udc00\" and \udc00 alone",
            attempts: 1
          })
          const [parked] = yield* store.deadLetters(subscriptionId)
          assert.strictEqual(parked?.error, "Error: bad byte \ufffd in \"\ud800\udc00\" and \ufffd alone")
        }))

      it.effect("dead letters are kept once per event, listed in feed order", () =>
        Effect.gen(function*() {
          const store = yield* CheckpointStore.CheckpointStore
          const subscriptionId = unique("sub")
          const letter = (eventId: string, position: Position.Position, error: string) => ({
            subscriptionId,
            eventId,
            position,
            tenantId: eventId === late ? "acme" : "default",
            streamType: "Order",
            streamId: "o-1",
            eventType: "Paid",
            error,
            attempts: 3
          })
          const [late, early] = [crypto.randomUUID(), crypto.randomUUID()]
          yield* store.park(letter(late, at(9, 2), "boom"))
          yield* store.park(letter(early, at(3, 7), "bang"))
          yield* store.park(letter(late, at(9, 2), "again"))
          const parked = yield* store.deadLetters(subscriptionId)
          assert.deepStrictEqual(parked.map((d) => [d.eventId, d.tenantId, d.error, d.attempts]), [[
            early,
            "default",
            "bang",
            3
          ], [
            late,
            "acme",
            "boom",
            3
          ]])
          assert.deepStrictEqual(parked[1]!.position, at(9, 2))
          assert.instanceOf(parked[0]!.parkedAt, Date)
          assert.deepStrictEqual(yield* store.deadLetters(unique("other")), [])
        }))
    }
  )
