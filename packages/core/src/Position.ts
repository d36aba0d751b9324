/**
 * A position in the global feed: the pair `(transactionId, globalPosition)`. Readers order and checkpoint by the
 * pair, because a position assigned in one transaction can commit after a larger one.
 *
 * @since 0.1.0
 */
import * as Option from "effect/Option"
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

/**
 * The later of two positions in feed order.
 *
 * @since 0.2.0
 * @category combinators
 */
export const max: {
  (that: Position): (self: Position) => Position
  (self: Position, that: Position): Position
} = Order.max(order)

/**
 * Where a write landed in the feed, in any of the shapes eventfold reports it: a `Position`
 * (`EventStore.AppendResult.position`), an `Option` of one (`CommandHandler.HandleResult.position`, None when the
 * command wrote nothing), or a result carrying either in its `position` field (`AppendResult`, `HandleResult`).
 *
 * @since 0.2.0
 * @category models
 */
export type Written = Position | Option.Option<Position> | { readonly position: Position | Option.Option<Position> }

/**
 * The feed position a write reached; None when it wrote nothing.
 *
 * @since 0.2.0
 * @category constructors
 */
export const fromWritten = (written: Written): Option.Option<Position> => {
  if (Option.isOption(written)) return written
  if ("position" in written) return Option.isOption(written.position) ? written.position : Option.some(written.position)
  return Option.some(written)
}

/**
 * The latest position among several writes (everything one request wrote, across streams): a subscription that has
 * reached it has handled all of them, since it handles the feed in order. None when none of them wrote anything.
 *
 * @since 0.2.0
 * @category combinators
 */
export const latest = (writes: Iterable<Written>): Option.Option<Position> => {
  let out = Option.none<Position>()
  for (const written of writes) {
    const position = fromWritten(written)
    if (Option.isSome(position)) out = Option.isSome(out) ? Option.some(max(out.value, position.value)) : position
  }
  return out
}
