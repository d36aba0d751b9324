// Tenancy on PostgreSQL: the contract the memory stack passes, as the least-privilege application role, with and
// without row-level security; and, with row-level security on, every other contract suite (in single mode, so the
// suites' tenant-less calls run in the default tenant or, for the feed, the outbox relay and checkpoints, in the
// all-tenants scope).
import {
  CheckpointStoreContract,
  EventStoreContract,
  OutboxContract,
  SnapshotStoreContract,
  SubscriptionContract,
  TenancyContract
} from "@eventfold/core/testing"
import { PgTest } from "@eventfold/postgres"

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
