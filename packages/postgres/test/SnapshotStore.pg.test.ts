import { SnapshotStoreContract } from "@eventfold/core/testing"
import { PgMigrations, PgSnapshotStore, PgTest } from "@eventfold/postgres"
import * as Layer from "effect/Layer"

SnapshotStoreContract.suite(
  `postgres (${PgTest.serverLabel()})`,
  PgSnapshotStore.layer().pipe(Layer.provide(PgMigrations.layer()), Layer.provide(PgTest.layerClient()))
)
