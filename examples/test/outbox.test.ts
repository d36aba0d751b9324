// The NATS part talks to the JetStream server at NATS_URL (default nats://127.0.0.1:4222); without one it is
// reported as skipped, with the reason printed.
import { assert, describe, it } from "@effect/vitest"
import { MemoryEventfold } from "@eventfold/core"
import type { PgEventfold } from "@eventfold/postgres"
import { PgTest } from "@eventfold/postgres"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { probeNats, program, type RelayResult, toNats } from "../src/outbox.js"

const servers = process.env.NATS_URL ?? "nats://127.0.0.1:4222"
const probe = await Effect.runPromise(probeNats(servers))
const available = Either.isRight(probe)
if (Either.isLeft(probe)) {
  console.warn(`[examples/outbox] SKIPPED the NATS part: no NATS JetStream at ${servers} (${probe.left}).`)
}

const check = (result: RelayResult) => {
  assert.strictEqual(result.pendingBefore, 5)
  assert.strictEqual(result.pendingAfter, 0)
  const streams = Object.keys(result.appended)
  assert.strictEqual(streams.length, 3)
  assert.deepStrictEqual(Object.keys(result.delivered), streams)
  const [a, b, c] = streams as [string, string, string]
  // Each stream's events reach the broker once, in version order, with the ids the commands returned.
  for (
    const [stream, types] of [[a, ["OrderCreated", "OrderShipped"]], [b, ["OrderCreated", "OrderShipped"]], [
      c,
      ["OrderCreated"]
    ]] as const
  ) {
    const delivered = result.delivered[stream]!
    assert.deepStrictEqual(delivered.map((m) => m.type), [...types])
    assert.deepStrictEqual(delivered.map((m) => m.version), types.map((_, i) => i + 1))
    assert.deepStrictEqual(delivered.map((m) => m.eventId), result.appended[stream])
  }
}

const onPostgres = <A, E>(effect: Effect.Effect<A, E, PgEventfold.Services>) =>
  Effect.provide(effect, PgTest.layerEventfold({ outbox: true }))

describe("the outbox example", () => {
  it.live("relays to the in-memory publisher, in memory", () =>
    Effect.map(program, check).pipe(Effect.provide(MemoryEventfold.layer({ outbox: true }))))

  it.live(`relays to the in-memory publisher, on PostgreSQL (${PgTest.serverLabel()})`, () =>
    Effect.map(onPostgres(program), check))

  describe(`through NATS JetStream (${available ? servers : `SKIPPED, no NATS JetStream at ${servers}`})`, () => {
    it.live.skipIf(!available)(
      "relays in memory",
      () => Effect.map(toNats(servers), check).pipe(Effect.provide(MemoryEventfold.layer({ outbox: true })))
    )

    it.live.skipIf(!available)(
      `relays on PostgreSQL (${PgTest.serverLabel()})`,
      () => Effect.map(onPostgres(toNats(servers)), check)
    )
  })
})
