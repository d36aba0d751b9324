/**
 * A multi-tenant order service (`npm run example:tenancy`): the store runs in `multi` mode with row-level security,
 * each request runs for its tenant (`Tenant.with`), and two tenants that use the same order id get two independent
 * orders. Tenant B cannot see or ship tenant A's order; a request without a tenant is refused with `TenantRequired`;
 * a per-tenant projection counts each tenant's orders, and a cross-tenant one (an explicit admin choice) counts all.
 */
import { CommandHandler, EventStore, Subscription, Tenant } from "@eventfold/core"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Ref from "effect/Ref"
import { OrderAggregate } from "./domain/Order.js"
import { onPostgres, runIfMain } from "./run.js"

/** What the example saw, for its test. */
export interface TenancyResult {
  readonly acmeVersion: number
  readonly globexVersion: number
  /** Globex shipping acme's order id ships nothing of acme's: globex has no such order. */
  readonly crossShip: string
  readonly acmeCustomer: string
  readonly globexCustomer: string
  readonly withoutTenant: string
  readonly perTenant: Readonly<Record<string, number>>
  readonly allTenants: number
}

const create = (customerId: string) =>
  ({ _tag: "CreateOrder", customerId, items: [{ productId: "book", quantity: 1, unitPrice: 12 }] }) as const

export const program = Effect.gen(function*() {
  const orders = yield* CommandHandler.make(OrderAggregate)
  const store = yield* EventStore.EventStore

  // Each request runs for its tenant, e.g. from the authenticated user's organisation.
  const acme = yield* Tenant.with(orders.handle("order-1", create("alice")), "acme")
  const globex = yield* Tenant.with(orders.handle("order-1", create("bob")), "globex")
  yield* Console.log(`1. acme and globex both create order-1: versions ${acme.version} and ${globex.version}`)

  yield* Tenant.with(orders.handle("order-2", create("carol")), "acme")
  const crossShip = yield* Tenant.with(orders.handle("order-2", { _tag: "ShipOrder", trackingNumber: "T-1" }), "globex")
    .pipe(Effect.match({ onFailure: (e) => e._tag, onSuccess: () => "shipped" }))
  yield* Console.log(`2. globex ships order-2, which only acme has: ${crossShip}`)

  const acmeOrder = yield* Tenant.with(orders.load("order-1"), "acme")
  const globexOrder = yield* Tenant.with(orders.load("order-1"), "globex")
  const customer = (state: typeof acmeOrder.state) => (state.status === "none" ? "-" : state.customerId)
  yield* Console.log(
    `3. order-1 is alice's for acme and ${customer(globexOrder.state)}'s for globex (acme: ${
      customer(acmeOrder.state)
    })`
  )

  const withoutTenant = yield* orders.load("order-1").pipe(
    Effect.match({ onFailure: (e) => e._tag, onSuccess: () => "loaded" })
  )
  yield* Console.log(`4. a request without a tenant: ${withoutTenant}`)

  // A projection per tenant (its checkpoint per tenant), and one across tenants (an explicit admin choice).
  const counts = yield* Ref.make<Record<string, number>>({})
  const total = yield* Ref.make(0)
  const perTenant = (tenant: string) =>
    Tenant.with(
      Subscription.make({
        id: "orders-per-tenant",
        streamTypes: [OrderAggregate.name],
        eventTypes: ["OrderCreated"],
        pollInterval: "50 millis",
        handler: (event) => Ref.update(counts, (c) => ({ ...c, [event.tenantId]: (c[event.tenantId] ?? 0) + 1 }))
      }),
      tenant
    )
  const across = yield* Subscription.make({
    id: "orders-all-tenants",
    allTenants: true,
    streamTypes: [OrderAggregate.name],
    eventTypes: ["OrderCreated"],
    pollInterval: "50 millis",
    handler: () => Ref.update(total, (n) => n + 1)
  })
  const subscriptions = [yield* perTenant("acme"), yield* perTenant("globex"), across]
  yield* Effect.forEach(subscriptions, (s) => Effect.forkScoped(s.run))
  const head = yield* store.headPosition
  yield* Effect.forEach(subscriptions, (s) => s.waitFor(head))
  const result: TenancyResult = {
    acmeVersion: acme.version,
    globexVersion: globex.version,
    crossShip,
    acmeCustomer: customer(acmeOrder.state),
    globexCustomer: customer(globexOrder.state),
    withoutTenant,
    perTenant: yield* Ref.get(counts),
    allTenants: yield* Ref.get(total)
  }
  yield* Console.log(
    `5. orders created per tenant: ${JSON.stringify(result.perTenant)}; across tenants: ${result.allTenants}`
  )
  return result
}).pipe(Effect.scoped)

runIfMain(
  import.meta,
  "a multi-tenant order service",
  onPostgres(program, { switches: { tenancy: "multi", rowLevelSecurity: true } })
)
