// Evolving events on the in-memory stack: the same contract the PostgreSQL stack passes.
import { MemoryEventfold } from "@eventfold/core"
import { EvolutionContract } from "@eventfold/core/testing"

EvolutionContract.suite("memory", MemoryEventfold.layer())
