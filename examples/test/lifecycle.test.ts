import { assert, describe, it } from "@effect/vitest"
import { KeyStore, MemoryEventfold } from "@eventfold/core"
import { PgKeyStore, PgTest } from "@eventfold/postgres"
import * as Effect from "effect/Effect"
import { type LifecycleResult, program } from "../src/lifecycle.js"

const check = (result: LifecycleResult) => {
  assert.deepStrictEqual([result.before.name, result.before.email], ["Alice Smith", "alice.smith@example.com"])
  // Every read path shows the redacted value, and nothing fails.
  assert.deepStrictEqual([result.after.name, result.after.email, result.after.country], [
    "[forgotten]",
    "[forgotten]",
    "NL"
  ])
  const [aliceLine, bobLine] = Object.values(result.directory)
  assert.strictEqual(aliceLine, "[forgotten] <[forgotten]>")
  assert.strictEqual(bobLine, "Bob Jones <bob@example.com>")
  assert.deepStrictEqual(
    [(result.outboxPayload as { name: string }).name, (result.outboxPayload as { email: string }).email],
    ["[forgotten]", "[forgotten]"]
  )
  assert.deepStrictEqual(
    [(result.snapshot as { name: string }).name, (result.snapshot as { email: string }).email],
    ["[forgotten]", "[forgotten]"]
  )
  assert.deepStrictEqual(result.audit, { by: "dpo@example.com", reason: "GDPR erasure request #42" })
  assert.deepStrictEqual([result.bob.name, result.bob.email], ["Bob Jones", "bob@example.com"])
  // Archived: no more changes, and left out of the customer feed.
  assert.strictEqual(result.bobAfterClose, "StreamArchived")
  assert.strictEqual(result.feedStreams.length, 1)
  assert.match(result.feedStreams[0]!, /^alice-/)
  assert.strictEqual(result.tombstoned, "StreamDeleted")
}

describe("the forget-a-customer example", () => {
  it.live("runs in memory", () =>
    Effect.map(program(KeyStore.layerMemory), check).pipe(Effect.provide(MemoryEventfold.layer({ outbox: true }))))

  it.live(`runs on PostgreSQL as the application role (${PgTest.serverLabel()})`, () =>
    Effect.map(program(PgKeyStore.layer()), check).pipe(Effect.provide(PgTest.layerEventfold({ outbox: true }))))
})
