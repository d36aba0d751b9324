/**
 * Input validation and encoding shared by every `EventStore` implementation, so that all of them refuse the same
 * input with the same `InvalidInput`. For store implementers; applications do not need it.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Errors from "./Errors.js"
import type * as EventMetadata from "./EventMetadata.js"
import type * as EventStore from "./EventStore.js"
import * as ExpectedVersion from "./ExpectedVersion.js"

/** @since 0.1.0 */
export const MAX_EVENTS_PER_APPEND = 10_000
/** @since 0.1.0 */
export const MAX_PAYLOAD_BYTES = 8 * 1024 * 1024
/** @since 0.1.0 */
export const MAX_NAME_LENGTH = 1000

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** @since 0.1.0 */
export interface PreparedEvent {
  readonly eventId: string
  readonly idSupplied: boolean
  readonly type: string
  readonly schemaVersion: number
  /** JSON text of the payload, exactly as it will be stored. */
  readonly payloadJson: string
  readonly metadata: EventMetadata.EventMetadata
  readonly metadataJson: string
}

/** @since 0.1.0 */
export interface PreparedAppend {
  readonly streamType: string
  readonly streamId: string
  readonly expectedVersion: ExpectedVersion.ExpectedVersion
  readonly events: ReadonlyArray<PreparedEvent>
  readonly idsSupplied: boolean
}

const invalid = (reason: string) => Effect.fail(new Errors.InvalidInput({ reason }))

/** @since 0.1.0 */
export const validateStream = (stream: EventStore.StreamRef): Effect.Effect<void, Errors.InvalidInput> => {
  if (typeof stream.streamType !== "string" || stream.streamType.length === 0) {
    return invalid("streamType must be a non-empty string")
  }
  if (typeof stream.streamId !== "string" || stream.streamId.length === 0) {
    return invalid("streamId must be a non-empty string")
  }
  if (stream.streamType.length > MAX_NAME_LENGTH || stream.streamId.length > MAX_NAME_LENGTH) {
    return invalid(`streamType and streamId are limited to ${MAX_NAME_LENGTH} characters`)
  }
  if (stream.streamType.includes("\u0000") || stream.streamId.includes("\u0000")) {
    return invalid("streamType and streamId may not contain NUL characters")
  }
  return Effect.void
}

const stringify = (value: unknown, what: string): string | Errors.InvalidInput => {
  try {
    const json = JSON.stringify(value)
    if (json === undefined) return new Errors.InvalidInput({ reason: `${what} is not JSON-serializable` })
    // PostgreSQL jsonb cannot hold NUL characters; refuse them everywhere so every store behaves alike.
    if (json.includes("\\u0000")) return new Errors.InvalidInput({ reason: `${what} contains a NUL character` })
    return json
  } catch (error) {
    return new Errors.InvalidInput({ reason: `${what} is not JSON-serializable: ${String(error)}` })
  }
}

/** @since 0.1.0 */
export const prepareAppend = (
  options: EventStore.AppendOptions
): Effect.Effect<PreparedAppend, Errors.InvalidInput> =>
  Effect.suspend(() => {
    const { events } = options
    if (!Array.isArray(events) || events.length === 0) return invalid("an append needs at least one event")
    if (events.length > MAX_EVENTS_PER_APPEND) {
      return invalid(`an append may hold at most ${MAX_EVENTS_PER_APPEND} events, got ${events.length}`)
    }
    const expectedVersion = options.expectedVersion ?? ExpectedVersion.Any
    if (
      expectedVersion._tag === "Exact" &&
      !(Number.isSafeInteger(expectedVersion.version) && expectedVersion.version >= 0)
    ) {
      return invalid(`expected version must be a non-negative integer, got ${expectedVersion.version}`)
    }
    return Effect.flatMap(validateStream(options), () => {
      const prepared: Array<PreparedEvent> = []
      const seen = new Set<string>()
      let idsSupplied = false
      for (let i = 0; i < events.length; i++) {
        const event = events[i]!
        if (typeof event.type !== "string" || event.type.length === 0 || event.type.length > MAX_NAME_LENGTH) {
          return invalid(`event ${i}: type must be a non-empty string of at most ${MAX_NAME_LENGTH} characters`)
        }
        const schemaVersion = event.schemaVersion ?? 1
        if (!Number.isSafeInteger(schemaVersion) || schemaVersion < 1 || schemaVersion > 2_147_483_647) {
          return invalid(`event ${i}: schemaVersion must be a positive integer`)
        }
        let eventId: string
        if (event.eventId !== undefined) {
          if (typeof event.eventId !== "string" || !UUID.test(event.eventId)) {
            return invalid(`event ${i}: eventId must be a UUID, got ${JSON.stringify(event.eventId)}`)
          }
          eventId = event.eventId.toLowerCase()
          idsSupplied = true
        } else {
          eventId = crypto.randomUUID()
        }
        if (seen.has(eventId)) return invalid(`event ${i}: eventId ${eventId} appears twice in one append`)
        seen.add(eventId)
        const payloadJson = stringify(event.payload, `event ${i} payload`)
        if (typeof payloadJson !== "string") return Effect.fail(payloadJson)
        if (payloadJson.length > MAX_PAYLOAD_BYTES || Buffer.byteLength(payloadJson) > MAX_PAYLOAD_BYTES) {
          return invalid(`event ${i}: payload exceeds ${MAX_PAYLOAD_BYTES} bytes`)
        }
        const metadata = event.metadata ?? {}
        const metadataJson = stringify(metadata, `event ${i} metadata`)
        if (typeof metadataJson !== "string") return Effect.fail(metadataJson)
        if (metadataJson.length > MAX_PAYLOAD_BYTES) {
          return invalid(`event ${i}: metadata exceeds ${MAX_PAYLOAD_BYTES} bytes`)
        }
        prepared.push({
          eventId,
          idSupplied: event.eventId !== undefined,
          type: event.type,
          schemaVersion,
          payloadJson,
          metadata,
          metadataJson
        })
      }
      return Effect.succeed<PreparedAppend>({
        streamType: options.streamType,
        streamId: options.streamId,
        expectedVersion,
        events: prepared,
        idsSupplied
      })
    })
  })

/** @since 0.1.0 */
export const validateLimit = (
  limit: number | undefined,
  fallback: number
): Effect.Effect<number, Errors.InvalidInput> => {
  if (limit === undefined) return Effect.succeed(fallback)
  if (!Number.isSafeInteger(limit) || limit < 1) return invalid(`limit must be a positive integer, got ${limit}`)
  return Effect.succeed(limit)
}

/** @since 0.1.0 */
export const validateFromVersion = (from: number | undefined): Effect.Effect<void, Errors.InvalidInput> =>
  from === undefined || (Number.isSafeInteger(from) && from >= 0)
    ? Effect.void
    : invalid(`fromVersion must be a non-negative integer, got ${from}`)
