import { SnapshotStore } from "@eventfold/core"
import { SnapshotStoreContract } from "@eventfold/core/testing"

SnapshotStoreContract.suite("memory", SnapshotStore.layerMemory)
