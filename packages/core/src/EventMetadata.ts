/**
 * The metadata every recorded event carries besides its payload.
 *
 * @since 0.1.0
 */
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Tracer from "effect/Tracer"

/**
 * Correlation, causation, actor and tenant, plus free string headers.
 *
 * @since 0.1.0
 * @category schemas
 */
export const EventMetadata = Schema.Struct({
  correlationId: Schema.optional(Schema.String),
  causationId: Schema.optional(Schema.String),
  actorId: Schema.optional(Schema.String),
  tenantId: Schema.optional(Schema.String),
  headers: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String }))
})

/**
 * @since 0.1.0
 * @category models
 */
export type EventMetadata = typeof EventMetadata.Type

/**
 * Metadata with nothing set.
 *
 * @since 0.1.0
 * @category constructors
 */
export const empty: EventMetadata = {}

/**
 * Combine two metadata values; fields of `that` win and headers are merged.
 *
 * @since 0.1.0
 * @category combinators
 */
export const merge = (self: EventMetadata, that: EventMetadata): EventMetadata => {
  const headers = self.headers || that.headers ? { ...self.headers, ...that.headers } : undefined
  return headers ? { ...self, ...that, headers } : { ...self, ...that }
}

/**
 * The header in which an append records the W3C trace context (`traceparent`) of its span, when a tracer that
 * exports spans is installed and the caller did not set one. Subscriptions and the outbox relay link their spans to
 * it; consumers elsewhere can do the same with `appendSpan`.
 *
 * @since 0.4.0
 * @category constants
 */
export const traceHeader = "traceparent"

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/
const ZEROS = /^0+$/

/**
 * The span that appended an event, from the `traceparent` header of its metadata; None when there is none or it is
 * malformed. Link to it: `Effect.withSpan("handle", { links: [{ _tag: "SpanLink", span, attributes: {} }] })`.
 *
 * @since 0.4.0
 * @category accessors
 */
export const appendSpan = (metadata: EventMetadata): Option.Option<Tracer.ExternalSpan> => {
  const value: unknown = metadata.headers?.[traceHeader]
  const match = typeof value === "string" ? TRACEPARENT.exec(value) : null
  if (match === null || ZEROS.test(match[1]!) || ZEROS.test(match[2]!)) return Option.none()
  return Option.some(Tracer.externalSpan({
    traceId: match[1]!,
    spanId: match[2]!,
    sampled: (Number.parseInt(match[3]!, 16) & 1) === 1
  }))
}
