import { assert, describe, it } from "@effect/vitest"
import type { RecordedEvent } from "@eventfold/core"
import { DeciderSpec } from "@eventfold/core/testing"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import {
  CannotShipOrder,
  CreateOrder,
  OrderAggregate,
  OrderAlreadyExists,
  OrderCreated,
  OrderDecider,
  OrderShipped,
  OrderState,
  ShipOrder
} from "../src/domain/Order.js"

const spec = DeciderSpec.for(OrderDecider)

const items = [
  { productId: "p-1", quantity: 2, unitPrice: 10 },
  { productId: "p-2", quantity: 1, unitPrice: 5.5 }
] as const
const createdAt = new Date("2024-05-01T12:00:00.000Z")
const create = CreateOrder.make({ customerId: "c-1", items: [...items], createdAt })
const created = new OrderCreated({ customerId: "c-1", items: [...items], createdAt })
const shipped = new OrderShipped({ trackingNumber: "TRK-1" })

describe("Order", () => {
  describe("CreateOrder", () => {
    it.effect("creates a new order with its items and the command's timestamp", () =>
      spec.given([]).when(create).then([created]))

    it.effect("records no timestamp when the command gives none", () =>
      spec.given([]).when(CreateOrder.make({ customerId: "c-1", items: [...items] })).then([
        new OrderCreated({ customerId: "c-1", items: [...items] })
      ]))

    it.effect("leaves the order created, with its total", () =>
      spec.given([]).when(create).thenState({ status: "created", customerId: "c-1", items: [...items], total: 25.5 }))

    it.effect("refuses an order that already exists", () =>
      spec.given([created]).when(create).thenFails(new OrderAlreadyExists({ status: "created" })))

    it.effect("refuses an order that was already shipped", () =>
      spec.given([created, shipped]).when(create).thenFails(new OrderAlreadyExists({ status: "shipped" })))
  })

  describe("ShipOrder", () => {
    it.effect("ships a created order", () =>
      spec.given([created]).when(ShipOrder.make({ trackingNumber: "TRK-1" })).then([shipped]))

    it.effect("leaves the order shipped with its tracking number", () =>
      spec.given([created]).when(ShipOrder.make({ trackingNumber: "TRK-1" })).thenState({
        status: "shipped",
        customerId: "c-1",
        items: [...items],
        total: 25.5,
        trackingNumber: "TRK-1"
      }))

    it.effect("refuses to ship an order that does not exist", () =>
      spec.given([]).when(ShipOrder.make({ trackingNumber: "TRK-1" })).thenFails(
        new CannotShipOrder({ status: "none" })
      ))

    it.effect("refuses to ship an order twice", () =>
      spec.given([created, shipped]).when(ShipOrder.make({ trackingNumber: "TRK-2" })).thenFails((error) =>
        error._tag === "CannotShipOrder" && error.status === "shipped"
      ))
  })

  describe("OrderAggregate", () => {
    it.effect("stores createdAt as an ISO string and decodes it back to a Date", () =>
      Effect.gen(function*() {
        const encoded = yield* OrderAggregate.encodeEvent(created)
        assert.strictEqual(encoded.type, "OrderCreated")
        assert.deepStrictEqual(encoded.payload, {
          customerId: "c-1",
          items: [...items],
          createdAt: "2024-05-01T12:00:00.000Z"
        })
        const recorded: RecordedEvent.RecordedEvent = {
          eventId: crypto.randomUUID(),
          tenantId: "default",
          streamType: "Order",
          streamId: "o-1",
          version: 1,
          globalPosition: 1n,
          transactionId: 1n,
          type: encoded.type,
          schemaVersion: 1,
          payload: JSON.parse(JSON.stringify(encoded.payload)),
          metadata: {},
          recordedAt: new Date()
        }
        const decoded = yield* OrderAggregate.decodeEvent(recorded)
        assert.instanceOf(decoded, OrderCreated)
        assert.deepStrictEqual(decoded, created)
        assert.strictEqual(decoded._tag === "OrderCreated" && decoded.createdAt?.getTime(), createdAt.getTime())
      }))

    it.effect("has a state Schema that round-trips a shipped order, ready for snapshots", () =>
      Effect.gen(function*() {
        const state = OrderDecider.evolve(OrderDecider.evolve(OrderDecider.initialState, created), shipped)
        const json = JSON.parse(JSON.stringify(yield* Schema.encode(OrderState)(state)))
        assert.deepStrictEqual(yield* Schema.decodeUnknown(OrderState)(json), state)
        assert.strictEqual(OrderAggregate.name, "Order")
        assert.isUndefined(OrderAggregate.snapshot)
      }))
  })
})
