// Tenancy on the in-memory stack: the same contract the PostgreSQL stack passes.
import { MemoryEventfold } from "@eventfold/core"
import { TenancyContract } from "@eventfold/core/testing"

TenancyContract.suite("memory", (tenancy) => MemoryEventfold.layer({ outbox: true, tenancy }))
