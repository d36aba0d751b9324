import { assert, describe, it } from "@effect/vitest"
import { MemoryEventfold } from "@eventfold/core"
import { PgTest } from "@eventfold/postgres"
import * as Effect from "effect/Effect"
import { program, type SnapshotsResult } from "../src/snapshots.js"

const versions = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

const check = (result: SnapshotsResult) => {
  assert.strictEqual(result.version, 25)
  assert.strictEqual(result.price, 224)
  assert.deepStrictEqual(result.snapshotsWritten, [10, 20])
  // The snapshot's own version proves the stream reaches it, then the tail.
  assert.deepStrictEqual(result.readWithSnapshot, versions(20, 25))
  assert.deepStrictEqual(result.readWithoutSnapshot, versions(1, 25))
  assert.deepStrictEqual(result.readAfterSchemaChange, versions(1, 25))
  assert.deepStrictEqual(result.resnapshotted, { version: 25, schemaVersion: 2 })
  assert.deepStrictEqual(result.readAfterResnapshot, [25])
  assert.match(result.refusedWithout, /^SnapshotStoreMissing: Aggregate Product has a snapshot policy/)
}

describe("the snapshots example", () => {
  it.effect("runs in memory", () => Effect.map(program, check).pipe(Effect.provide(MemoryEventfold.layer())))

  it.live(`runs on PostgreSQL as the application role (${PgTest.serverLabel()})`, () =>
    Effect.map(Effect.provide(program, PgTest.layerEventfold()), check))
})
