/**
 * Stream lifecycle and retention: archive, tombstone, soft delete, truncation and expiry by age. Events stay
 * append-only: no operation here ever changes a stored event; retention deletes whole events, as the store's owner.
 *
 * | state | appends | `readStream` | the feed |
 * |---|---|---|---|
 * | archived | `StreamArchived` | `StreamArchived` (`includeArchived: true` reads it) | left out of reads filtered by stream type (subscriptions with `streamTypes`, typed feed reads), unless `includeArchived` |
 * | deleted (tombstone) | `StreamDeleted`, for good | `StreamDeleted` | unchanged: its events stay in the log |
 * | soft-deleted | recreate it: versions continue after the old ones | `StreamNotFound`, then only the events after the delete | unchanged |
 * | truncated before n | unchanged | from version n | the deleted events are gone from it |
 * | expired (max age) | unchanged | the events left | the deleted events are gone from it |
 *
 * What subscribers see when events disappear: a subscription's checkpoint is a feed position, and a deleted event is
 * a gap in the feed. An event deleted before the subscription reached it is never delivered; one it already handled
 * stays handled. Nothing stalls (the feed moves on past gaps), fails, or is applied twice (positions only grow). A
 * projection rebuilt from the beginning sees only the events still stored. An archived stream's events are
 * left out of a stream-type-filtered subscription from the moment it is archived, also those it had not reached yet.
 *
 * Aggregates: `CommandHandler` fails with `StreamArchived` / `StreamDeleted`; a soft-deleted stream loads as new. A
 * stream truncated past its latest snapshot cannot be rebuilt and loads fail with `StreamTruncated`: truncate
 * aggregates' streams up to their snapshot's version (`truncateBefore(stream, snapshot.version)`), never past it.
 *
 * On PostgreSQL, archive, unarchive and delete take the stream's append lock, so a concurrent append either lands
 * before the change or fails with the typed error; truncation and expiry delete events and need the owner's rights
 * (the application role has no DELETE on events).
 *
 * @since 0.4.0
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Errors from "./Errors.js"
import type * as EventStore from "./EventStore.js"
import * as EventValidation from "./EventValidation.js"
import type * as Tenant from "./Tenant.js"

/**
 * @since 0.4.0
 * @category models
 */
export type State = "active" | "archived" | "deleted" | "soft-deleted"

/**
 * A stream's lifecycle state.
 *
 * @since 0.4.0
 * @category models
 */
export interface StreamInfo {
  readonly tenantId: string
  readonly streamType: string
  readonly streamId: string
  /** The version of its last event (also for a deleted stream). */
  readonly version: number
  readonly state: State
  /** The first version reads return; 1 unless truncated or soft-deleted. */
  readonly firstVersion: number
  /**
   * The version its current life began after: 0, or the version it had when it was soft-deleted. An aggregate's
   * state is the fold of the events after it.
   */
  readonly origin: number
}

/**
 * @since 0.4.0
 * @category models
 */
export interface ExpireOptions {
  /** The stream types whose old events to delete. */
  readonly streamTypes: ReadonlyArray<string>
  /** Delete the events recorded longer ago than this. */
  readonly maxAge: Duration.DurationInput
  /** One tenant (defaults to the ambient tenant); `allTenants: true` expires every tenant's events. */
  readonly tenantId?: string | undefined
  readonly allTenants?: boolean | undefined
}

/**
 * @since 0.4.0
 * @category models
 */
export type Error = Errors.InvalidInput | Tenant.TenantRequired | Errors.StoreError

/**
 * @since 0.4.0
 * @category tags
 */
export class StreamLifecycle extends Context.Tag("@eventfold/core/StreamLifecycle")<StreamLifecycle, {
  /** The stream's state; None when it does not exist. */
  readonly info: (stream: EventStore.StreamRef) => Effect.Effect<Option.Option<StreamInfo>, Error>
  /** Archives a stream: appends fail with `StreamArchived`, default reads leave it out. Idempotent. */
  readonly archive: (
    stream: EventStore.StreamRef
  ) => Effect.Effect<void, Errors.StreamNotFound | Errors.StreamDeleted | Error>
  /** Undoes `archive`. Idempotent. */
  readonly unarchive: (
    stream: EventStore.StreamRef
  ) => Effect.Effect<void, Errors.StreamNotFound | Errors.StreamDeleted | Error>
  /**
   * Deletes a stream. By default a tombstone: appends fail with `StreamDeleted` for good. With `recreate: true`, a soft
   * delete: reads see no stream until the next append recreates it, its versions continuing after the old ones (the
   * old events stay stored, hidden from reads of the stream; `truncateBefore` deletes them). Idempotent.
   */
  readonly delete: (
    stream: EventStore.StreamRef,
    options?: { readonly recreate?: boolean | undefined }
  ) => Effect.Effect<void, Errors.StreamNotFound | Errors.StreamDeleted | Error>
  /**
   * Deletes the stream's events before `version` (the event at `version` stays) and reads start there. Returns how
   * many events were deleted. Needs the right to delete events (the owner).
   */
  readonly truncateBefore: (
    stream: EventStore.StreamRef,
    version: number
  ) => Effect.Effect<number, Errors.StreamNotFound | Errors.StreamDeleted | Error>
  /** Deletes the events of the given stream types recorded longer ago than `maxAge`; returns how many. */
  readonly expire: (options: ExpireOptions) => Effect.Effect<number, Error>
}>() {}

/**
 * Checks `expire` options: at least one valid stream type, and a positive `maxAge`. Returns the age in milliseconds.
 *
 * @since 0.4.0
 * @category validation
 */
export const validateExpire = (options: ExpireOptions): Effect.Effect<number, Errors.InvalidInput> =>
  Effect.gen(function*() {
    if (!Array.isArray(options.streamTypes) || options.streamTypes.length === 0) {
      return yield* new Errors.InvalidInput({ reason: "expire: streamTypes must name at least one stream type" })
    }
    for (const streamType of options.streamTypes) yield* EventValidation.validateName("expire: streamType", streamType)
    const age = Option.map(Duration.decodeUnknown(options.maxAge), Duration.toMillis)
    if (Option.isNone(age) || !(age.value > 0) || !Number.isFinite(age.value)) {
      return yield* new Errors.InvalidInput({ reason: `expire: maxAge must be a positive, finite duration` })
    }
    return age.value
  })
