// The EventStore contract on PostgreSQL, with group commit on (the default) and off: every outcome must be the same.
import { EventStoreContract, EventStoreInputContract } from "@eventfold/core/testing"
import { PgTest } from "@eventfold/postgres"

EventStoreContract.suite(`postgres (${PgTest.serverLabel()})`, PgTest.layerEventStore())
EventStoreContract.suite(
  `postgres, group commit off (${PgTest.serverLabel()})`,
  PgTest.layerEventStore({ groupCommit: false })
)
EventStoreInputContract.suite(`postgres (${PgTest.serverLabel()})`, PgTest.layerEventStore(), { numRuns: 50 })
