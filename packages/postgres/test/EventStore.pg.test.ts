import { EventStoreContract } from "@eventfold/core/testing"
import { PgTest } from "@eventfold/postgres"

EventStoreContract.suite(`postgres (${PgTest.serverLabel()})`, PgTest.layerEventStore())
