// Against the real NATS JetStream server (NATS_URL, default 127.0.0.1:4222). Without one, every test here is
// reported as skipped, with the reason printed.
import { assert, describe, it } from "@effect/vitest"
import type { OutboxPublisher } from "@eventfold/core"
import { EventStore, Outbox, OutboxRelay } from "@eventfold/core"
import { NatsPublisher } from "@eventfold/outbox-nats"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import { connect, type NatsConnection } from "nats"

const servers = process.env.NATS_URL ?? "127.0.0.1:4222"

const probe = await connect({ servers, timeout: 2_000 }).then(
  async (nc) => {
    const ok = await nc.jetstreamManager().then(() => undefined, (e: unknown) => `JetStream unavailable: ${String(e)}`)
    await nc.close()
    return ok
  },
  (e: unknown) => `cannot connect: ${String(e)}`
)
const available = probe === undefined
if (!available) {
  console.warn(`[outbox-nats] SKIPPED: no NATS JetStream at ${servers} (${probe}). Set NATS_URL to run these tests.`)
}

/** A JetStream stream of its own for one test, deleted afterwards. */
const testStream = Effect.gen(function*() {
  const nc = yield* NatsPublisher.connection(servers)
  const id = crypto.randomUUID().replace(/-/g, "").slice(0, 12)
  const name = `EVENTFOLD_TEST_${id}`
  const subjectPrefix = `eftest_${id}`
  yield* NatsPublisher.ensureStream(nc, { name, subjectPrefix, duplicateWindow: "1 minute" })
  yield* Effect.addFinalizer(() =>
    Effect.promise(() => nc.jetstreamManager().then((jsm) => jsm.streams.delete(name)).catch(() => false))
  )
  return { nc, name, subjectPrefix }
})

const messagesIn = (nc: NatsConnection, name: string) =>
  Effect.promise(async () => {
    const jsm = await nc.jetstreamManager()
    const info = await jsm.streams.info(name)
    const out: Array<{ readonly subject: string; readonly msgId: string | undefined; readonly body: unknown }> = []
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
      const m = await jsm.streams.getMessage(name, { seq })
      out.push({ subject: m.subject, msgId: m.header.get("Nats-Msg-Id") || undefined, body: m.json() })
    }
    return out
  })

