/**
 * The order of the seed tutorial as a pure decider: it is created with its items, then shipped with a tracking
 * number. Nothing here touches storage; `OrderAggregate` binds it to the `Order` stream type.
 */
import { Aggregate, Decider } from "@eventfold/core"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"

/** One line of an order: a product, how many, and the price of one unit. */
export const OrderItem = Schema.Struct({
  productId: Schema.NonEmptyString,
  quantity: Schema.Int.pipe(Schema.positive()),
  unitPrice: Schema.Number.pipe(Schema.finite(), Schema.nonNegative())
})

/** One line of an order. */
export interface OrderItem extends Schema.Schema.Type<typeof OrderItem> {}

/** The sum of quantity times unit price over the items. */
export const orderTotal = (items: ReadonlyArray<OrderItem>): number =>
  items.reduce((total, item) => total + item.quantity * item.unitPrice, 0)

// Commands

/** Place a new order. `createdAt` comes from the caller, so the decider stays pure. */
export const CreateOrder = Schema.TaggedStruct("CreateOrder", {
  customerId: Schema.NonEmptyString,
  items: Schema.NonEmptyArray(OrderItem),
  createdAt: Schema.optionalWith(Schema.Date, { exact: true })
})

/** Place a new order. */
export interface CreateOrder extends Schema.Schema.Type<typeof CreateOrder> {}

/** Ship a created order. */
export const ShipOrder = Schema.TaggedStruct("ShipOrder", {
  trackingNumber: Schema.NonEmptyString
})

/** Ship a created order. */
export interface ShipOrder extends Schema.Schema.Type<typeof ShipOrder> {}

/** Every command an order accepts, as a Schema so an API boundary can decode them. */
export const OrderCommand = Schema.Union(CreateOrder, ShipOrder)

/** Every command an order accepts. */
export type OrderCommand = typeof OrderCommand.Type

// Events

/** The order was placed. */
export class OrderCreated extends Schema.TaggedClass<OrderCreated>()("OrderCreated", {
  customerId: Schema.String,
  items: Schema.Array(OrderItem),
  /** Stored as an ISO string and decoded back to a `Date`. */
  createdAt: Schema.optionalWith(Schema.Date, { exact: true })
}) {}

/** The order left the warehouse. */
export class OrderShipped extends Schema.TaggedClass<OrderShipped>()("OrderShipped", {
  trackingNumber: Schema.String
}) {}

/** The events of an order; `_tag` is the stored event type. */
export const OrderEvent = Schema.Union(OrderCreated, OrderShipped)

/** The events of an order. */
export type OrderEvent = typeof OrderEvent.Type

// State

/** Where an order is in its life. */
export const OrderStatus = Schema.Literal("none", "created", "shipped")

/** Where an order is in its life. */
export type OrderStatus = typeof OrderStatus.Type

const placed = {
  customerId: Schema.String,
  items: Schema.Array(OrderItem),
  total: Schema.Number
}

/** The state of an order, as a Schema so it can be snapshotted. */
export const OrderState = Schema.Union(
  Schema.Struct({ status: Schema.Literal("none") }),
  Schema.Struct({ status: Schema.Literal("created"), ...placed }),
  Schema.Struct({ status: Schema.Literal("shipped"), ...placed, trackingNumber: Schema.String })
)

/** The state of an order. */
export type OrderState = typeof OrderState.Type

// Errors

/** `CreateOrder` on an order that already exists. */
export class OrderAlreadyExists extends Schema.TaggedError<OrderAlreadyExists>()("OrderAlreadyExists", {
  status: OrderStatus
}) {
  override get message(): string {
    return `The order already exists (status ${this.status})`
  }
}

/** `ShipOrder` on an order that is not waiting to be shipped. */
export class CannotShipOrder extends Schema.TaggedError<CannotShipOrder>()("CannotShipOrder", {
  status: OrderStatus
}) {
  override get message(): string {
    return `Cannot ship an order with status ${this.status}`
  }
}

/** Every way an order command can be refused. */
export type OrderError = OrderAlreadyExists | CannotShipOrder

// Decider

/** The order's rules: `decide` checks a command against the state, `evolve` applies an event. */
export const OrderDecider = Decider.make<OrderState, OrderCommand, OrderEvent, OrderError>({
  initialState: { status: "none" },
  decide: (command, state) => {
    switch (command._tag) {
      case "CreateOrder": {
        if (state.status !== "none") return Effect.fail(new OrderAlreadyExists({ status: state.status }))
        const { createdAt, customerId, items } = command
        return Effect.succeed([
          new OrderCreated(createdAt === undefined ? { customerId, items } : { customerId, items, createdAt })
        ])
      }
      case "ShipOrder":
        return state.status === "created"
          ? Effect.succeed([new OrderShipped({ trackingNumber: command.trackingNumber })])
          : Effect.fail(new CannotShipOrder({ status: state.status }))
    }
  },
  evolve: (state, event) => {
    switch (event._tag) {
      case "OrderCreated":
        return { status: "created", customerId: event.customerId, items: event.items, total: orderTotal(event.items) }
      case "OrderShipped":
        return state.status === "created"
          ? { ...state, status: "shipped", trackingNumber: event.trackingNumber }
          : state
    }
  }
})

/** Orders bound to the `Order` stream type, with their event and state Schemas. */
export const OrderAggregate = Aggregate.make({
  name: "Order",
  decider: OrderDecider,
  events: OrderEvent,
  state: OrderState
})
