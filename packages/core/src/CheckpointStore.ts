/**
 * The `CheckpointStore` service: where each subscription keeps its feed position, who owns it (a lease), and the
 * events it parked. The position only moves by compare-and-set, so a stale owner can never move it.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import type * as Errors from "./Errors.js"
import * as EventValidation from "./EventValidation.js"
import * as Position from "./Position.js"
import * as Tenant from "./Tenant.js"

/**
 * A commit found the checkpoint moved (another owner took over, or it was reset): the caller no longer owns it.
 *
 * @since 0.1.0
 * @category errors
 */
export class CheckpointConflict extends Schema.TaggedError<CheckpointConflict>()("CheckpointConflict", {
  subscriptionId: Schema.String,
  owner: Schema.String,
  expected: Position.Position
}) {
  override get message(): string {
    return `Checkpoint of subscription ${this.subscriptionId} is no longer at ${
      Position.format(this.expected)
    } owned by ${this.owner}: it was taken over or reset`
  }
}

/**
 * One subscription's stored state.
 *
 * @since 0.1.0
 * @category models
 */
export interface Checkpoint {
  readonly subscriptionId: string
  /** The position of the last event the subscription handled (or skipped past). */
  readonly position: Position.Position
  readonly owner: Option.Option<string>
  readonly leaseUntil: Option.Option<Date>
  /** "active" while owned or resumable, "failed" after the subscription stopped on a handler failure. */
  readonly status: string
  readonly updatedAt: Date
}

/**
 * An event a subscription gave up on and parked so it could continue.
 *
 * @since 0.1.0
 * @category models
 */
