import { CheckpointStore, FeedNotifier } from "@eventfold/core"
import { CheckpointStoreContract, SubscriptionContract } from "@eventfold/core/testing"
import * as Layer from "effect/Layer"

CheckpointStoreContract.suite("memory", CheckpointStore.layerMemory)
SubscriptionContract.suite("memory", Layer.merge(FeedNotifier.layerMemory, CheckpointStore.layerMemory))
