// Tenancy on PostgreSQL: the contract the memory stack passes, as the least-privilege application role, with and
// without row-level security.
import { TenancyContract } from "@eventfold/core/testing"
import { PgTest } from "@eventfold/postgres"

TenancyContract.suite("PgEventfold", (tenancy) => PgTest.layerEventfold({ outbox: true, tenancy }))
TenancyContract.suite(
  "PgEventfold, row-level security",
  (tenancy) => PgTest.layerEventfold({ outbox: true, tenancy, rowLevelSecurity: true })
)
