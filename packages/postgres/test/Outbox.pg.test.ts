// The PostgreSQL outbox and the relay on it: the shared contract, transactional writes, SKIP LOCKED claims held
// open by another transaction, two relays at once, and a relay process killed with SIGKILL mid-batch.
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import { EventStore, Outbox, OutboxPublisher, OutboxRelay } from "@eventfold/core"
import { OutboxContract } from "@eventfold/core/testing"
import { PgDatabase, PgEventStore, PgMigrations, PgOutbox, PgTest } from "@eventfold/postgres"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Random from "effect/Random"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import { type ChildProcess, spawn } from "node:child_process"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const outboxLayer = () =>
  PgEventStore.layer({ outbox: true }).pipe(
    Layer.provideMerge(PgOutbox.layer()),
    Layer.provide(PgMigrations.layer()),
    Layer.provideMerge(PgTest.layerClient())
  )

// The transactions that updated the outbox (claims, marks, renewals, releases), counted by a statement trigger that
// records each one's id: the suite checks the relay commits once per batch.
const outboxTransactions = Layer.effect(
  OutboxContract.OutboxTransactions,
  Effect.gen(function*() {
    const admin = yield* PgTest.Admin
    yield* admin.unsafe("CREATE TABLE public.outbox_writes (xid xid8 NOT NULL)")
    yield* admin.unsafe(`CREATE FUNCTION public.record_outbox_write() RETURNS trigger LANGUAGE plpgsql
      SECURITY DEFINER SET search_path = pg_catalog AS $$
      BEGIN INSERT INTO public.outbox_writes VALUES (pg_current_xact_id()); RETURN NULL; END $$`)
    yield* admin.unsafe(`CREATE TRIGGER record_outbox_writes AFTER UPDATE ON eventfold.outbox
      FOR EACH STATEMENT EXECUTE FUNCTION public.record_outbox_write()`)
    return {
      count: admin<{ n: number }>`SELECT count(DISTINCT xid)::int AS n FROM public.outbox_writes`.pipe(
        Effect.map((rows) => rows[0]!.n),
        Effect.orDie
      )
    }
  }).pipe(Effect.orDie)
)

OutboxContract.suite(
  `PostgreSQL (${PgTest.serverLabel()})`,
  outboxTransactions.pipe(Layer.provideMerge(outboxLayer()))
)

const appendN = (streamType: string, streamId: string, count: number) =>
  Effect.flatMap(EventStore.EventStore, (store) =>
    store.append({
      streamType,
      streamId,
      events: Array.from({ length: count }, (_, i) => ({ type: "Numbered", payload: { i: i + 1 } }))
    }))

const outboxCount = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) => Effect.map(sql<{ c: number }>`SELECT count(*)::int AS c FROM eventfold.outbox`, (rows) => rows[0]!.c)
)

const waitUntil = <E, R>(check: Effect.Effect<boolean, E, R>, what: string, timeout: Duration.DurationInput) =>
  check.pipe(
    Effect.filterOrFail((ok) => ok, () => `not yet: ${what}`),
    Effect.retry({ schedule: Schedule.spaced("50 millis"), while: (e) => typeof e === "string" }),
    Effect.timeoutFail({ duration: timeout, onTimeout: () => `timed out waiting for ${what}` })
  )

/** Waits until a session of the database (the relay's) has run its LISTEN. */
const relayListens = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  waitUntil(
    Effect.map(
      sql<{ c: number }>`SELECT count(*)::int AS c FROM pg_stat_activity
        WHERE datname = current_database() AND query LIKE 'LISTEN%'`,
      (rows) => rows[0]!.c > 0
    ),
    "the relay to LISTEN",
    "15 seconds"
  ))

