/**
 * A projection (`npm run example:projection`): a read model of orders, one row per order, kept up to date from the
 * feed as commands arrive, then rebuilt from scratch with `reset`. On PostgreSQL it is a table written by
 * `PgProjection`, whose writes commit with the checkpoint (exactly once); in memory it is a `Ref` fed by a plain
 * `Subscription`. After each command `waitFor(result)` waits until the read model holds it (read your writes);
 * after the reset `waitFor` waits until the rebuilt read model holds everything again.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlError from "@effect/sql/SqlError"
import * as SqlSchema from "@effect/sql/SqlSchema"
import type { CheckpointStore, EventDecodeError, EventStore, FeedNotifier, RecordedEvent } from "@eventfold/core"
import { CommandHandler, Position, Subscription } from "@eventfold/core"
import { PgProjection } from "@eventfold/postgres"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as ParseResult from "effect/ParseResult"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import { OrderAggregate, type OrderEvent, orderTotal } from "./domain/Order.js"
import { onPostgres, runIfMain } from "./run.js"

/** One row of the read model. */
export const OrderRow = Schema.Struct({
  orderId: Schema.String,
  customerId: Schema.String,
  total: Schema.Number,
  status: Schema.Literal("created", "shipped"),
  trackingNumber: Schema.NullOr(Schema.String)
})

/** One row of the read model. */
export interface OrderRow extends Schema.Schema.Type<typeof OrderRow> {}

/** What the read model's handler and queries can fail with. */
export type ReadModelError = EventDecodeError | SqlError.SqlError | ParseResult.ParseError

/** The read model's table on PostgreSQL; an application creates it in a migration, as its owner. */
export const createOrderListTable = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) =>
    sql`CREATE TABLE IF NOT EXISTS example_order_list (
    order_id text PRIMARY KEY,
    customer_id text NOT NULL,
    total double precision NOT NULL,
    status text NOT NULL,
    tracking_number text
  )`
)

/** A read model of orders and the subscription that feeds it. */
interface OrderList {
  readonly describe: string
  readonly apply: (event: RecordedEvent.RecordedEvent) => Effect.Effect<void, ReadModelError>
  readonly clear: Effect.Effect<void, ReadModelError>
  readonly ofCustomer: (customerId: string) => Effect.Effect<ReadonlyArray<OrderRow>, ReadModelError>
  readonly project: (
    options: Subscription.Options<ReadModelError, never>
  ) => Effect.Effect<
    Subscription.Subscription<ReadModelError>,
    never,
    EventStore.EventStore | CheckpointStore.CheckpointStore | FeedNotifier.FeedNotifier
  >
}

const decoded = (event: RecordedEvent.RecordedEvent, f: (order: OrderEvent) => Effect.Effect<void, ReadModelError>) =>
  Effect.flatMap(OrderAggregate.decodeEvent(event), f)

/** The table `example_order_list`, written by `PgProjection` in the transaction that moves its checkpoint. */
const inPostgres = (sql: SqlClient.SqlClient): OrderList => ({
  describe: "the PostgreSQL table example_order_list, written by PgProjection in the checkpoint's transaction",
  apply: (event) =>
    decoded(event, (order) => {
      switch (order._tag) {
        case "OrderCreated":
          return sql`INSERT INTO example_order_list (order_id, customer_id, total, status)
            VALUES (${event.streamId}, ${order.customerId}, ${orderTotal(order.items)}, 'created')
            ON CONFLICT (order_id) DO UPDATE
            SET customer_id = EXCLUDED.customer_id, total = EXCLUDED.total, status = 'created', tracking_number = NULL`
        case "OrderShipped":
          return sql`UPDATE example_order_list SET status = 'shipped', tracking_number = ${order.trackingNumber}
            WHERE order_id = ${event.streamId}`
      }
    }),
  clear: Effect.asVoid(sql`DELETE FROM example_order_list`),
  ofCustomer: SqlSchema.findAll({
    Request: Schema.String,
    Result: OrderRow,
    execute: (customerId) =>
      sql`SELECT order_id AS "orderId", customer_id AS "customerId", total, status, tracking_number AS "trackingNumber"
        FROM example_order_list WHERE customer_id = ${customerId} ORDER BY order_id`
  }),
  project: (options) => PgProjection.make(options).pipe(Effect.provideService(SqlClient.SqlClient, sql))
})