describe(`NatsPublisher (${available ? servers : `SKIPPED, no NATS JetStream at ${servers}`})`, () => {
  it.live.skipIf(!available)(
    "publishes with the eventId as message id; a redelivery is deduplicated by JetStream",
    () =>
      Effect.gen(function*() {
        const { name, nc, subjectPrefix } = yield* testStream
        const publisher = yield* NatsPublisher.make({ servers, subjectPrefix })
        const message: OutboxPublisher.OutboxMessage = {
          eventId: crypto.randomUUID(),
          tenantId: "default",
          streamType: "Order Line.v1",
          streamId: "o-1",
          version: 1,
          globalPosition: 42n,
          type: "Added",
          schemaVersion: 1,
          payload: { sku: "x", qty: 2 },
          metadata: { correlationId: "c-1" },
          attempts: 0
        }
        yield* publisher.publish(message)
        yield* publisher.publish({ ...message, attempts: 1 })
        const stored = yield* messagesIn(nc, name)
        assert.strictEqual(stored.length, 1, "the second publish of the same eventId was dropped")
        assert.strictEqual(stored[0]!.msgId, message.eventId)
        assert.strictEqual(stored[0]!.subject, `${subjectPrefix}.Order_Line_v1`)
        assert.deepStrictEqual(stored[0]!.body, {
          eventId: message.eventId,
          streamType: "Order Line.v1",
          streamId: "o-1",
          version: 1,
          globalPosition: "42",
          type: "Added",
          schemaVersion: 1,
          payload: { sku: "x", qty: 2 },
          metadata: { correlationId: "c-1" }
        })
      }).pipe(Effect.scoped),
    30_000
  )

  it.live.skipIf(!available)(
    "publishRun sends one stream's messages in order and stops at the first failure: nothing after it is sent",
    () =>
      Effect.gen(function*() {
        const { name, nc, subjectPrefix } = yield* testStream
        const publisher = yield* NatsPublisher.make({ servers, subjectPrefix })
        const message = (version: number, payload: unknown): OutboxPublisher.OutboxMessage => ({
          eventId: crypto.randomUUID(),
          tenantId: "default",
          streamType: "Order",
          streamId: "o-1",
          version,
          globalPosition: BigInt(version),
          type: "Added",
          schemaVersion: 1,
          payload,
          metadata: {},
          attempts: 0
        })
        // The third message is larger than the server's max_payload: the client refuses it.
        const run = [message(1, { n: 1 }), message(2, { n: 2 }), message(3, "x".repeat(2_000_000)), message(4, {})]
        let proceeds = 0
        const outcome = yield* publisher.publishRun!(run, () => (proceeds++, true))
        assert.strictEqual(outcome.published, 2)
        assert.strictEqual(outcome.failure?.eventId, run[2]!.eventId)
        assert.strictEqual(outcome.seconds.length, 3)
        assert.strictEqual(proceeds, 3, "asked before each message it sent")
        const stored = yield* messagesIn(nc, name)
        assert.deepStrictEqual(stored.map((m) => m.msgId), [run[0]!.eventId, run[1]!.eventId])

        // `proceed` returning false stops the run before that message.
        const more = [message(5, {}), message(6, {}), message(7, {})]
        let allowed = 2
        const stopped = yield* publisher.publishRun!(more, () => allowed-- > 0)
        assert.strictEqual(stopped.published, 2)
        assert.isUndefined(stopped.failure)
        assert.deepStrictEqual(
          (yield* messagesIn(nc, name)).map((m) => m.msgId).slice(2),
          [more[0]!.eventId, more[1]!.eventId]
        )
      }).pipe(Effect.scoped),
    30_000
  )

  it.live.skipIf(!available)(
    "the running relay delivers many streams to JetStream, each in order, once",
    () =>
      Effect.gen(function*() {
        const { name, nc, subjectPrefix } = yield* testStream
        yield* Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const outbox = yield* Outbox.Outbox
          const streams = Array.from({ length: 12 }, (_, s) => `s${s}`)
          for (let round = 0; round < 4; round++) {
            for (const streamId of streams) {
              yield* store.append({
                streamType: "Order",
                streamId,
                events: Array.from({ length: 5 }, (_, i) => ({ type: "Numbered", payload: { round, i } }))
              })
            }
          }
          // Batches of 40 over 240 events: the relay claims more while it publishes, stream by stream.
          const relay = yield* Effect.fork(
            OutboxRelay.run({ batchSize: 40, concurrency: 8, pollInterval: "50 millis" })
          )
          yield* Effect.repeat(outbox.stats, {
            until: (stats) => stats.pending === 0,
            schedule: Schedule.spaced("50 millis")
          }).pipe(Effect.timeout("30 seconds"))
          yield* Fiber.interrupt(relay)
          const stored = yield* messagesIn(nc, name)
          assert.strictEqual(stored.length, 240)
          for (const streamId of streams) {
            const versions = stored
              .map((m) => m.body as { readonly streamId: string; readonly version: number })
              .filter((b) => b.streamId === streamId)
              .map((b) => b.version)
            assert.deepStrictEqual(versions, Array.from({ length: 20 }, (_, i) => i + 1))
          }
        }).pipe(Effect.provide(Layer.mergeAll(
          Outbox.layerMemory,
          NatsPublisher.layer({ servers, subjectPrefix })
        )))
      }).pipe(Effect.scoped),
    60_000
  )

  it.live.skipIf(!available)("the relay delivers an outbox to JetStream in stream order", () =>
    Effect.gen(function*() {
      const { name, nc, subjectPrefix } = yield* testStream
      yield* Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const ids: Array<string> = []
        for (let round = 0; round < 3; round++) {
          for (const streamId of ["a", "b", "c"]) {
            const r = yield* store.append({
              streamType: "Order",
              streamId,
              events: [{ type: "Numbered", payload: { round } }, { type: "Numbered", payload: { round } }]
            })
            ids.push(...r.eventIds)
          }
        }
        while ((yield* OutboxRelay.processBatch({ batchSize: 5 })) > 0) {
          // drain
        }
        const stored = yield* messagesIn(nc, name)
        assert.sameMembers(stored.map((m) => m.msgId), ids)
        for (const streamId of ["a", "b", "c"]) {
          const versions = stored
            .map((m) => m.body as { readonly streamId: string; readonly version: number })
            .filter((b) => b.streamId === streamId)
            .map((b) => b.version)
          assert.deepStrictEqual(versions, [1, 2, 3, 4, 5, 6])
        }
        assert.strictEqual(stored[0]!.subject, `${subjectPrefix}.Order`)
      }).pipe(Effect.provide(Layer.mergeAll(
        Outbox.layerMemory,
        NatsPublisher.layer({ servers, subjectPrefix })
      )))
    }).pipe(Effect.scoped), 30_000)
})
