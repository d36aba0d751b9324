// Loads on the in-memory stack: the same contract the PostgreSQL stack passes.
import { MemoryEventfold } from "@eventfold/core"
import { LoadContract } from "@eventfold/core/testing"

LoadContract.suite("memory", MemoryEventfold.layer())