/** A map in a `Ref`, fed by a plain `Subscription` (at-least-once, and every update is idempotent). */
const inMemory = Effect.map(Ref.make<ReadonlyMap<string, OrderRow>>(new Map()), (rows): OrderList => ({
  describe: "a Map in a Ref, fed by Subscription.make",
  apply: (event) =>
    decoded(event, (order) =>
      Ref.update(rows, (all) => {
        const next = new Map(all)
        const row = all.get(event.streamId)
        switch (order._tag) {
          case "OrderCreated":
            return next.set(event.streamId, {
              orderId: event.streamId,
              customerId: order.customerId,
              total: orderTotal(order.items),
              status: "created",
              trackingNumber: null
            })
          case "OrderShipped":
            return row
              ? next.set(event.streamId, { ...row, status: "shipped", trackingNumber: order.trackingNumber })
              : all
        }
      })),
  clear: Ref.set(rows, new Map()),
  ofCustomer: (customerId) =>
    Effect.map(
      Ref.get(rows),
      (all) =>
        [...all.values()].filter((row) => row.customerId === customerId).sort((a, b) =>
          a.orderId.localeCompare(b.orderId)
        )
    ),
  project: Subscription.make
}))

/** On PostgreSQL when the stack provides a `SqlClient` (`PgEventfold` does), else in memory. */
const orderList = Effect.flatMap(
  Effect.serviceOption(SqlClient.SqlClient),
  Option.match({ onNone: () => inMemory, onSome: (sql) => Effect.succeed(inPostgres(sql)) })
)

/** What the example observed, so the tests can check it. */
export interface ProjectionResult {
  readonly customerId: string
  /** The customer's rows after each command, once `waitFor` returned. */
  readonly live: ReadonlyArray<ReadonlyArray<OrderRow>>
  /** Events the handler applied between the reset and the end of `waitFor`. */
  readonly replayed: number
  /** The customer's rows once the rebuild caught up. */
  readonly rebuilt: ReadonlyArray<OrderRow>
}

const format = (rows: ReadonlyArray<OrderRow>) =>
  rows.map((r) => `${r.orderId} ${r.status} ${r.total}${r.trackingNumber ? ` ${r.trackingNumber}` : ""}`).join(" | ")

/** Live updates, then a rebuild. Needs the eventfold services (and uses the `SqlClient` when there is one). */
export const program = Effect.gen(function*() {
  const list = yield* orderList
  const orders = yield* CommandHandler.make(OrderAggregate)
  const applied = yield* Ref.make(0)
  const projection = yield* list.project({
    id: "example-order-list",
    streamTypes: [OrderAggregate.name],
    handler: (event) => Effect.zipRight(list.apply(event), Ref.update(applied, (n) => n + 1)),
    onReset: list.clear,
    pollInterval: "200 millis"
  })
  yield* Console.log(`1. read model: ${list.describe}`)
  yield* Effect.forkScoped(projection.run)

  const run = crypto.randomUUID().slice(0, 8)
  const customerId = `customer-${run}`
  const [first, second] = [`order-${run}-1`, `order-${run}-2`]
  const create = (orderId: string, quantity: number) =>
    orders.handle(orderId, {
      _tag: "CreateOrder",
      customerId,
      items: [{ productId: "teapot", quantity, unitPrice: 15 }]
    })
  const steps = [
    { label: `created ${first}`, command: create(first, 1) },
    { label: `created ${second}`, command: create(second, 3) },
    { label: `shipped ${first}`, command: orders.handle(first, { _tag: "ShipOrder", trackingNumber: "TRACK-1" }) }
  ]
  yield* Console.log(`2. live: after each command, waitFor(result) and read ${customerId}'s rows`)
  const live: Array<ReadonlyArray<OrderRow>> = []
  const results: Array<Position.Written> = []
  for (const step of steps) {
    const result = yield* step.command
    results.push(result)
    yield* projection.waitFor(result)
    const rows = yield* list.ofCustomer(customerId)
    live.push(rows)
    yield* Console.log(`   ${step.label}: ${format(rows)}`)
  }

  yield* Ref.set(applied, 0)
  yield* projection.reset
  yield* Console.log("3. rebuild: reset cleared the read model and rewound the checkpoint, in one transaction")
  yield* projection.waitFor(Position.latest(results))
  const replayed = yield* Ref.get(applied)
  const rebuilt = yield* list.ofCustomer(customerId)
  yield* Console.log(
    `   waitFor(everything written) returned once ${replayed} Order events of the feed were replayed: ${
      format(rebuilt)
    }`
  )

  const result: ProjectionResult = { customerId, live, replayed, rebuilt }
  return result
}).pipe(Effect.scoped)

runIfMain(import.meta, "projection: live updates and a rebuild", onPostgres(program, { setup: createOrderListTable }))
