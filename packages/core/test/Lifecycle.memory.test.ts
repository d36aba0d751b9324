// Stream lifecycle on the in-memory stack: the same contract the PostgreSQL stack passes.
import { MemoryEventfold } from "@eventfold/core"
import { LifecycleContract } from "@eventfold/core/testing"

LifecycleContract.suite("memory", MemoryEventfold.layer())
