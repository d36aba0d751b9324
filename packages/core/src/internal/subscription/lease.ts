/**
 * @internal Ownership of a subscription: one process at a time holds its lease in the `CheckpointStore`. A standby
 * claims until the lease is free; the owner renews it every third of its length, and its session ends when the lease
 * is lost or the checkpoint was moved back under it (a reset from another process).
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type * as CheckpointStore from "../../CheckpointStore.js"
import type * as Errors from "../../Errors.js"
import * as Position from "../../Position.js"
import type * as Progress from "./progress.js"
import type * as Settings from "./settings.js"

/** @internal Ends an ownership session, so the run loop claims again (a reset, a lost lease). */
export class SessionEnded extends Data.TaggedError("SessionEnded")<{ readonly reason: string }> {}

/** @internal Claims ownership, waiting in standby while another owner's lease runs; the stored position. */
export const claim = (
  checkpoints: CheckpointStore.CheckpointStore["Type"],
  settings: Settings.Settings,
  initial: Position.Position
): Effect.Effect<Position.Position, Errors.StoreError> =>
  checkpoints.claim({ subscriptionId: settings.id, owner: settings.owner, lease: settings.lease, initial }).pipe(
    Effect.flatMap(Option.match({
      onNone: () => Effect.fail("standby" as const),
      onSome: Effect.succeed
    })),
    Effect.retry({ schedule: Schedule.spaced(settings.renewEvery), while: (e) => e === "standby" }),
    Effect.catchIf((e) => e === "standby", () => Effect.never)
  )

/** @internal Renews the lease; fails with `SessionEnded` once another owner has it or the checkpoint moved back. */
export const renew = (
  checkpoints: CheckpointStore.CheckpointStore["Type"],
  settings: Settings.Settings,
  progress: Progress.Progress
): Effect.Effect<never, SessionEnded> =>
  Effect.gen(function*() {
    while (true) {
      yield* Effect.sleep(settings.renewEvery)
      const claimed = yield* Effect.either(
        checkpoints.claim({
          subscriptionId: settings.id,
          owner: settings.owner,
          lease: settings.lease,
          initial: Position.start
        })
      )
      if (Either.isLeft(claimed)) {
        // The commit's compare-and-set still guards the checkpoint; keep working and try again.
        yield* progress.noteError(claimed.left.message)
        continue
      }
      if (Option.isNone(claimed.right)) return yield* new SessionEnded({ reason: "lease lost" })
      if (Position.isAfter((yield* progress.status).position, claimed.right.value)) {
        return yield* new SessionEnded({ reason: "checkpoint reset" })
      }
    }
  })
