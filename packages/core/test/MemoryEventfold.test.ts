// The assembled in-memory stack passes every contract suite the single Layers pass.
import { MemoryEventfold } from "@eventfold/core"
import {
  CheckpointStoreContract,
  EventStoreContract,
  OutboxContract,
  SnapshotStoreContract,
  SubscriptionContract
} from "@eventfold/core/testing"

const stack = MemoryEventfold.layer({ outbox: true })

EventStoreContract.suite("MemoryEventfold", stack)
SnapshotStoreContract.suite("MemoryEventfold", stack)
CheckpointStoreContract.suite("MemoryEventfold", stack)
SubscriptionContract.suite("MemoryEventfold", stack)
OutboxContract.suite("MemoryEventfold", stack)
