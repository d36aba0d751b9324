import { MemoryEventfold } from "@eventfold/core"
import { TelemetryContract } from "@eventfold/core/testing"

TelemetryContract.suite("memory", MemoryEventfold.layer({ outbox: true }))
