/**
 * The typed failures of eventfold. Every one is a `Schema.TaggedError`, so programs handle it with
 * `Effect.catchTag` and it can cross RPC or HTTP boundaries.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"
import * as ExpectedVersion from "./ExpectedVersion.js"

/**
 * Why an append conflicted:
 * - `version`: the stream is at another version than expected; reload and decide again.
 * - `transaction-order`: the expected version holds, but the stream's last append came from a transaction that began
 *   writing after the caller's own transaction. Appending would put the stream's later version ahead of the earlier
 *   one in the feed, so only the whole transaction, retried from its start, can succeed.
 * - `serialization`: PostgreSQL aborted the transaction with a serialization failure (SQLSTATE 40001, under
 *   REPEATABLE READ or SERIALIZABLE); again only a retry of the whole transaction can succeed.
 *
 * @since 0.2.0
 * @category models
 */
export const ConflictReason = Schema.Literal("version", "transaction-order", "serialization")

/**
 * @since 0.2.0
 * @category models
 */
export type ConflictReason = typeof ConflictReason.Type

/**
 * An append found the stream at another version than the caller expected, or could not be ordered after the
 * stream's last append (see `ConflictReason`). Nothing was written.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConcurrencyConflict extends Schema.TaggedError<ConcurrencyConflict>()("ConcurrencyConflict", {
  /** The stream's tenant (absent from errors raised before tenancy). */
  tenantId: Schema.optional(Schema.String),
  streamType: Schema.String,
  streamId: Schema.String,
  expected: ExpectedVersion.ExpectedVersion,
  /**
   * The stream's current version; 0 when the stream does not exist; -1 when unknown (a serialization failure aborted
   * the transaction, so nothing could be read in it).
   */
  actual: Schema.Number,
  /** Why the append conflicted; `version` when absent. */
  reason: Schema.optional(ConflictReason)
}) {
  /** True when only a retry of the whole surrounding transaction can succeed (not a reload inside it). */
  get retriesTransaction(): boolean {
    return this.reason === "transaction-order" || this.reason === "serialization"
  }

  override get message(): string {
    const where = `Concurrency conflict on ${this.streamType}/${this.streamId}`
    switch (this.reason) {
      case "transaction-order":
        return `${where}: the stream's last append (version ${this.actual}) came from a transaction that began ` +
          `writing after this one; roll back and retry the whole transaction so the feed keeps the stream's order`
      case "serialization":
        return `${where}: the transaction was aborted by a concurrent write (serialization failure); roll back and ` +
          `retry the whole transaction`
      default:
        return `${where}: expected ${ExpectedVersion.format(this.expected)}, actual version ${this.actual}`
    }
  }
}

/**
 * A read asked for a stream that has no events.
 *
 * @since 0.1.0
 * @category errors
 */
export class StreamNotFound extends Schema.TaggedError<StreamNotFound>()("StreamNotFound", {
  tenantId: Schema.optional(Schema.String),
  streamType: Schema.String,
  streamId: Schema.String
}) {
  override get message(): string {
    return `Stream ${this.streamType}/${this.streamId} not found`
  }
}

/**
 * The stream is archived (`StreamLifecycle.archive`): it refuses appends, and reads of it fail with this error unless
 * they ask for archived streams (`includeArchived`). Its events stay in the log. `StreamLifecycle.unarchive` undoes it.
 *
 * @since 0.4.0
 * @category errors
 */
export class StreamArchived extends Schema.TaggedError<StreamArchived>()("StreamArchived", {
  tenantId: Schema.optional(Schema.String),
  streamType: Schema.String,
  streamId: Schema.String
}) {
  override get message(): string {
    return `Stream ${this.streamType}/${this.streamId} is archived: it accepts no appends; unarchive it first`
  }
}

/**
 * The stream was deleted with a tombstone (`StreamLifecycle.delete`, KurrentDB's hard delete): it refuses appends for
 * good and reads of it fail with this error. Its id cannot be used again.
 *
 * @since 0.4.0
 * @category errors
 */
export class StreamDeleted extends Schema.TaggedError<StreamDeleted>()("StreamDeleted", {
  tenantId: Schema.optional(Schema.String),
  streamType: Schema.String,
  streamId: Schema.String
}) {
  override get message(): string {
    return `Stream ${this.streamType}/${this.streamId} was deleted (tombstone): it accepts no appends and cannot be ` +
      "recreated"
  }
}

