// Personal data on the in-memory stack: the contract the PostgreSQL stack passes.
import { KeyStore, MemoryEventfold } from "@eventfold/core"
import { PersonalDataContract } from "@eventfold/core/testing"
import * as Layer from "effect/Layer"

PersonalDataContract.suite("memory", Layer.merge(MemoryEventfold.layer({ outbox: true }), KeyStore.layerMemory))
