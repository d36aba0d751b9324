// The same hostile input on the in-memory store and on PostgreSQL: both refuse it with InvalidInput, or both store it
// and read it back identically. Before the fix PostgreSQL merged lone surrogates into U+FFFD, failed on NUL, deep
// nesting and oversized index keys with a StoreError, and stored NaN as null.
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, layer } from "@effect/vitest"
import { EventStore } from "@eventfold/core"
import { EventStoreInputContract } from "@eventfold/core/testing"
import { PgTest } from "@eventfold/postgres"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

class MemoryStore extends Context.Tag("test/MemoryStore")<MemoryStore, EventStore.EventStore["Type"]>() {}

const runtime = Layer.merge(PgTest.layerEventStore(), Layer.effect(MemoryStore, EventStore.makeMemory))

layer(runtime, { excludeTestServices: true, timeout: "120 seconds" })(
  `Hostile input: memory and PostgreSQL agree (${PgTest.serverLabel()})`,
  (it) => {
    it.effect.prop(
      "the same generated append has the same outcome on both: an identical round trip, or InvalidInput on both",
      { append: EventStoreInputContract.arbitraryAppend },
      ({ append }) =>
        Effect.gen(function*() {
          const memory = yield* EventStoreInputContract.attempt(yield* MemoryStore, append)
          const postgres = yield* EventStoreInputContract.attempt(yield* EventStore.EventStore, append)
          assert.deepStrictEqual(postgres, memory)
        }),
      { timeout: 120_000, fastCheck: EventStoreInputContract.parameters(50) }
    )

    it.effect("acct-\\ud800 and acct-\\udbff never reach PostgreSQL, where both would be stored as acct-\\ufffd", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const streamType = `Account-${crypto.randomUUID()}`
        for (const store of [yield* MemoryStore, yield* EventStore.EventStore]) {
          for (const streamId of ["acct-\ud800", "acct-\udbff"]) {
            const error = yield* Effect.flip(
              store.append({ streamType, streamId, events: [{ type: "Opened", payload: {} }] })
            )
            assert.strictEqual(error._tag, "InvalidInput")
          }
        }
        const rows = yield* sql<{ readonly n: number }>`SELECT count(*)::int AS n FROM eventfold.streams
          WHERE stream_type = ${streamType}`
        assert.strictEqual(rows[0]?.n, 0)
      }))

    it.effect("the six characters \\u0000 are stored in jsonb as those six characters, not as a NUL", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const sql = yield* SqlClient.SqlClient
        const streamType = `Escape-${crypto.randomUUID()}`
        yield* store.append({ streamType, streamId: "e-1", events: [{ type: "T", payload: { text: "\\u0000" } }] })
        const rows = yield* sql<{ readonly text: string }>`SELECT payload ->> 'text' AS text FROM eventfold.events
          WHERE stream_type = ${streamType}`
        assert.strictEqual(rows[0]?.text, "\\u0000")
        assert.strictEqual(rows[0]?.text.length, 6)
      }))
  }
)