/**
 * An aggregate's stream no longer starts at version 1 (truncated, or its oldest events expired under a retention
 * policy) and no snapshot covers the missing events, so its state cannot be rebuilt. Nothing is folded from a partial
 * stream: truncate a stream only up to (and not past) its latest snapshot's version.
 *
 * @since 0.4.0
 * @category errors
 */
export class StreamTruncated extends Schema.TaggedError<StreamTruncated>()("StreamTruncated", {
  streamType: Schema.String,
  streamId: Schema.String,
  /** The first version still stored (undefined: no event is left). */
  firstVersion: Schema.optional(Schema.Number)
}) {
  override get message(): string {
    return `Stream ${this.streamType}/${this.streamId} was truncated (${
      this.firstVersion === undefined ? "no event is left" : `it starts at version ${this.firstVersion}`
    }) and no snapshot covers the rest: its state cannot be rebuilt`
  }
}

/**
 * An event id that is already stored was appended again with other content (or to another stream).
 *
 * @since 0.1.0
 * @category errors
 */
export class DuplicateEvent extends Schema.TaggedError<DuplicateEvent>()("DuplicateEvent", {
  eventId: Schema.String,
  streamType: Schema.String,
  streamId: Schema.String
}) {
  override get message(): string {
    return `Event ${this.eventId} already exists with other content (append to ${this.streamType}/${this.streamId})`
  }
}

/**
 * The store refuses this tenant's writes: the tenant was moved to another store (`reason` "moved"), or a move into
 * this store has not completed yet ("moving"). Nothing was written, and retrying against this store cannot succeed
 * until the block is lifted: route the tenant to the store it lives in.
 *
 * @since 0.3.0
 * @category errors
 */
export class TenantUnavailable extends Schema.TaggedError<TenantUnavailable>()("TenantUnavailable", {
  tenantId: Schema.String,
  /** Why the tenant is blocked: "moved", "moving", or the reason an operator gave. */
  reason: Schema.String
}) {
  override get message(): string {
    const tenant = JSON.stringify(this.tenantId)
    switch (this.reason) {
      case "moved":
        return `Tenant ${tenant}'s writes are blocked here: it was moved to another store`
      case "moving":
        return `Tenant ${tenant}'s writes are blocked here: a move into this store is not complete yet`
      default:
        return `Tenant ${tenant}'s writes are blocked here: ${this.reason}`
    }
  }
}

/**
 * Why a stored event could not be decoded: its type is neither a current type nor a former name of one
 * (`unknown-type`); it was written by newer code, at a schema version above the current one (`newer-version`); an
 * upcaster threw or returned something other than an object (`upcast`); or its payload does not match the Schema
 * (`payload`).
 *
 * @since 0.4.0
 * @category models
 */
export const DecodeFailure = Schema.Literal("unknown-type", "newer-version", "upcast", "payload")

/**
 * @since 0.4.0
 * @category models
 */
export type DecodeFailure = typeof DecodeFailure.Type

/**
 * A stored event could not be decoded with the aggregate's Schema: a malformed payload, an unknown type, a schema
 * version newer than the code, or a failing upcaster (`reason`).
 *
 * @since 0.1.0
 * @category errors
 */
export class EventDecodeError extends Schema.TaggedError<EventDecodeError>()("EventDecodeError", {
  streamType: Schema.String,
  streamId: Schema.String,
  version: Schema.Number,
  type: Schema.String,
  /** The formatted Schema issue. */
  issue: Schema.String,
  /** Why; absent on errors built before 0.4.0, which were all `payload` or `unknown-type`. */
  reason: Schema.optional(DecodeFailure),
  /** The stored event's schema version. */
  schemaVersion: Schema.optional(Schema.Number)
}) {
  override get message(): string {
    return `Cannot decode event ${this.type} at ${this.streamType}/${this.streamId}@${this.version}: ${this.issue}`
  }
}

/**
 * An event could not be encoded with the aggregate's Schema before it was written.
 *
 * @since 0.1.0
 * @category errors
 */
