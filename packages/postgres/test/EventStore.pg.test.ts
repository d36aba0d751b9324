import { EventStoreContract, EventStoreInputContract } from "@eventfold/core/testing"
import { PgTest } from "@eventfold/postgres"

EventStoreContract.suite(`postgres (${PgTest.serverLabel()})`, PgTest.layerEventStore())
EventStoreInputContract.suite(`postgres (${PgTest.serverLabel()})`, PgTest.layerEventStore(), { numRuns: 50 })
