/**
 * What an append expects of its stream, as in KurrentDB (any state, no stream yet, an existing stream, or an exact
 * version).
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * @since 0.1.0
 * @category schemas
 */
export const ExpectedVersion = Schema.Union(
  Schema.TaggedStruct("Any", {}),
  Schema.TaggedStruct("NoStream", {}),
  Schema.TaggedStruct("StreamExists", {}),
  Schema.TaggedStruct("Exact", { version: Schema.NonNegativeInt })
)

/**
 * @since 0.1.0
 * @category models
 */
export type ExpectedVersion = typeof ExpectedVersion.Type

/**
 * Append whatever the stream's state: no concurrency check.
 *
 * @since 0.1.0
 * @category constructors
 */
export const Any: ExpectedVersion = { _tag: "Any" }

/**
 * The stream must not exist yet.
 *
 * @since 0.1.0
 * @category constructors
 */
export const NoStream: ExpectedVersion = { _tag: "NoStream" }

/**
 * The stream must already exist, at any version.
 *
 * @since 0.1.0
 * @category constructors
 */
export const StreamExists: ExpectedVersion = { _tag: "StreamExists" }

/**
 * The stream must be at exactly this version. `Exact(0)` means the same as `NoStream`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const Exact = (version: number): ExpectedVersion => ({ _tag: "Exact", version })

/**
 * Whether a stream currently at `actual` (0 = no stream) satisfies the expectation.
 *
 * @since 0.1.0
 * @category predicates
 */
export const matches = (expected: ExpectedVersion, actual: number): boolean => {
  switch (expected._tag) {
    case "Any":
      return true
    case "NoStream":
      return actual === 0
    case "StreamExists":
      return actual > 0
    case "Exact":
      return actual === expected.version
  }
}

/**
 * A short human form, for messages.
 *
 * @since 0.1.0
 * @category utils
 */
export const format = (expected: ExpectedVersion): string =>
  expected._tag === "Exact" ? `version ${expected.version}` : expected._tag
