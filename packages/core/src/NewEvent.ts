/**
 * An event on its way into the store, already Schema-encoded.
 *
 * @since 0.1.0
 */
import type * as EventMetadata from "./EventMetadata.js"

/**
 * `payload` is the encoded (JSON-safe) form. Supplying `eventId` makes the append idempotent: repeating it with the
 * same content succeeds without writing twice.
 *
 * @since 0.1.0
 * @category models
 */
export interface NewEvent {
  readonly type: string
  readonly payload: unknown
  readonly eventId?: string | undefined
  readonly schemaVersion?: number | undefined
  readonly metadata?: EventMetadata.EventMetadata | undefined
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  type: string,
  payload: unknown,
  options?: Omit<NewEvent, "type" | "payload">
): NewEvent => ({ type, payload, ...options })
