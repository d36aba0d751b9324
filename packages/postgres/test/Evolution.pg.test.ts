// Evolving events on PostgreSQL: the same contract the in-memory stack passes.
import { EvolutionContract } from "@eventfold/core/testing"
import { PgTest } from "@eventfold/postgres/testing"

EvolutionContract.suite(`postgres (${PgTest.serverLabel()})`, PgTest.layerEventfold())