describe(`PgOutbox (${PgTest.serverLabel()})`, () => {
  it.live("an append rolled back with its surrounding transaction leaves no outbox rows", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const outcome = yield* sql.withTransaction(
        Effect.zipRight(appendN("Order", "rolled-back", 3), Effect.fail("abort" as const))
      ).pipe(Effect.either)
      assert.deepStrictEqual(outcome, Either.left("abort"))
      assert.strictEqual(yield* outboxCount, 0)
      yield* appendN("Order", "kept", 2)
      assert.strictEqual(yield* outboxCount, 2)
    }).pipe(Effect.provide(outboxLayer())), 60_000)

  it.live("without an Outbox in context, appends write no outbox rows", () =>
    Effect.gen(function*() {
      yield* appendN("Order", "plain", 2)
      assert.strictEqual(yield* outboxCount, 0)
    }).pipe(Effect.provide(PgTest.layerEventStore())), 60_000)

  it.live(
    "a stream whose head row another transaction holds locked is skipped whole; other streams are claimed",
    () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const outbox = yield* Outbox.Outbox
        yield* appendN("Order", "locked", 3)
        yield* appendN("Order", "free", 2)
        yield* Effect.scoped(Effect.gen(function*() {
          // Another relay in the middle of its claim: its transaction has the head row of "locked" locked.
          const conn = yield* sql.reserve
          yield* conn.executeRaw("BEGIN", [])
          yield* conn.executeRaw(
            "SELECT id FROM eventfold.outbox WHERE stream_id = 'locked' AND version = 1 FOR UPDATE",
            []
          )
          const claimed = yield* outbox.claim({ relayId: "r2", limit: 10, lease: "1 minute" })
          // Without the head, none of the stream's later rows may be taken either.
          assert.deepStrictEqual(claimed.map((e) => `${e.streamId}${e.version}`), ["free1", "free2"])
          yield* conn.executeRaw("ROLLBACK", [])
        }))
        const after = yield* outbox.claim({ relayId: "r3", limit: 10, lease: "1 minute" })
        assert.deepStrictEqual(after.map((e) => `${e.streamId}${e.version}`), ["locked1", "locked2", "locked3"])
      }).pipe(Effect.provide(outboxLayer())),
    60_000
  )

  it.live(
    "a claim finds every stream's head (skip scan), fills the batch with per-stream prefixes, skips blocked streams",
    () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const outbox = yield* Outbox.Outbox
        yield* appendN("Order", "deep", 50)
        yield* appendN("Order", "one-a", 1)
        yield* appendN("Invoice", "one-b", 1)
        yield* appendN("Order", "dead", 3)
        yield* appendN("Order", "half", 4)
        // A dead letter at the head of "dead" blocks its stream; "half" has a published prefix.
        yield* sql`UPDATE eventfold.outbox SET status = 'failed' WHERE stream_id = 'dead' AND version = 1`
        yield* sql`UPDATE eventfold.outbox SET status = 'published', published_at = now()
          WHERE stream_id = 'half' AND version <= 2`
        const claimed = yield* outbox.claim({ relayId: "r", limit: 20, lease: "1 minute" })
        assert.strictEqual(claimed.length, 20, "the batch is filled from the deep stream")
        const positions = claimed.map((e) => e.globalPosition)
        assert.deepStrictEqual(positions, [...positions].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)))
        const versions = (streamId: string) => claimed.filter((e) => e.streamId === streamId).map((e) => e.version)
        assert.deepStrictEqual(versions("one-a"), [1])
        assert.deepStrictEqual(versions("one-b"), [1])
        assert.deepStrictEqual(versions("half"), [3, 4])
        assert.deepStrictEqual(versions("dead"), [])
        assert.deepStrictEqual(versions("deep"), Array.from({ length: 16 }, (_, i) => i + 1))
        // The rest of "deep" waits behind rows this relay holds: another relay gets nothing.
        assert.deepStrictEqual(yield* outbox.claim({ relayId: "other", limit: 20, lease: "1 minute" }), [])
        // The holder itself continues only after marking: its next claim starts at the new head.
        assert.strictEqual(yield* outbox.markPublished("r", claimed.map((e) => e.id)), 20)
        const next = yield* outbox.claim({ relayId: "other", limit: 100, lease: "1 minute" })
        assert.deepStrictEqual(next.map((e) => e.version), Array.from({ length: 34 }, (_, i) => i + 17))
      }).pipe(Effect.provide(outboxLayer())),
    60_000
  )

  it.live("the relay wakes on the append's NOTIFY, long before its poll interval", () =>
    Effect.gen(function*() {
      const memory = yield* OutboxPublisher.Memory
      yield* Effect.forkScoped(OutboxRelay.run({ pollInterval: "10 minutes" }))
      // The relay listens (a hint sent before would be lost), and has had time to finish its first, empty, batch.
      yield* relayListens
      yield* Effect.sleep("500 millis")
      const { eventIds } = yield* appendN("Order", "woken", 1)
      yield* waitUntil(Effect.map(memory.published, (all) => all.length === 1), "the woken relay", "15 seconds")
      assert.deepStrictEqual((yield* memory.published).map((m) => m.eventId), eventIds)
    }).pipe(Effect.scoped, Effect.provide(Layer.merge(outboxLayer(), OutboxPublisher.layerMemory))), 60_000)

  it.live("the relay keeps publishing by polling after its LISTEN connection is killed", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const memory = yield* OutboxPublisher.Memory
      yield* Effect.forkScoped(OutboxRelay.run({ pollInterval: "300 millis" }))
      yield* relayListens
      const killed = yield* sql<{ ok: boolean }>`SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
        WHERE datname = current_database() AND query LIKE 'LISTEN%'`
      assert.isTrue(killed.length > 0 && killed.every((r) => r.ok))
      const { eventIds } = yield* appendN("Order", "polled", 2)
      yield* waitUntil(Effect.map(memory.published, (all) => all.length === 2), "the polling relay", "15 seconds")
      assert.deepStrictEqual((yield* memory.published).map((m) => m.eventId), eventIds)
    }).pipe(Effect.scoped, Effect.provide(Layer.merge(outboxLayer(), OutboxPublisher.layerMemory))), 60_000)

  it.live("two relays at once: every event is published and each stream's order is kept", () =>
    Effect.gen(function*() {
      const streams = 12
      const perStream = 25
      for (let round = 0; round < perStream; round += 5) {
        yield* Effect.forEach(
          Array.from({ length: streams }, (_, s) => s),
          (s) => appendN("Order", `s${s}`, 5),
          { concurrency: 4, discard: true }
        )
      }
      // One shared log, pushed to at the moment of publishing, so it is the true publish order across both relays.
      const log: Array<{ readonly relay: string; readonly streamId: string; readonly version: number }> = []
      const publisher = (relay: string): OutboxPublisher.OutboxPublisher["Type"] => ({
        publish: (message) =>
          Effect.flatMap(Random.nextIntBetween(0, 3), (ms) => Effect.sleep(Duration.millis(ms))).pipe(
            Effect.zipRight(
              Effect.sync(() => log.push({ relay, streamId: message.streamId, version: message.version }))
            )
          )
      })
      const relay = (relayId: string, batchSize: number) =>
        OutboxRelay.run({ relayId, batchSize, pollInterval: "20 millis", concurrency: 4 }).pipe(
          Effect.provideService(OutboxPublisher.OutboxPublisher, publisher(relayId)),
          Effect.fork
        )
      const a = yield* relay("a", 7)
      const b = yield* relay("b", 11)
      const outbox = yield* Outbox.Outbox
      yield* waitUntil(Effect.map(outbox.stats, (s) => s.pending === 0), "outbox drained", "60 seconds")
      yield* Fiber.interrupt(a)
      yield* Fiber.interrupt(b)

      for (let s = 0; s < streams; s++) {
        const versions = log.filter((e) => e.streamId === `s${s}`).map((e) => e.version)
        // At least once, and never a later version before an earlier one was published.
        let highest = 0
        for (const v of versions) {
          assert.isAtMost(v, highest + 1, `stream s${s} published ${v} after only ${highest}: ${versions.join(",")}`)
          highest = Math.max(highest, v)
        }
        assert.strictEqual(highest, perStream)
      }
      assert.isAbove(log.filter((e) => e.relay === "a").length, 0, "relay a published")
      assert.isAbove(log.filter((e) => e.relay === "b").length, 0, "relay b published")
    }).pipe(Effect.provide(outboxLayer())), 90_000)
})

