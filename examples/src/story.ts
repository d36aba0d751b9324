/**
 * The seed tutorial's story, told against whatever EventStore is provided: create the database schema is done by
 * the caller; here an order is created, shipped, reloaded from the store, and its stored events are listed.
 */
import { CommandHandler, EventStore } from "@eventfold/core"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import { OrderAggregate } from "./domain/Order.js"

/** What the story observed, so tests can check it. */
export interface StoryResult {
  readonly orderId: string
  readonly createdVersion: number
  readonly shippedVersion: number
  readonly reloaded: { readonly status: string; readonly version: number }
  readonly storedTypes: ReadonlyArray<string>
  readonly refusedWith: string
}

/** Creates, ships and reloads one order, printing each step. */
export const story = Effect.gen(function*() {
  const orders = yield* CommandHandler.make(OrderAggregate)
  const orderId = `order-${crypto.randomUUID().slice(0, 8)}`

  const created = yield* orders.handle(orderId, {
    _tag: "CreateOrder",
    customerId: "customer-42",
    items: [{ productId: "book-1", quantity: 2, unitPrice: 12.5 }, { productId: "pen-7", quantity: 1, unitPrice: 3 }],
    createdAt: new Date("2026-11-23T09:00:00Z")
  }, { metadata: { actorId: "alice", correlationId: `checkout-${orderId}` } })
  yield* Console.log(`2. created ${orderId}: version ${created.version}, status ${created.state.status}`)

  const shipped = yield* orders.handle(orderId, { _tag: "ShipOrder", trackingNumber: "TRACK-123" })
  yield* Console.log(`3. shipped it: version ${shipped.version}, status ${shipped.state.status}`)

  // A fresh handler has no memory of its own: what it loads comes from the store.
  const reloaded = yield* Effect.flatMap(CommandHandler.make(OrderAggregate), (fresh) => fresh.load(orderId))
  yield* Console.log(`4. reloaded from the store: version ${reloaded.version}, status ${reloaded.state.status}`)

  const refusedWith = yield* orders.handle(orderId, { _tag: "ShipOrder", trackingNumber: "TRACK-999" }).pipe(
    Effect.as("nothing"),
    Effect.catchTag("CannotShipOrder", (e) => Effect.succeed(`${e._tag} (${e.message})`))
  )
  yield* Console.log(`   shipping it again is refused with a typed error: ${refusedWith}`)

  const store = yield* EventStore.EventStore
  const events = yield* store.readStream({ streamType: OrderAggregate.name, streamId: orderId })
  yield* Console.log(`5. stored events of Order/${orderId}:`)
  for (const event of events) {
    yield* Console.log(
      `   v${event.version}  ${event.type.padEnd(13)} position ${event.transactionId}:${event.globalPosition}  ` +
        `${JSON.stringify(event.payload)}  ${JSON.stringify(event.metadata)}`
    )
  }
  const result: StoryResult = {
    orderId,
    createdVersion: created.version,
    shippedVersion: shipped.version,
    reloaded: { status: reloaded.state.status, version: reloaded.version },
    storedTypes: events.map((e) => e.type),
    refusedWith
  }
  return result
})
