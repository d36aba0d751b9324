import { EventStore } from "@eventfold/core"
import { EventStoreContract } from "@eventfold/core/testing"

EventStoreContract.suite("memory", EventStore.layerMemory)