const fixture = fileURLToPath(new URL("./fixtures/outboxRelayChild.ts", import.meta.url))
const repoRoot = path.resolve(path.dirname(fixture), "../../../..")

interface Relay {
  readonly child: ChildProcess
  /** Resolves when the child prints "paused" (inside its PAUSE_AFTER-th publish). */
  readonly paused: Promise<void>
}

const spawnRelay = (url: string, relayId: string, pauseAfter: number): Effect.Effect<Relay, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync((): Relay => {
      const child = spawn(process.execPath, ["--import", "tsx", fixture], {
        cwd: repoRoot,
        stdio: ["ignore", "pipe", "inherit"],
        env: {
          ...process.env,
          DATABASE_URL: url,
          RELAY_ID: relayId,
          LEASE_MS: "1500",
          BATCH_SIZE: "40",
          PAUSE_AFTER: String(pauseAfter)
        }
      })
      const paused = new Promise<void>((resolve) => {
        let out = ""
        child.stdout!.on("data", (chunk: Buffer) => {
          out += chunk.toString("utf8")
          if (out.includes("paused")) resolve()
        })
      })
      return { child, paused }
    }),
    ({ child }) =>
      Effect.async<void>((resume) => {
        if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
        child.once("exit", () => resume(Effect.void))
        child.kill("SIGKILL")
      })
  )

