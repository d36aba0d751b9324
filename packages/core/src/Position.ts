/**
 * A position in the global feed: the pair `(transactionId, globalPosition)`. Readers order and checkpoint by the
 * pair, because a position assigned in one transaction can commit after a larger one.
 *
 * @since 0.1.0
 */
import * as Order from "effect/Order"
import * as Schema from "effect/Schema"

/**
 * @since 0.1.0
 * @category schemas
 */
export const Position = Schema.Struct({
  transactionId: Schema.BigIntFromSelf,
  globalPosition: Schema.BigIntFromSelf
})

/**
 * @since 0.1.0
 * @category models
 */
export interface Position extends Schema.Schema.Type<typeof Position> {}

/**
 * The position before every event.
 *
 * @since 0.1.0
 * @category constructors
 */
export const start: Position = { transactionId: 0n, globalPosition: 0n }

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = (transactionId: bigint, globalPosition: bigint): Position => ({ transactionId, globalPosition })

/**
 * Feed order: by transaction, then by global position.
 *
 * @since 0.1.0
 * @category instances
 */
export const order: Order.Order<Position> = Order.combine(
  Order.mapInput(Order.bigint, (p: Position) => p.transactionId),
  Order.mapInput(Order.bigint, (p: Position) => p.globalPosition)
)

/**
 * Whether `self` comes strictly after `that` in feed order.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isAfter = (self: Position, that: Position): boolean => order(self, that) === 1

/**
 * Positions as text, for logs and storage in non-bigint places.
 *
 * @since 0.1.0
 * @category utils
 */
export const format = (self: Position): string => `${self.transactionId}:${self.globalPosition}`