export class EventEncodeError extends Schema.TaggedError<EventEncodeError>()("EventEncodeError", {
  streamType: Schema.String,
  type: Schema.String,
  issue: Schema.String
}) {
  override get message(): string {
    return `Cannot encode event ${this.type} for ${this.streamType}: ${this.issue}`
  }
}

/**
 * The caller passed something the store refuses: an empty append, an empty stream id, an oversized payload, ...
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidInput extends Schema.TaggedError<InvalidInput>()("InvalidInput", {
  reason: Schema.String
}) {
  override get message(): string {
    return `Invalid input: ${this.reason}`
  }
}

/**
 * What kind of store failure a `StoreError` is. Retrying can help with the first three:
 * - `connection`: the server could not be reached, or the connection was lost or shut down;
 * - `conflict`: a serialization failure or a deadlock, which aborted the transaction;
 * - `resources`: the server is out of connections, memory or disk, or a `lock_timeout` expired.
 * Retrying cannot help with the others:
 * - `timeout`: a `statement_timeout`, which the same statement would hit again;
 * - `permission`: authentication failed, or the role lacks a privilege;
 * - `schema`: a missing database, schema, table or function (not migrated);
 * - `data`: a stored row the store cannot read, or a checkpoint the server cannot honour (after a logical restore);
 * - `other`: anything else.
 *
 * @since 0.2.0
 * @category models
 */
export const StoreErrorKind = Schema.Literal(
  "connection",
  "conflict",
  "resources",
  "timeout",
  "permission",
  "schema",
  "data",
  "other"
)

/**
 * @since 0.2.0
 * @category models
 */
export type StoreErrorKind = typeof StoreErrorKind.Type

/**
 * The storage infrastructure failed (connection, missing table, ...). `cause` holds the original failure.
 * `retryable` says whether trying again can help: true for a lost connection, a lock timeout, a deadlock or an overloaded
 * server; false for a missing table, a permission, a bad checkpoint or a corrupt row. Loops such as subscriptions and
 * relays retry only the first kind and stop, typed, on the second.
 *
 * @since 0.1.0
 * @category errors
 */
export class StoreError extends Schema.TaggedError<StoreError>()("StoreError", {
  operation: Schema.String,
  reason: Schema.String,
  /** Whether retrying the operation can help; false when absent. */
  retryable: Schema.optional(Schema.Boolean),
  /** What failed, when the store could tell (see `StoreErrorKind`). */
  kind: Schema.optional(StoreErrorKind),
  /** The SQLSTATE (or driver error code) when the database reported one. */
  code: Schema.optional(Schema.String),
  cause: Schema.optional(Schema.Defect)
}) {
  override get message(): string {
    return `Event store ${this.operation} failed${this.code ? ` (${this.code})` : ""}: ${this.reason}`
  }
}

/**
 * True for a `StoreError` that retrying can help.
 *
 * @since 0.2.0
 * @category refinements
 */
export const isRetryableStoreError = (u: unknown): u is StoreError => u instanceof StoreError && u.retryable === true

/**
 * An idempotency key was used again on the same stream for a different command: the key's events are stored, and
 * they came from another command. Nothing was written.
 *
 * @since 0.2.0
 * @category errors
 */
export class IdempotencyKeyReused extends Schema.TaggedError<IdempotencyKeyReused>()("IdempotencyKeyReused", {
  streamType: Schema.String,
  streamId: Schema.String,
  idempotencyKey: Schema.String
}) {
  override get message(): string {
    const key = JSON.stringify(this.idempotencyKey)
    return `Idempotency key ${key} was already used on ${this.streamType}/${this.streamId} for a different command`
  }
}

/**
 * An aggregate has a snapshot policy but no `SnapshotStore` was provided where its `CommandHandler` was built. Loads
 * would silently replay every event: provide the store, or drop the policy.
 *
 * @since 0.2.0
 * @category errors
 */
export class SnapshotStoreMissing extends Schema.TaggedError<SnapshotStoreMissing>()("SnapshotStoreMissing", {
  /** The aggregate's name (its stream type). */
  aggregate: Schema.String,
  /** The Layers that provide one. */
  provide: Schema.String
}) {
  override get message(): string {
    return `Aggregate ${this.aggregate} has a snapshot policy but no SnapshotStore is provided: provide ${this.provide}, ` +
      "or remove the policy"
  }
}