const killed = (child: ChildProcess) =>
  Effect.async<NodeJS.Signals | null>((resume) => {
    child.once("exit", (_code, signal) => resume(Effect.succeed(signal)))
    child.kill("SIGKILL")
  })

describe(`OutboxRelay process crash (${PgTest.serverLabel()})`, () => {
  it.live(
    "a relay process SIGKILLed mid-batch and restarted publishes every event at least once",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const { adminUrl, url } = yield* PgTest.freshDatabase()
        // The publisher's table belongs to the application's owner; the relays write it as the least-privilege role.
        yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
          sql`CREATE TABLE relay_published (
          seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          event_id uuid NOT NULL,
          stream_id text NOT NULL,
          version integer NOT NULL,
          relay_id text NOT NULL
        )`).pipe(Effect.provide(PgDatabase.layer({ url: adminUrl, maxConnections: 1 })))
        yield* Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const store = yield* EventStore.EventStore
          const streams = 8
          const perStream = 40
          const eventIds: Array<string> = []
          for (let s = 0; s < streams; s++) {
            const result = yield* store.append({
              streamType: "Order",
              streamId: `s${s}`,
              events: Array.from({ length: perStream }, (_, i) => ({ type: "Numbered", payload: { i } }))
            })
            eventIds.push(...result.eventIds)
          }
          const publishedCount = Effect.map(
            sql<{ c: number }>`SELECT count(*)::int AS c FROM relay_published`,
            (rows) => rows[0]!.c
          )

          const first = yield* spawnRelay(url, "first", 60)
          yield* Effect.promise(() => first.paused).pipe(
            Effect.timeoutFail({ duration: "60 seconds", onTimeout: () => "the first relay never reached publish 60" })
          )
          const signal = yield* killed(first.child)
          assert.strictEqual(signal, "SIGKILL")
          const atKill = yield* publishedCount
          assert.isBelow(atKill, streams * perStream, "killed before it finished")
          // Mid-batch: rows the dead relay published are still pending under its claim, and must go out again.
          const inFlight = yield* sql<{ c: number }>`SELECT count(*)::int AS c FROM eventfold.outbox o
          WHERE o.status = 'pending' AND o.claimed_by = 'first'
            AND EXISTS (SELECT 1 FROM relay_published p WHERE p.event_id = o.event_id)`
          assert.isAbove(inFlight[0]!.c, 0, "the kill landed between publishing and marking")

          yield* spawnRelay(url, "second", 0)
          yield* waitUntil(
            Effect.map(
              sql<{ c: number }>`SELECT count(*)::int AS c FROM eventfold.outbox WHERE status <> 'published'`,
              (rows) => rows[0]!.c === 0
            ),
            "the second relay to drain the outbox",
            "60 seconds"
          )

          const rows = yield* sql<{ event_id: string; stream_id: string; version: number }>`
          SELECT event_id::text, stream_id, version FROM relay_published ORDER BY seq`
          const seen = new Set(rows.map((r) => r.event_id))
          assert.strictEqual(eventIds.filter((id) => !seen.has(id)).length, 0, "no event lost")
          assert.isAbove(rows.length, eventIds.length - 1)
          for (let s = 0; s < streams; s++) {
            let highest = 0
            for (const r of rows.filter((r) => r.stream_id === `s${s}`)) {
              assert.isAtMost(r.version, highest + 1, `stream s${s} out of order`)
              highest = Math.max(highest, r.version)
            }
            assert.strictEqual(highest, perStream)
          }
        }).pipe(
          Effect.provide(
            PgEventStore.layer({ outbox: true }).pipe(
              Layer.provideMerge(PgOutbox.layer()),
              Layer.provide(PgMigrations.layer()),
              Layer.provideMerge(PgDatabase.layer({ url, maxConnections: 6 }))
            )
          )
        )
      })),
    120_000
  )
})
