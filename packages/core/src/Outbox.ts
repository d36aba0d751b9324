/**
 * The transactional outbox: when an `Outbox` Layer is provided to the event store, every append also writes one
 * outbox row per event in the same transaction. Relays claim rows under a lease, publish them and mark them.
 *
 * Per-stream order: a relay only claims a stream through its head (its earliest unpublished row), plus the pending
 * rows right behind it. A `failed` row (dead letter) therefore blocks its stream's later rows until `retryFailed`
 * puts it back; other streams go on.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as Errors from "./Errors.js"
import * as EventStore from "./EventStore.js"
import * as internal from "./internal/memoryOutbox.js"
import * as memoryStack from "./internal/memoryStack.js"
import type * as OutboxPublisher from "./OutboxPublisher.js"

/**
 * The life of an outbox row: `pending` until published, `failed` once its retries are exhausted.
 *
 * @since 0.1.0
 * @category models
 */
export type Status = "pending" | "published" | "failed"

/**
 * A claimed row: the message to publish plus the row id the relay reports back with.
 *
 * @since 0.1.0
 * @category models
 */
export interface Entry extends OutboxPublisher.OutboxMessage {
  readonly id: bigint
}

/**
 * A row as stored, for inspection (dead letters, tests).
 *
 * @since 0.1.0
 * @category models
 */
export interface Row extends Entry {
  readonly status: Status
  readonly retryCount: number
  readonly lastError: string | null
  readonly nextAttemptAt: Date
  readonly claimedBy: string | null
  readonly claimedUntil: Date | null
  readonly createdAt: Date
  readonly publishedAt: Date | null
}

/**
 * What a relay asks for when it claims rows.
 *
 * @since 0.1.0
 * @category models
 */
export interface ClaimOptions {
  /** Identifies the claiming relay; only it may mark the rows while its lease lasts. */
  readonly relayId: string
  /** The most rows to claim. */
  readonly limit: number
  /** How long the claim lasts; another relay takes the rows over after it expires. */
  readonly lease: Duration.DurationInput
  /**
   * Rows of this relay's previous claim that it has published: marked published first, as `markPublished` does, in
   * the same step as the claim (one statement and one commit on PostgreSQL), so their streams' next rows can be
   * claimed at once. Rows this relay no longer holds stay as they are, with a warning logged.
   */
  readonly markPublished?: ReadonlyArray<bigint> | undefined
  /**
   * Rows of this relay's current batch that it is still publishing. A stream whose earliest unpublished row is one of
   * them, held by this relay under a live lease, is not skipped: the claim takes the due, unclaimed rows right behind
   * its in-flight rows, so the relay can claim its next batch while it publishes this one. The relay publishes those
   * rows only after all of the stream's in-flight rows went out, and gives them back otherwise. Each stream's first
   * and last in-flight rows are enough.
   */
  readonly inFlight?: ReadonlyArray<bigint> | undefined
  /**
   * The most streams the claim may start (streams it continues behind `inFlight` not counted); no bound by default.
   * A relay leaves the rest to other relays. A stream in flight is continued only with rows older than every head the
   * claim leaves waiting, so the streams a relay holds never keep older ones waiting.
   */
  readonly maxNewStreams?: number | undefined
}

/**
 * The outbox's backlog: pending and failed rows, and how long the oldest pending row has waited.
 *
 * @since 0.1.0
 * @category models
 */
export interface Stats {
  readonly pending: number
  readonly failed: number
  readonly oldestPendingAge: Option.Option<Duration.Duration>
}

/**
 * The outbox service the relay works on.
 *
 * @since 0.1.0
 * @category tags
 */