export interface DeadLetter {
  readonly subscriptionId: string
  readonly eventId: string
  readonly position: Position.Position
  /** The tenant of the event's stream (a subscription over every tenant parks events of many). */
  readonly tenantId: string
  readonly streamType: string
  readonly streamId: string
  readonly eventType: string
  /** The last failure, rendered. */
  readonly error: string
  /** How many times the handler ran on the event. */
  readonly attempts: number
  readonly parkedAt: Date
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ClaimOptions {
  readonly subscriptionId: string
  readonly owner: string
  /** How long the claim holds without renewal. */
  readonly lease: Duration.DurationInput
  /** The position stored when the subscription has no checkpoint yet. */
  readonly initial: Position.Position
}

/**
 * @since 0.1.0
 * @category models
 */
export interface CommitOptions {
  readonly subscriptionId: string
  readonly owner: string
  /** The position the caller last read or committed; the commit fails if the checkpoint is elsewhere. */
  readonly expected: Position.Position
  readonly position: Position.Position
}

/**
 * Checkpoints, ownership leases and dead letters. Every implementation passes `CheckpointStoreContract`.
 *
 * Everything is kept per tenant scope: the ambient tenant (`Tenant.with`), or every tenant (`Tenant.allScope`) when
 * none is set. So one subscription id runs once per tenant, each with its own checkpoint, and once over all tenants.
 *
 * @since 0.1.0
 * @category tags
 */
export class CheckpointStore extends Context.Tag("@eventfold/core/CheckpointStore")<CheckpointStore, {
  /** The stored checkpoint, if the subscription ever ran. */
  readonly get: (subscriptionId: string) => Effect.Effect<Option.Option<Checkpoint>, Errors.StoreError>
  /**
   * Takes or renews ownership: succeeds with the stored position when the checkpoint is unowned, owned by `owner`,
   * or its lease expired (creating it at `initial` when missing); `None` while another owner's lease runs.
   */
  readonly claim: (options: ClaimOptions) => Effect.Effect<Option.Option<Position.Position>, Errors.StoreError>
  /** Gives ownership up (if `owner` still has it), so another instance can take over at once. */
  readonly release: (
    subscriptionId: string,
    owner: string,
    status?: "active" | "failed"
  ) => Effect.Effect<void, Errors.StoreError>
  /** Moves the checkpoint from `expected` to `position`, only while `owner` owns it and it is at `expected`. */
  readonly commit: (options: CommitOptions) => Effect.Effect<void, CheckpointConflict | Errors.StoreError>
  /** Sets the position unconditionally (rebuilds, operators); a running owner sees a conflict and resumes from it. */
  readonly reset: (subscriptionId: string, position: Position.Position) => Effect.Effect<void, Errors.StoreError>
  /**
   * Inside a database transaction, waits for the checkpoint's row and holds it until the transaction ends. A rebuild
   * takes it before clearing the read model, so that an owner's batch (in another process) that has already moved the
   * checkpoint commits first and is cleared with the rest. A no-op where commits are atomic (in memory).
   */
  readonly lock: (subscriptionId: string) => Effect.Effect<void, Errors.StoreError>
  /**
   * Stores a dead letter; parking the same event twice keeps the first. NUL characters and lone surrogates in its
   * `error` text are kept as U+FFFD (see `EventValidation.sanitizeText`).
   */
  readonly park: (deadLetter: Omit<DeadLetter, "parkedAt">) => Effect.Effect<void, Errors.StoreError>
  /** The parked events of a subscription, in feed order. */
  readonly deadLetters: (subscriptionId: string) => Effect.Effect<ReadonlyArray<DeadLetter>, Errors.StoreError>
}>() {}

interface MemoryState {
  readonly checkpoints: ReadonlyMap<string, Checkpoint>
  readonly deadLetters: ReadonlyArray<DeadLetter & { readonly key: string }>
}

/**
 * An in-memory `CheckpointStore`; leases follow the `Clock`, so `TestClock` can expire them.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: Effect.Effect<CheckpointStore["Type"]> = Effect.map(
  Ref.make<MemoryState>({ checkpoints: new Map(), deadLetters: [] }),
  (ref) => {
    const now = Effect.map(Clock.currentTimeMillis, (ms) => new Date(ms))
    // Checkpoints and dead letters are kept per tenant scope: the ambient tenant, or every tenant ("*") without one.
    const scoped = <A, E>(f: (key: (subscriptionId: string) => string) => Effect.Effect<A, E>) =>
      Effect.flatMap(
        Tenant.ambientScope("checkpoint"),
        (scope) => f((subscriptionId) => `${scope.length}:${scope}/${subscriptionId}`)
      )
    const put = (state: MemoryState, key: string, checkpoint: Checkpoint): MemoryState => ({
      ...state,
      checkpoints: new Map(state.checkpoints).set(key, checkpoint)
    })
    return {
      get: (subscriptionId) =>
        scoped((key) => Effect.map(Ref.get(ref), (s) => Option.fromNullable(s.checkpoints.get(key(subscriptionId))))),
      claim: (options) =>
        scoped((key) =>
          Effect.flatMap(now, (at) =>
            Ref.modify(ref, (state): [Option.Option<Position.Position>, MemoryState] => {
              const current = state.checkpoints.get(key(options.subscriptionId))
              const free = !current || Option.isNone(current.owner) || current.owner.value === options.owner ||
                Option.match(current.leaseUntil, { onNone: () => true, onSome: (until) => until < at })
              if (!free) return [Option.none(), state]
              const position = current?.position ?? options.initial
              const leaseUntil = new Date(at.getTime() + Duration.toMillis(Duration.decode(options.lease)))
              return [
                Option.some(position),
                put(state, key(options.subscriptionId), {
                  subscriptionId: options.subscriptionId,
                  position,
                  owner: Option.some(options.owner),
                  leaseUntil: Option.some(leaseUntil),
                  status: "active",
                  updatedAt: at
                })
              ]
            }))
        ),
      release: (subscriptionId, owner, status = "active") =>
        scoped((key) =>
          Effect.flatMap(now, (at) =>
            Ref.update(ref, (state) => {
              const current = state.checkpoints.get(key(subscriptionId))
              if (!current || !Option.contains(current.owner, owner)) return state
              return put(state, key(subscriptionId), {
                ...current,
                owner: Option.none(),
                leaseUntil: Option.none(),
                status,
                updatedAt: at
              })
            }))
        ),
      commit: (options) =>
        scoped((key) =>
          Effect.flatMap(now, (at) =>
            Ref.modify(ref, (state): [boolean, MemoryState] => {
              const current = state.checkpoints.get(key(options.subscriptionId))
              if (
                !current || !Option.contains(current.owner, options.owner) ||
                Position.order(current.position, options.expected) !== 0
              ) return [false, state]
              return [
                true,
                put(state, key(options.subscriptionId), { ...current, position: options.position, updatedAt: at })
              ]
            }))
        ).pipe(
          Effect.flatMap((ok) =>
            ok ? Effect.void : Effect.fail(
              new CheckpointConflict({
                subscriptionId: options.subscriptionId,
                owner: options.owner,
                expected: options.expected
              })
            )
          )
        ),
      lock: () => Effect.void,
      reset: (subscriptionId, position) =>
        scoped((key) =>
          Effect.flatMap(now, (at) =>
            Ref.update(ref, (state) => {
              const current = state.checkpoints.get(key(subscriptionId))
              return put(
                state,
                key(subscriptionId),
                current ? { ...current, position, status: "active", updatedAt: at } : {
                  subscriptionId,
                  position,
                  owner: Option.none(),
                  leaseUntil: Option.none(),
                  status: "active",
                  updatedAt: at
                }
              )
            }))
        ),
      park: (deadLetter) =>
        scoped((key) =>
          Effect.flatMap(
            now,
            (at) =>
              Ref.update(ref, (state) =>
                state.deadLetters.some((d) =>
                    d.key === key(deadLetter.subscriptionId) && d.eventId === deadLetter.eventId
                  )
                  ? state
                  : {
                    ...state,
                    deadLetters: [
                      ...state.deadLetters,
                      {
                        ...deadLetter,
                        key: key(deadLetter.subscriptionId),
                        error: EventValidation.sanitizeText(deadLetter.error),
                        parkedAt: at
                      }
                    ]
                  })
          )
        ),
      deadLetters: (subscriptionId) =>
        scoped((key) =>
          Effect.map(Ref.get(ref), (state) =>
            state.deadLetters
              .filter((d) => d.key === key(subscriptionId))
              .map(({ key: _, ...d }) => d)
              .sort((a, b) => Position.order(a.position, b.position)))
        )
    }
  }
)

/**
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<CheckpointStore> = Layer.effect(CheckpointStore, makeMemory)
