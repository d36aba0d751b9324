/**
 * The metadata every recorded event carries besides its payload.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

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
