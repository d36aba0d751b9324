/**
 * The typed failures of eventfold. Every one is a `Schema.TaggedError`, so programs handle it with
 * `Effect.catchTag` and it can cross RPC or HTTP boundaries.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"
import * as ExpectedVersion from "./ExpectedVersion.js"

/**
 * An append found the stream at another version than the caller expected.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConcurrencyConflict extends Schema.TaggedError<ConcurrencyConflict>()("ConcurrencyConflict", {
  streamType: Schema.String,
  streamId: Schema.String,
  expected: ExpectedVersion.ExpectedVersion,
  /** The stream's current version; 0 when the stream does not exist. */
  actual: Schema.Number
}) {
  override get message(): string {
    return `Concurrency conflict on ${this.streamType}/${this.streamId}: expected ${
      ExpectedVersion.format(this.expected)
    }, actual version ${this.actual}`
  }
}

/**
 * A read asked for a stream that has no events.
 *
 * @since 0.1.0
 * @category errors
 */
export class StreamNotFound extends Schema.TaggedError<StreamNotFound>()("StreamNotFound", {
  streamType: Schema.String,
  streamId: Schema.String
}) {
  override get message(): string {
    return `Stream ${this.streamType}/${this.streamId} not found`
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
 * A stored event could not be decoded with the aggregate's Schema: a malformed payload or an unknown type.
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
  issue: Schema.String
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
 * The storage infrastructure failed (connection, missing table, ...). `cause` holds the original failure.
 *
 * @since 0.1.0
 * @category errors
 */
export class StoreError extends Schema.TaggedError<StoreError>()("StoreError", {
  operation: Schema.String,
  reason: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {
  override get message(): string {
    return `Event store ${this.operation} failed: ${this.reason}`
  }
}
