/**
 * Event ids. The stores give every event an append does not name a time-ordered UUID (version 7, RFC 9562): new ids
 * land on the last page of the event-id index instead of a random one, so an append's index writes, its WAL and its
 * cache misses stay flat as the log grows. An application that supplies its own ids (to make a retried append
 * idempotent) gets the same from `make`.
 *
 * @since 0.4.0
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as uuidv7 from "./internal/uuidv7.js"

// One generator per process: its ids are strictly increasing, also within one millisecond.
const generate = uuidv7.makeGenerator()

/**
 * A new event id: a UUIDv7 carrying the system clock's current millisecond, greater than every id this process made
 * before (a 12-bit counter orders the ids of one millisecond; the rest is random).
 *
 * @since 0.4.0
 * @category constructors
 */
export const unsafeMake = (): string => generate()

/**
 * `unsafeMake` as an Effect: a new id each time it runs.
 *
 * @since 0.4.0
 * @category constructors
 */
export const make: Effect.Effect<string> = Effect.sync(generate)

const V7 = /^([0-9a-f]{8})-([0-9a-f]{4})-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i

/**
 * Whether an id is a time-ordered UUID (version 7, RFC 9562 variant), as the stores generate.
 *
 * @since 0.4.0
 * @category predicates
 */
export const isTimeOrdered = (id: string): boolean => V7.test(id)

/**
 * The unix time in milliseconds a UUIDv7 carries; `None` for any other id.
 *
 * @since 0.4.0
 * @category getters
 */
export const timestampMillis = (id: string): Option.Option<number> => {
  const match = V7.exec(id)
  return match === null ? Option.none() : Option.some(Number.parseInt(match[1]! + match[2]!, 16))
}
