/**
 * An event as stored: its payload (encoded form) and its envelope.
 *
 * @since 0.1.0
 */
import type * as EventMetadata from "./EventMetadata.js"
import * as Position from "./Position.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface RecordedEvent {
  readonly eventId: string
  /** The tenant of the event's stream. */
  readonly tenantId: string
  readonly streamType: string
  readonly streamId: string
  /** Position inside its stream, from 1. */
  readonly version: number
  readonly globalPosition: bigint
  /** The id of the transaction that wrote it; with `globalPosition` it forms the feed position. */
  readonly transactionId: bigint
  readonly type: string
  readonly schemaVersion: number
  readonly payload: unknown
  readonly metadata: EventMetadata.EventMetadata
  readonly recordedAt: Date
}

/**
 * The feed position of a recorded event.
 *
 * @since 0.1.0
 * @category accessors
 */
export const position = (event: RecordedEvent): Position.Position =>
  Position.make(event.transactionId, event.globalPosition)
