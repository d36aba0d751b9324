import { EventStore } from "@eventfold/core"
import { EventStoreContract, EventStoreInputContract } from "@eventfold/core/testing"

EventStoreContract.suite("memory", EventStore.layerMemory)
EventStoreInputContract.suite("memory", EventStore.layerMemory, { numRuns: 100 })
