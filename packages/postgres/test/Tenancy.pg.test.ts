// Tenancy on PostgreSQL: the contract the memory stack passes, as the least-privilege application role, with and
// without row-level security; and, with row-level security on, every other contract suite (in single mode, so the
// suites' tenant-less calls run in the default tenant or, for the feed, the outbox relay and checkpoints, in the
// all-tenants scope).
import { assert, describe, it } from "@effect/vitest"
import { EventStore, Tenant } from "@eventfold/core"
import {
  CheckpointStoreContract,
  EventStoreContract,
  OutboxContract,
  SnapshotStoreContract,
  SubscriptionContract,
  TenancyContract
} from "@eventfold/core/testing"
import { PgProjection, PgTest } from "@eventfold/postgres"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"

TenancyContract.suite("PgEventfold", (tenancy) => PgTest.layerEventfold({ outbox: true, tenancy }))
TenancyContract.suite(
  "PgEventfold, row-level security",
  (tenancy) => PgTest.layerEventfold({ outbox: true, tenancy, rowLevelSecurity: true })
)

const secured = PgTest.layerEventfold({ outbox: true, rowLevelSecurity: true })
EventStoreContract.suite("PgEventfold, row-level security", secured)
SnapshotStoreContract.suite("PgEventfold, row-level security", secured)
CheckpointStoreContract.suite("PgEventfold, row-level security", secured)
SubscriptionContract.suite("PgEventfold, row-level security", secured)
OutboxContract.suite("PgEventfold, row-level security", PgTest.layerEventfold({ outbox: true, rowLevelSecurity: true }))

describe("PgProjection under row-level security", () => {
  it.live("a cross-tenant projection whose handler calls the store in each event's tenant commits its checkpoint", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const streamType = `Order-${crypto.randomUUID()}`
      const versions = yield* Ref.make<Array<string>>([])
      const projection = yield* PgProjection.make({
        id: `versions-${crypto.randomUUID()}`,
        allTenants: true,
        streamTypes: [streamType],
        pollInterval: "20 millis",
        // Inside the projection's transaction: a read of the event's own tenant (which scopes that tenant), then the
        // checkpoint advance over every tenant.
        handler: (event) =>
          Effect.flatMap(
            store.streamVersion({ streamType: event.streamType, streamId: event.streamId }),
            (version) => Ref.update(versions, (all) => [...all, `${event.tenantId}:${version}`])
          )
      })
      yield* Effect.forkScoped(projection.run)
      yield* Tenant.with(store.append({ streamType, streamId: "o-1", events: [{ type: "E", payload: {} }] }), "a")
      const last = yield* Tenant.with(
        store.append({ streamType, streamId: "o-1", events: [{ type: "E", payload: {} }, { type: "E", payload: {} }] }),
        "b"
      )
      yield* projection.waitFor(last.position).pipe(Effect.timeout("20 seconds"))
      assert.deepStrictEqual((yield* Ref.get(versions)).slice().sort(), ["a:1", "b:2", "b:2"])
      const status = yield* projection.status
      assert.isTrue(Option.isNone(status.lastError), Option.getOrElse(status.lastError, () => ""))
    }).pipe(
      Effect.scoped,
      Effect.provide(PgTest.layerEventfold({ tenancy: "multi", rowLevelSecurity: true }))
    ))
})
