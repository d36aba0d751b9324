/**
 * What tenancy guarantees on every store, as one exported test suite: a stream is identified by (tenant, stream
 * type, stream id) through every entry point (`CommandHandler`, `EventStore`, snapshots, the outbox, subscriptions),
 * the ambient tenant is honoured, `multi` mode refuses work without a tenant, and subscriptions run per tenant (a
 * checkpoint each) or across tenants (one checkpoint), each event handled exactly once.
 *
 * `TenancyContract.suite("memory", (tenancy) => MemoryEventfold.layer({ outbox: true, tenancy }))`
 *
 * @since 0.3.0
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Aggregate from "./Aggregate.js"
import * as CheckpointStore from "./CheckpointStore.js"
import * as CommandHandler from "./CommandHandler.js"
import * as Decider from "./Decider.js"
import * as EventStore from "./EventStore.js"
import type * as FeedNotifier from "./FeedNotifier.js"
import * as Outbox from "./Outbox.js"
import * as Position from "./Position.js"
import * as SnapshotStore from "./SnapshotStore.js"
import * as Subscription from "./Subscription.js"
import * as Tenant from "./Tenant.js"

class OrderCreated extends Schema.TaggedClass<OrderCreated>()("OrderCreated", { customer: Schema.String }) {}
class OrderShipped extends Schema.TaggedClass<OrderShipped>()("OrderShipped", {}) {}
const OrderEvent = Schema.Union(OrderCreated, OrderShipped)
const OrderState = Schema.Struct({
  status: Schema.Literal("none", "open", "shipped"),
  customer: Schema.String
})
type OrderState = typeof OrderState.Type

class OrderNotFound extends Schema.TaggedError<OrderNotFound>()("OrderNotFound", {}) {}
class OrderExists extends Schema.TaggedError<OrderExists>()("OrderExists", {}) {}

type Command = { readonly _tag: "Create"; readonly customer: string } | { readonly _tag: "Ship" }

const decider = Decider.make<OrderState, Command, typeof OrderEvent.Type, OrderNotFound | OrderExists>({
  initialState: { status: "none", customer: "" },
  evolve: (state, event) =>
    event._tag === "OrderCreated" ? { status: "open", customer: event.customer } : { ...state, status: "shipped" },
  decide: (command, state) => {
    if (command._tag === "Create") {
      return state.status === "none"
        ? Effect.succeed([new OrderCreated({ customer: command.customer })])
        : Effect.fail(new OrderExists())
    }
    return state.status === "open" ? Effect.succeed([new OrderShipped()]) : Effect.fail(new OrderNotFound())
  }
})

const unique = (prefix: string) => `${prefix}-${crypto.randomUUID()}`

const orderAggregate = (name: string) =>
  Aggregate.make({
    name,
    decider,
    events: OrderEvent,
    state: OrderState,
    snapshot: { every: 1, schemaVersion: 1 }
  })

type Services =
  | EventStore.EventStore
  | SnapshotStore.SnapshotStore
  | CheckpointStore.CheckpointStore
  | FeedNotifier.FeedNotifier
  | Outbox.Outbox

const fast = { pollInterval: "20 millis", lease: "2 seconds", batchSize: 50 } as const

/** Reads the feed until `count` events of `streamType` show (a PostgreSQL feed trails commits by open transactions). */
const feedOf = (streamType: string, count: number, options: EventStore.ReadAllOptions = {}) =>
  Effect.flatMap(
    EventStore.EventStore,
    (store) =>
      store.readAll({ ...options, streamTypes: [streamType], limit: 10_000 }).pipe(
        Effect.filterOrFail((events) => events.length >= count, () => "not yet" as const),
        Effect.retry({ while: (e) => e === "not yet", schedule: Schedule.spaced("20 millis") }),
        Effect.timeout("20 seconds")
      )
  )

/**
 * Registers the suite. `makeLayer` builds a fresh stack (outbox on) in the given tenancy mode; each test gets its own.
 *
 * @since 0.3.0
 * @category suites
 */