export class Outbox extends Context.Tag("@eventfold/core/Outbox")<Outbox, {
  /**
   * Claims rows that are due, in per-stream order: for each stream, a contiguous run starting at its earliest
   * unpublished row. Returned in global position order. Marks `options.markPublished` published first, atomically
   * with the claim.
   */
  readonly claim: (options: ClaimOptions) => Effect.Effect<ReadonlyArray<Entry>, Errors.StoreError>
  /** Marks rows this relay still holds (no other relay took them over) as published; returns how many. */
  readonly markPublished: (relayId: string, ids: ReadonlyArray<bigint>) => Effect.Effect<number, Errors.StoreError>
  /**
   * Records a failed attempt on a held row and releases it: retried after `retryIn`, or `failed` (dead letter) when
   * `retryIn` is `None`. Returns false when the relay no longer held the row. NUL characters and lone surrogates in
   * `error` are kept as U+FFFD (see `EventValidation.sanitizeText`).
   */
  readonly recordFailure: (
    relayId: string,
    id: bigint,
    error: string,
    retryIn: Option.Option<Duration.Duration>
  ) => Effect.Effect<boolean, Errors.StoreError>
  /** Extends the lease on rows this relay still holds, so a long batch keeps its claim; returns how many. */
  readonly renew: (
    relayId: string,
    ids: ReadonlyArray<bigint>,
    lease: Duration.DurationInput
  ) => Effect.Effect<number, Errors.StoreError>
  /** Gives held rows back without counting an attempt (their earlier row failed, so they must wait). */
  readonly release: (relayId: string, ids: ReadonlyArray<bigint>) => Effect.Effect<void, Errors.StoreError>
  /**
   * Puts failed rows back to pending with a fresh retry count, optionally for one stream only, in the ambient tenant
   * (every tenant's without one); returns the count.
   */
  readonly retryFailed: (
    stream?: { readonly streamType: string; readonly streamId?: string | undefined }
  ) => Effect.Effect<number, Errors.StoreError>
  /** Deletes published rows older than the retention; returns the count. */
  readonly cleanup: (retention: Duration.DurationInput) => Effect.Effect<number, Errors.StoreError>
  /** The current backlog. */
  readonly stats: Effect.Effect<Stats, Errors.StoreError>
  /** The row of an event, if the outbox holds one in the ambient tenant (in any tenant without one). */
  readonly get: (eventId: string) => Effect.Effect<Option.Option<Row>, Errors.StoreError>
  /** Wake-up hints that new rows may be pending. Only a hint: it may end or lag, so relays poll as well. */
  readonly wakeups: Stream.Stream<void>
}>() {}

/**
 * An in-memory outbox on its own, written by nothing: `layerMemory` (or `MemoryEventfold.layer({ outbox: true })`)
 * wires one to the in-memory `EventStore`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: Effect.Effect<Outbox["Type"]> = internal.make

/**
 * An in-memory `EventStore` whose appends write this in-memory outbox, atomically. (`MemoryEventfold.layer` with
 * `outbox: true` assembles it with the other in-memory services.)
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<Outbox | EventStore.EventStore> = Layer.effectContext(
  Effect.map(
    memoryStack.make({ outbox: true, notify: false }),
    ({ outbox, store }) =>
      Context.make(EventStore.EventStore, store).pipe(Context.add(Outbox, outbox ?? disabled("not wired")))
  )
)

/**
 * The outbox of a stack configured without one: every operation fails with a `StoreError` (not retryable) that says
 * so, so a relay started against it stops at once with that message instead of waiting for rows that never come.
 *
 * @since 0.2.0
 * @category constructors
 */
export const disabled = (how: string): Outbox["Type"] => {
  const off = (operation: string) =>
    Effect.fail(
      new Errors.StoreError({
        operation,
        reason: `the outbox is off (${how}): appends write no outbox rows, so there is nothing to relay. Turn it on ` +
          `in the configuration that assembled the stack`,
        retryable: false
      })
    )
  return {
    claim: () => off("outbox.claim"),
    markPublished: () => off("outbox.markPublished"),
    recordFailure: () => off("outbox.recordFailure"),
    renew: () => off("outbox.renew"),
    release: () => off("outbox.release"),
    retryFailed: () => off("outbox.retryFailed"),
    cleanup: () => off("outbox.cleanup"),
    stats: off("outbox.stats"),
    get: () => off("outbox.get"),
    wakeups: Stream.never
  }
}