export const suite = <E>(name: string, makeLayer: (tenancy: Tenant.Mode) => Layer.Layer<Services, E>): void => {
  describe(`Tenancy contract: ${name}`, () => {
    const single = <A, E2>(body: Effect.Effect<A, E2, Services>) => Effect.provide(body, makeLayer("single"))
    const multi = <A, E2>(body: Effect.Effect<A, E2, Services>) => Effect.provide(body, makeLayer("multi"))

    it.live("the same stream id in two tenants is two independent streams, each from version 1", () =>
      multi(Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const stream = { streamType: unique("Order"), streamId: "o-1" }
        const a = yield* Tenant.with(
          store.append({ ...stream, events: [{ type: "Created", payload: { t: "a" } }] }),
          "a"
        )
        const b = yield* Tenant.with(
          store.append({ ...stream, events: [{ type: "Created", payload: { t: "b" } }] }),
          "b"
        )
        assert.deepStrictEqual([a.version, a.tenantId, b.version, b.tenantId], [1, "a", 1, "b"])
        yield* Tenant.with(store.append({ ...stream, events: [{ type: "Renamed", payload: {} }] }), "a")
        assert.strictEqual(yield* Tenant.with(store.streamVersion(stream), "a"), 2)
        assert.strictEqual(yield* Tenant.with(store.streamVersion(stream), "b"), 1)
        const readB = yield* Tenant.with(store.readStream(stream), "b")
        assert.deepStrictEqual(readB.map((e) => [e.tenantId, e.version, e.payload]), [["b", 1, { t: "b" }]])
        // The explicit argument of admin tools names the tenant without an ambient one.
        const readA = yield* store.readStream({ ...stream, tenantId: "a" })
        assert.deepStrictEqual(readA.map((e) => [e.tenantId, e.version, e.metadata.tenantId]), [["a", 1, "a"], [
          "a",
          2,
          "a"
        ]])
        // Expected versions are per tenant too.
        yield* Tenant.with(
          store.append({
            ...stream,
            expectedVersion: { _tag: "Exact", version: 1 },
            events: [{ type: "X", payload: {} }]
          }),
          "b"
        )
        const conflict = yield* Tenant.with(
          store.append({ ...stream, expectedVersion: { _tag: "NoStream" }, events: [{ type: "X", payload: {} }] }),
          "b"
        ).pipe(Effect.flip)
        assert.strictEqual(conflict._tag, "ConcurrencyConflict")
        assert.strictEqual(conflict._tag === "ConcurrencyConflict" && conflict.actual, 2)
      })))

    it.live("a command for tenant B never touches tenant A's stream: CommandHandler, EventStore, snapshots, outbox", () =>
      multi(Effect.gen(function*() {
        const Order = orderAggregate(unique("Order"))
        const handler = yield* CommandHandler.make(Order)
        const store = yield* EventStore.EventStore
        const snapshots = yield* SnapshotStore.SnapshotStore
        const outbox = yield* Outbox.Outbox
        yield* Tenant.with(handler.handle("o-1", { _tag: "Create", customer: "alice" }), "a")
        // B creates its own o-1 (not "already exists"), and B's "ship" of A's order is refused: B has no such order.
        const created = yield* Tenant.with(handler.handle("o-1", { _tag: "Create", customer: "bob" }), "b")
        assert.strictEqual(created.version, 1)
        yield* Tenant.with(handler.handle("o-2", { _tag: "Create", customer: "carol" }), "a")
        const refused = yield* Tenant.with(handler.handle("o-2", { _tag: "Ship" }), "b").pipe(Effect.flip)
        assert.strictEqual(refused._tag, "OrderNotFound")
        const a1 = yield* Tenant.with(handler.load("o-1"), "a")
        const b1 = yield* Tenant.with(handler.load("o-1"), "b")
        assert.deepStrictEqual([a1.state.customer, b1.state.customer], ["alice", "bob"])
        const a2 = yield* Tenant.with(store.readStream({ streamType: Order.name, streamId: "o-2" }), "a")
        assert.deepStrictEqual(a2.map((e) => [e.tenantId, e.type]), [["a", "OrderCreated"]])
        const missing = yield* Tenant.with(store.readStream({ streamType: Order.name, streamId: "o-2" }), "b").pipe(
          Effect.flip
        )
        assert.strictEqual(missing._tag, "StreamNotFound")
        // Snapshots are per tenant: each tenant's o-1 has its own.
        const snapA = yield* Tenant.with(snapshots.load({ streamType: Order.name, streamId: "o-1" }), "a")
        const snapB = yield* Tenant.with(snapshots.load({ streamType: Order.name, streamId: "o-1" }), "b")
        assert.deepStrictEqual(
          [Option.map(snapA, (s) => [s.tenantId, s.state]), Option.map(snapB, (s) => [s.tenantId, s.state])],
          [
            Option.some(["a", { status: "open", customer: "alice" }]),
            Option.some(["b", { status: "open", customer: "bob" }])
          ]
        )
        assert.isTrue(
          Option.isNone(yield* Tenant.with(snapshots.load({ streamType: Order.name, streamId: "o-2" }), "b"))
        )
        // Outbox rows carry their stream's tenant.
        const row = yield* outbox.get(created.eventIds[0]!)
        assert.deepStrictEqual(
          Option.map(row, (r) => [r.tenantId, r.streamId, r.version]),
          Option.some(["b", "o-1", 1])
        )
      })))

    it.live("multi mode: no tenant is TenantRequired; a conflicting tenant is InvalidInput; nothing is written", () =>
      multi(Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const snapshots = yield* SnapshotStore.SnapshotStore
        const Order = orderAggregate(unique("Order"))
        const handler = yield* CommandHandler.make(Order)
        const stream = { streamType: unique("Order"), streamId: "o-1" }
        const event = { type: "Created", payload: {} }
        const required = [
          yield* Effect.flip(store.append({ ...stream, events: [event] })),
          yield* Effect.flip(store.readStream(stream)),
          yield* Effect.flip(store.streamVersion(stream)),
          yield* Effect.flip(store.readAll()),
          yield* Effect.flip(snapshots.load(stream)),
          yield* Effect.flip(snapshots.save({ ...stream, version: 1, schemaVersion: 1, state: {} })),
          yield* Effect.flip(handler.handle("o-1", { _tag: "Create", customer: "x" })),
          yield* Effect.flip(handler.load("o-1"))
        ]
        assert.deepStrictEqual(required.map((e) => e._tag), Array(8).fill("TenantRequired"))
        // Metadata naming another tenant, an explicit tenant against the ambient one, an invalid tenant id.
        const other = yield* Tenant.with(
          store.append({ ...stream, events: [{ ...event, metadata: { tenantId: "b" } }] }),
          "a"
        ).pipe(Effect.flip)
        assert.strictEqual(other._tag, "InvalidInput")
        assert.include(other.message, "tenant")
        const explicit = yield* Tenant.with(store.append({ ...stream, tenantId: "b", events: [event] }), "a").pipe(
          Effect.flip
        )
        assert.strictEqual(explicit._tag, "InvalidInput")
        for (const bad of ["", "*", "a\u0000", "x".repeat(Tenant.maxLength + 1)]) {
          const invalid = yield* Tenant.with(store.append({ ...stream, events: [event] }), bad).pipe(Effect.flip)
          assert.strictEqual(invalid._tag, "InvalidInput", JSON.stringify(bad))
        }
        for (const tenant of ["a", "b"]) {
          assert.strictEqual(yield* Tenant.with(store.streamVersion(stream), tenant), 0)
        }
        // The cross-tenant feed read is explicit.
        yield* Tenant.with(store.append({ ...stream, events: [event] }), "a")
        yield* Tenant.with(store.append({ ...stream, events: [event] }), "b")
        const all = yield* feedOf(stream.streamType, 2, { allTenants: true })
        assert.deepStrictEqual(all.map((e) => e.tenantId), ["a", "b"])
        const onlyB = yield* Tenant.with(feedOf(stream.streamType, 1), "b")
        assert.deepStrictEqual(onlyB.map((e) => e.tenantId), ["b"])
        const both = yield* Effect.either(Tenant.with(store.readAll({ tenantId: "b", allTenants: true }), "b"))
        assert.isTrue(Either.isLeft(both) && both.left._tag === "InvalidInput")
      })))

    it.live("single mode: without a tenant everything is in the default tenant; a tenant set is still honoured", () =>
      single(Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const stream = { streamType: unique("Order"), streamId: "o-1" }
        const plain = yield* store.append({ ...stream, events: [{ type: "Created", payload: {}, metadata: {} }] })
        assert.strictEqual(plain.tenantId, Tenant.defaultId)
        const labelled = yield* store.append({
          ...stream,
          events: [{ type: "Labelled", payload: {}, metadata: { tenantId: "label-only" } }]
        })
        assert.strictEqual(labelled.version, 2)
        const acme = yield* Tenant.with(store.append({ ...stream, events: [{ type: "Created", payload: {} }] }), "acme")
        assert.deepStrictEqual([acme.tenantId, acme.version], ["acme", 1])
        const read = yield* store.readStream(stream)
        assert.deepStrictEqual(read.map((e) => [e.tenantId, e.metadata.tenantId]), [
          [Tenant.defaultId, undefined],
          [Tenant.defaultId, "label-only"]
        ])
        // Without a tenant, the feed is every tenant's (as before tenancy).
        const feed = yield* feedOf(stream.streamType, 3)
        assert.deepStrictEqual(feed.map((e) => e.tenantId), [Tenant.defaultId, Tenant.defaultId, "acme"])
      })))

    it.live("idempotency keys are per tenant: the same key on the same stream id in two tenants is two commands", () =>
      multi(Effect.gen(function*() {
        const Order = orderAggregate(unique("Order"))
        const handler = yield* CommandHandler.make(Order)
        const key = { idempotencyKey: "req-1" }
        const a = yield* Tenant.with(handler.handle("o-1", { _tag: "Create", customer: "alice" }, key), "a")
        const b = yield* Tenant.with(handler.handle("o-1", { _tag: "Create", customer: "bob" }, key), "b")
        assert.deepStrictEqual([a.version, b.version], [1, 1])
        assert.notDeepEqual(a.eventIds, b.eventIds)
        // A repeat in each tenant returns that tenant's first result and writes nothing.
        const again = yield* Tenant.with(handler.handle("o-1", { _tag: "Create", customer: "alice" }, key), "a")
        assert.deepStrictEqual([again.eventIds, again.version], [a.eventIds, 1])
        const store = yield* EventStore.EventStore
        // An event id is visible in its own tenant only.
        assert.isTrue(yield* Tenant.with(store.eventExists(a.eventIds[0]!), "a"))
        assert.isFalse(yield* Tenant.with(store.eventExists(a.eventIds[0]!), "b"))
        assert.deepStrictEqual(
          [yield* Tenant.with(handler.load("o-1"), "a"), yield* Tenant.with(handler.load("o-1"), "b")].map((l) =>
            l.state.customer
          ),
          ["alice", "bob"]
        )
      })))

    it.live("the outbox queues per tenant: a failed row of one tenant's stream never holds back another's", () =>
      multi(Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const outbox = yield* Outbox.Outbox
        const stream = { streamType: unique("Order"), streamId: "o-1" }
        const a = yield* Tenant.with(store.append({ ...stream, events: [{ type: "Created", payload: {} }] }), "a")
        const claimedA = yield* outbox.claim({ relayId: "r1", limit: 10, lease: "1 minute" })
        assert.deepStrictEqual(claimedA.map((e) => e.eventId), a.eventIds)
        // Its retries exhausted: the row is dead-lettered (failed) and stays at the head of a's stream.
        yield* outbox.recordFailure("r1", claimedA[0]!.id, "broker refused", Option.none())
        const b = yield* Tenant.with(store.append({ ...stream, events: [{ type: "Created", payload: {} }] }), "b")
        const claimedB = yield* outbox.claim({ relayId: "r1", limit: 10, lease: "1 minute" })
        assert.deepStrictEqual(claimedB.map((e) => [e.tenantId, e.eventId]), [["b", b.eventIds[0]!]])
        // Inspection keeps to the ambient tenant; without one it covers every tenant.
        assert.isTrue(Option.isNone(yield* Tenant.with(outbox.get(a.eventIds[0]!), "b")))
        assert.deepStrictEqual(
          Option.map(yield* Tenant.with(outbox.get(a.eventIds[0]!), "a"), (r) => r.status),
          Option.some("failed")
        )
        assert.strictEqual(yield* Tenant.with(outbox.retryFailed(), "b"), 0)
        assert.strictEqual(yield* Tenant.with(outbox.retryFailed(), "a"), 1)
      })))

    it.live("a cross-tenant subscription built inside a tenant's scope keeps its checkpoint over every tenant", () =>
      multi(
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const checkpoints = yield* CheckpointStore.CheckpointStore
          const streamType = unique("Order")
          const id = unique("all")
          const seen = yield* Ref.make(0)
          const subscription = yield* Tenant.with(
            Subscription.make({
              ...fast,
              id,
              allTenants: true,
              streamTypes: [streamType],
              handler: () => Ref.update(seen, (n) => n + 1)
            }),
            "x"
          )
          yield* Effect.forkScoped(subscription.run)
          yield* Tenant.with(store.append({ streamType, streamId: "1", events: [{ type: "E", payload: {} }] }), "a")
          const last = yield* Tenant.with(
            store.append({ streamType, streamId: "1", events: [{ type: "E", payload: {} }] }),
            "b"
          )
          yield* Tenant.with(subscription.waitFor(last.position), "x")
          assert.strictEqual(yield* Ref.get(seen), 2)
          assert.isTrue(Option.isSome(yield* checkpoints.get(id)))
          assert.isTrue(Option.isNone(yield* Tenant.with(checkpoints.get(id), "x")))
          // An invalid ambient tenant never reaches a checkpoint row.
          const refused = yield* Tenant.with(checkpoints.get(id), "*").pipe(Effect.flip)
          assert.strictEqual(refused._tag, "StoreError")
        }).pipe(Effect.scoped)
      ))

    it.live("a subscription per tenant (a checkpoint each) and one across tenants: each event exactly once", () =>
      multi(
        Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const checkpoints = yield* CheckpointStore.CheckpointStore
          const streamType = unique("Order")
          const id = unique("projection")
          const tenants = ["a", "b", "c"]
          const seen = yield* Ref.make<Array<string>>([])
          const seenAll = yield* Ref.make<Array<string>>([])
          // The same subscription id runs once per tenant; the handler runs in the event's tenant.
          const fibers = yield* Effect.forEach(tenants, (tenant) =>
            Tenant.with(
              Subscription.make({
                ...fast,
                id,
                streamTypes: [streamType],
                handler: (event) =>
                  Effect.flatMap(Tenant.current, (ambient) =>
                    Ref.update(seen, (all) => [
                      ...all,
                      `${tenant}|${Option.getOrElse(ambient, () => "-")}|${event.eventId}`
                    ]))
              }),
              tenant
            ).pipe(Effect.flatMap((s) => Effect.forkScoped(s.run))))
          const across = yield* Subscription.make({
            ...fast,
            id,
            allTenants: true,
            streamTypes: [streamType],
            handler: (event) =>
              Effect.flatMap(Tenant.current, (ambient) =>
                Ref.update(seenAll, (all) => [
                  ...all,
                  `${Option.getOrElse(ambient, () => "-")}|${event.eventId}`
                ]))
          })
          yield* Effect.forkScoped(across.run)
          const written: Array<{ tenant: string; eventId: string }> = []
          let last = Position.start
          for (let i = 0; i < 12; i++) {
            const tenant = tenants[i % 3]!
            const result = yield* Tenant.with(
              store.append({ streamType, streamId: `o-${i % 2}`, events: [{ type: "Noted", payload: { i } }] }),
              tenant
            )
            written.push({ tenant, eventId: result.eventIds[0]! })
            last = result.position
          }
          yield* across.waitFor(last)
          for (const tenant of tenants) {
            yield* Effect.flatMap(
              Tenant.with(
                Subscription.make({
                  ...fast,
                  id,
                  streamTypes: [streamType],
                  handler: () => Effect.void
                }),
                tenant
              ),
              (s) => s.waitFor(last)
            )
          }
          const perTenant = (yield* Ref.get(seen)).slice().sort()
          assert.deepStrictEqual(perTenant, written.map((w) => `${w.tenant}|${w.tenant}|${w.eventId}`).sort())
          assert.deepStrictEqual(yield* Ref.get(seenAll), written.map((w) => `${w.tenant}|${w.eventId}`))
          // Four checkpoints under one id: one per tenant, one for all tenants.
          for (const tenant of tenants) {
            const checkpoint = yield* Tenant.with(checkpoints.get(id), tenant)
            assert.isTrue(Option.isSome(checkpoint), tenant)
          }
          assert.isTrue(Option.isSome(yield* checkpoints.get(id)))
          assert.isTrue(Option.isNone(yield* Tenant.with(checkpoints.get(id), "d")))
          // Without a tenant or allTenants, a multi-tenant subscription refuses to run.
          const refused = yield* Subscription.run({ ...fast, id, handler: () => Effect.void }).pipe(Effect.flip)
          assert.strictEqual(refused._tag, "TenantRequired")
          yield* Effect.forEach(fibers, Fiber.interrupt)
        }).pipe(Effect.scoped)
      ))
  })
}
