// Every `eventfold` command against a populated PostgreSQL database, run in-process through `Cli.run` with the console
// captured: the printed tables, the --json output and the exit codes. The store is populated with the library's own
// stack (PgEventfold): streams in two tenants, snapshots, a subscription with a dead letter, one stopped on a failing
// event, a projection that keeps running (for the rebuild), and outbox rows with a failure.
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, layer } from "@effect/vitest"
import { CheckpointStore, EventStore, Outbox, SnapshotStore, Subscription } from "@eventfold/core"
import { PgDatabase, type PgEventfold, PgProjection, PgTest } from "@eventfold/postgres"
import * as ConfigProvider from "effect/ConfigProvider"
import type * as Console from "effect/Console"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import type * as Admin from "../src/Admin.js"
import * as Cli from "../src/Cli.js"

interface Captured {
  readonly code: number
  readonly out: string
  readonly err: string
}

/** Runs a command line in-process against `url`, with stdout and stderr captured. */
const runCli = (url: string, args: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const out: Array<string> = []
    const err: Array<string> = []
    const base = yield* Effect.console
    const line = (sink: Array<string>) => (...args: ReadonlyArray<unknown>) => sink.push(args.map(String).join(" "))
    const console: Console.Console = {
      ...base,
      log: (...args) => Effect.sync(() => line(out)(...args)),
      info: (...args) => Effect.sync(() => line(out)(...args)),
      error: (...args) => Effect.sync(() => line(err)(...args)),
      warn: (...args) => Effect.sync(() => line(err)(...args)),
      unsafe: { ...base.unsafe, log: line(out), info: line(out), error: line(err), warn: line(err) }
    }
    const code = yield* Cli.run(args).pipe(
      Effect.withConsole(console),
      Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["DATABASE_URL", url]]))),
      Effect.provide(NodeContext.layer)
    )
    return { code, out: out.join("\n"), err: err.join("\n") } satisfies Captured
  })

const parse = <A>(captured: Captured): A => JSON.parse(captured.out) as A
const lines = <A>(captured: Captured): Array<A> =>
  captured.out.split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l) as A)

/** The populated store: its database, and what the tests look for. */
class Fixture extends Context.Tag("test/Fixture")<Fixture, {
  readonly url: string
  readonly appUrl: string
  readonly eventCount: number
  readonly cancelledEventId: string
  readonly stack: Layer.Layer<PgEventfold.Services, unknown>
  readonly append: (streamId: string) => Effect.Effect<EventStore.AppendResult, unknown>
}>() {}

const populate = Effect.gen(function*() {
  const db = yield* PgTest.freshDatabase()
  yield* PgTest.asAdmin(
    Effect.flatMap(
      SqlClient.SqlClient,
      (sql) => sql`CREATE TABLE public.order_view (event_id uuid PRIMARY KEY, stream_id text NOT NULL)`
    )
  ).pipe(Effect.provide(PgTest.layerAdmin(db)))
  const stack = yield* Layer.memoize(PgTest.eventfold(db, { outbox: true }))
  const fixture = yield* Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const snapshots = yield* SnapshotStore.SnapshotStore
    const sql = yield* SqlClient.SqlClient
    const outbox = yield* Outbox.Outbox
    yield* store.append({
      streamType: "Order",
      streamId: "o-1",
      events: [
        { type: "OrderPlaced", payload: { orderId: "o-1", note: "<script>alert(1)</script>" } },
        { type: "OrderPaid", payload: { amount: 42 }, metadata: { actorId: "alice", correlationId: "c-42" } },
        { type: "OrderShipped", payload: { carrier: "post" } }
      ]
    })
    const cancelled = yield* store.append({
      streamType: "Order",
      streamId: "o-2",
      events: [{ type: "OrderPlaced", payload: { orderId: "o-2" } }, { type: "OrderCancelled", payload: {} }]
    })
    yield* store.append({
      streamType: "Customer",
      streamId: "c-1",
      tenantId: "acme",
      events: [{ type: "CustomerRegistered", payload: { name: "Ada" } }]
    })
    for (const tenantId of ["acme", "globex"]) {
      yield* store.append({
        streamType: "Invoice",
        streamId: "i-1",
        tenantId,
        events: [{ type: "InvoiceIssued", payload: { tenantId } }]
      })
    }
    const last = yield* store.append({
      streamType: "Order",
      streamId: "o-3",
      events: [{ type: "OrderPlaced", payload: { orderId: "o-3" } }]
    })
    yield* snapshots.save({ streamType: "Order", streamId: "o-1", version: 2, schemaVersion: 1, state: { paid: true } })
    yield* snapshots.save({ streamType: "Order", streamId: "o-2", version: 1, schemaVersion: 1, state: {} })

    const failOnCancel = (event: { readonly type: string }) =>
      event.type === "OrderCancelled" ? Effect.fail("card declined") : Effect.void
    // billing parks the failing event and goes on.
    const billing = yield* Subscription.make({
      id: "billing",
      pollInterval: "50 millis",
      handler: failOnCancel,
      errorPolicy: { retry: Schedule.recurs(0), onExhausted: "park" }
    })
    const billingRun = yield* Effect.fork(billing.run)
    yield* billing.waitFor(last)
    yield* Fiber.interrupt(billingRun)
    // shipping stops on it (the default policy), with its checkpoint just before it.
    const shipping = yield* Subscription.make({
      id: "shipping",
      pollInterval: "50 millis",
      handler: failOnCancel,
      errorPolicy: { retry: Schedule.recurs(0), onExhausted: "stop" }
    })
    const stopped = yield* Effect.either(shipping.run)
    assert.isTrue(stopped._tag === "Left" && stopped.left._tag === "SubscriptionStopped")
    // orders-view keeps running for the whole file: the rebuild test resets it.
    const view = yield* PgProjection.make({
      id: "orders-view",
      pollInterval: "50 millis",
      lease: "2 seconds",
      handler: (event) =>
        sql`INSERT INTO public.order_view (event_id, stream_id) VALUES (${event.eventId}::uuid, ${event.streamId})`
    })
    yield* Effect.forkScoped(view.run)
    yield* view.waitFor(last)

    // The outbox: the first row failed for good, the rows of other streams published, the rest pending.
    const claimed = yield* outbox.claim({ relayId: "test-relay", limit: 100, lease: "1 minute" })
    const failed = claimed[0]!
    yield* outbox.recordFailure("test-relay", failed.id, "broker unavailable", Option.none())
    const others = claimed.filter((e) => e.streamId !== failed.streamId || e.streamType !== failed.streamType)
    yield* outbox.markPublished("test-relay", others.map((e) => e.id))
    yield* outbox.release("test-relay", claimed.filter((e) => e !== failed && !others.includes(e)).map((e) => e.id))

    return {
      url: db.adminUrl,
      appUrl: db.url,
      eventCount: 9,
      cancelledEventId: cancelled.eventIds[1]!,
      stack,
      append: (streamId: string) =>
        store.append({ streamType: "Order", streamId, events: [{ type: "OrderPlaced", payload: { streamId } }] })
    }
  }).pipe(Effect.provide(stack))
  return fixture
})

const FixtureLive = Layer.scoped(Fixture, populate)

const cli = (args: ReadonlyArray<string>) => Effect.flatMap(Fixture, (f) => runCli(f.url, args))

layer(FixtureLive, { excludeTestServices: true, timeout: "120 seconds" })(
  `eventfold CLI (${PgTest.serverLabel()})`,
  (it) => {
    describe("status", () => {
      it.effect("prints the store's health and exits 2 on the problems it finds", () =>
        Effect.gen(function*() {
          const result = yield* cli(["status"])
          assert.strictEqual(result.code, 2, result.err)
          assert.match(result.out, /^server: +PostgreSQL \d+\.\d+.*, database eventfold_test_\w+, user \w+$/m)
          assert.match(result.out, /^schema: +eventfold$/m)
          assert.match(result.out, /^migrations: +\d+ applied \(latest \d{4}_\w+\), 0 pending$/m)
          assert.match(result.out, /^events: +9$/m)
          assert.match(result.out, /^streams: +6$/m)
          assert.match(result.out, /SUBSCRIPTION +TENANT +POSITION +LAG +STATUS +OWNER +UPDATED +DEAD LETTERS/)
          assert.match(result.out, /^ +billing +\* +\d+:\d+ +0 +active +- .* 1$/m)
          assert.match(result.out, /^ +shipping +\* +\d+:\d+ +\d+ +failed +- .* 0$/m)
          assert.match(result.out, /^ +orders-view +\* .* active +\S+ .* 0$/m)
          assert.match(result.out, /failed: +1$/m)
          assert.match(result.out, /last error: +broker unavailable$/m)
          assert.match(result.out, /Problems \(3\)/)
          assert.match(result.out, /! billing: 1 dead letter\(s\)/)
          assert.match(result.out, /! shipping: stopped on a failing event/)
          assert.match(result.out, /! outbox: 1 failed row\(s\), last error: broker unavailable/)
        }))

      it.effect("--json prints the same as JSON, and --max-lag counts lag as a problem", () =>
        Effect.gen(function*() {
          const f = yield* Fixture
          const result = yield* cli(["status", "--json", "--max-lag", "0"])
          assert.strictEqual(result.code, 2)
          const status = parse<Admin.Status>(result)
          assert.strictEqual(status.schema, "eventfold")
          assert.strictEqual(status.events, String(f.eventCount))
          assert.strictEqual(status.migrations.pending.length, 0)
          assert.isTrue(status.migrations.tracked)
          assert.match(status.head?.transactionId ?? "", /^\d+$/)
          const byName = Object.fromEntries(status.subscriptions.map((s) => [s.subscription, s]))
          assert.deepStrictEqual(Object.keys(byName).sort(), ["billing", "orders-view", "shipping"])
          assert.strictEqual(byName.billing.deadLetters, 1)
          assert.strictEqual(byName["orders-view"].lag, "0")
          assert.isTrue(byName["orders-view"].running)
          assert.isTrue(Number(byName.shipping.lag) > 0)
          assert.deepStrictEqual(status.outbox?.failed, 1)
          assert.deepStrictEqual(
            status.problems.map((p) => p.kind).sort(),
            ["dead-letters", "lag", "outbox", "subscription"]
          )
        }))
    })

    describe("streams", () => {
      it.effect("list prints a table, filtered by type, tenant and prefix", () =>
        Effect.gen(function*() {
          const all = yield* cli(["streams", "list"])
          assert.strictEqual(all.code, 0, all.err)
          const rows = all.out.split("\n")
          assert.match(rows[0]!, /^TENANT +TYPE +ID +VERSION +STATE +UPDATED$/)
          assert.strictEqual(rows.length, 2 + 6)
          assert.match(all.out, /^acme +Customer +c-1 +1 +active/m)
          assert.match(all.out, /^default +Order +o-1 +3 +active/m)

          const orders = yield* cli(["streams", "list", "--type", "Order", "--json"])
          assert.deepStrictEqual(parse<Admin.StreamsPage>(orders).streams.map((s) => s.streamId), ["o-1", "o-2", "o-3"])
          const acme = yield* cli(["streams", "list", "--tenant", "acme", "--json"])
          assert.deepStrictEqual(parse<Admin.StreamsPage>(acme).streams.map((s) => `${s.streamType}/${s.streamId}`), [
            "Customer/c-1",
            "Invoice/i-1"
          ])
          const prefixed = yield* cli(["streams", "list", "--prefix", "i-", "--json"])
          assert.deepStrictEqual(parse<Admin.StreamsPage>(prefixed).streams.map((s) => s.tenantId), ["acme", "globex"])
          const page = yield* cli(["streams", "list", "--limit", "2"])
          assert.match(page.out, /\(more streams: raise --limit or narrow the filter\)$/)
          const pageJson = parse<Admin.StreamsPage>(yield* cli(["streams", "list", "--limit", "2", "--json"]))
          assert.deepStrictEqual(pageJson.next, { tenantId: "acme", streamType: "Invoice", streamId: "i-1" })
        }))

      it.effect("show prints the stream, its snapshot and its events; payloads are text", () =>
        Effect.gen(function*() {
          const result = yield* cli(["streams", "show", "Order", "o-1"])
          assert.strictEqual(result.code, 0, result.err)
          assert.match(result.out, /^stream: +Order\/o-1 \(tenant default\)$/m)
          assert.match(result.out, /^state: +active$/m)
          assert.match(result.out, /^snapshot: +version 2 \(state schema 1\)/m)
          assert.match(result.out, /^#1 +OrderPlaced +\(schema 1\) +position \d+:\d+ /m)
          assert.match(result.out, /^  payload: +\{.*"note":"<script>alert\(1\)<\/script>".*\}$/m)
          assert.match(result.out, /metadata: .*"actorId":"alice"/)
          assert.match(result.out, /^#3 +OrderShipped/m)

          const back = yield* cli(["streams", "show", "Order", "o-1", "--backward", "--limit", "1"])
          assert.match(back.out, /^#3 +OrderShipped/m)
          assert.notMatch(back.out, /^#2 /m)
          assert.match(back.out, /\(more events: --from 2 --backward\)$/)

          const json = parse<Admin.StreamDetail>(
            yield* cli(["streams", "show", "Order", "o-1", "--from", "2", "--json"])
          )
          assert.deepStrictEqual(json.events.map((e) => [e.version, e.type]), [[2, "OrderPaid"], [
            3,
            "OrderShipped"
          ]])
          assert.deepStrictEqual(json.events[0].payload, { amount: 42 })
          assert.strictEqual(json.events[0].metadata.correlationId, "c-42")
          assert.strictEqual(json.snapshot?.version, 2)
          assert.strictEqual(json.nextVersion, null)
        }))

      it.effect("show fails (exit 1) on a missing stream, and asks for the tenant when the id is in several", () =>
        Effect.gen(function*() {
          const missing = yield* cli(["streams", "show", "Order", "nope"])
          assert.strictEqual(missing.code, 1)
          assert.match(missing.err, /^error: Stream Order\/nope not found$/)
          const ambiguous = yield* cli(["streams", "show", "Invoice", "i-1"])
          assert.strictEqual(ambiguous.code, 1)
          assert.match(ambiguous.err, /exists in 2 tenants \("acme", "globex"\): name the tenant/)
          const globex = parse<Admin.StreamDetail>(
            yield* cli(["streams", "show", "Invoice", "i-1", "--tenant", "globex", "--json"])
          )
          assert.deepStrictEqual(globex.events[0].payload, { tenantId: "globex" })
          const badLimit = yield* cli(["streams", "show", "Order", "o-1", "--limit", "0"])
          assert.strictEqual(badLimit.code, 1)
          assert.match(badLimit.err, /limit must be an integer from 1 to 10000, got 0/)
        }))

      it.effect("tail prints the last events of the feed, oldest first", () =>
        Effect.gen(function*() {
          const result = yield* cli(["streams", "tail", "--limit", "3"])
          assert.strictEqual(result.code, 0, result.err)
          const printed = result.out.split("\n")
          assert.strictEqual(printed.length, 3)
          assert.match(printed[0]!, /acme +Invoice\/i-1 +v1 +InvoiceIssued/)
          assert.match(printed[2]!, /default +Order\/o-3 +v1 +OrderPlaced +\{"orderId":"o-3"\}$/)
          const json = lines<Admin.Event>(
            yield* cli(["streams", "tail", "--limit", "2", "--json", "--type", "Invoice"])
          )
          assert.deepStrictEqual(json.map((e) => e.tenantId), ["acme", "globex"])
          const after = lines<Admin.Event>(
            yield* cli([
              "streams",
              "tail",
              "--json",
              "--after",
              json[0].position.transactionId + ":" + json[0].position.globalPosition
            ])
          )
          assert.isTrue(after.length >= 2)
          assert.deepStrictEqual(after[0].tenantId, "globex")
          const bad = yield* cli(["streams", "tail", "--after", "12"])
          assert.strictEqual(bad.code, 1)
          assert.match(bad.err, /a feed position is "transactionId:globalPosition"/)
        }))

      it.effect("tail --follow prints events appended while it runs", () =>
        Effect.gen(function*() {
          const f = yield* Fixture
          const out: Array<string> = []
          const base = yield* Effect.console
          const console: Console.Console = {
            ...base,
            log: (...args) => Effect.sync(() => out.push(args.map(String).join(" "))),
            unsafe: { ...base.unsafe, log: (...args) => out.push(args.map(String).join(" ")) }
          }
          const owner = PgDatabase.layer({ url: f.url, maxConnections: 1 })
          const listeners = Effect.flatMap(
            SqlClient.SqlClient,
            (sql) =>
              sql<{ readonly n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity
                WHERE datname = current_database() AND query ILIKE 'LISTEN%'`
          ).pipe(Effect.map((rows) => rows[0]!.n), Effect.provide(owner))
          const hint = Effect.flatMap(SqlClient.SqlClient, (sql) => sql`SELECT pg_notify('eventfold_events', '1')`)
            .pipe(
              Effect.provide(owner),
              Effect.orDie
            )
          const before = yield* listeners
          // Ten minutes between reads at most: only the append's hint can bring its event within the test.
          const follower = yield* Cli.run([
            "streams",
            "tail",
            "--follow",
            "--json",
            "--limit",
            "1",
            "--interval",
            "600000"
          ])
            .pipe(
              Effect.withConsole(console),
              Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["DATABASE_URL", f.url]]))),
              Effect.provide(NodeContext.layer),
              Effect.fork
            )
          // The follower printed the feed's last event, and listens, before anything is appended.
          yield* Effect.suspend(() => out.length > 0 ? Effect.void : Effect.fail("not yet")).pipe(
            Effect.retry(Schedule.spaced("20 millis").pipe(Schedule.upTo("30 seconds")))
          )
          yield* listeners.pipe(
            Effect.filterOrFail((n) => n > before, () => "no LISTEN yet"),
            Effect.retry(Schedule.spaced("50 millis")),
            Effect.timeout("30 seconds")
          )
          const appended = yield* f.append("o-followed").pipe(Effect.provide(f.stack))
          // The append's own hint delivers it, unless another test's transaction holds the feed horizon back for
          // longer than the re-reads after it last: then one of these later hints does.
          const hints = yield* Effect.fork(Effect.forever(Effect.zipRight(Effect.sleep("2 seconds"), hint)))
          const seen = yield* Effect.suspend(() =>
            out.some((l) => l.includes(appended.eventIds[0]!)) ? Effect.succeed(true) : Effect.fail("not yet")
          ).pipe(Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.upTo("40 seconds"))))
          yield* Fiber.interrupt(hints)
          yield* Fiber.interrupt(follower)
          assert.isTrue(seen)
          const events = out.map((l) => JSON.parse(l) as Admin.Event)
          assert.strictEqual(events[0].streamId, "o-3")
          assert.strictEqual(events.at(-1)?.streamId, "o-followed")
        }))
    })

    describe("subscriptions", () => {
      it.effect("list prints every checkpoint", () =>
        Effect.gen(function*() {
          const result = yield* cli(["subscriptions", "list"])
          assert.strictEqual(result.code, 0, result.err)
          assert.match(result.out, /^SUBSCRIPTION +TENANT +POSITION +LAG +STATUS +OWNER +UPDATED +DEAD LETTERS$/m)
          assert.strictEqual(result.out.split("\n").length, 2 + 3)
          const json = parse<Array<Admin.Subscription>>(yield* cli(["subscriptions", "list", "--json"]))
          assert.deepStrictEqual(json.map((s) => [s.subscription, s.status]), [
            ["billing", "active"],
            ["orders-view", "active"],
            ["shipping", "failed"]
          ])
        }))

      it.effect("dead-letters lists the parked events and exits 2", () =>
        Effect.gen(function*() {
          const f = yield* Fixture
          const result = yield* cli(["subscriptions", "dead-letters"])
          assert.strictEqual(result.code, 2, result.err)
          assert.match(result.out, /^SUBSCRIPTION +TENANT +EVENT +TYPE +STREAM +POSITION +ATTEMPTS +PARKED +ERROR$/m)
          assert.include(result.out, f.cancelledEventId)
          assert.match(result.out, /billing +\* +\S+ +OrderCancelled +Order\/o-2 +\d+:\d+ +1 .*card declined/)
          const json = parse<Array<Admin.DeadLetter>>(
            yield* cli(["subscriptions", "dead-letters", "billing", "--json"])
          )
          assert.strictEqual(json.length, 1)
          assert.strictEqual(json[0].eventId, f.cancelledEventId)
          assert.strictEqual(json[0].eventTenantId, "default")
          const none = yield* cli(["subscriptions", "dead-letters", "orders-view"])
          assert.strictEqual(none.code, 0)
          assert.strictEqual(none.out, "(none)")
        }))

      it.effect("retry delivers a dead letter again: the running subscription replays it", () =>
        Effect.gen(function*() {
          const f = yield* Fixture
          const before =
            parse<Array<Admin.DeadLetter>>(yield* cli(["subscriptions", "dead-letters", "billing", "--json"]))[0]
          const result = yield* cli(["subscriptions", "retry", "billing", f.cancelledEventId, "--json"])
          assert.strictEqual(result.code, 0, result.err)
          const move = parse<Admin.CheckpointMove>(result)
          assert.deepStrictEqual(move.to, {
            transactionId: before.position.transactionId,
            globalPosition: String(BigInt(before.position.globalPosition) - 1n)
          })
          // The event and the ones after it up to the old checkpoint: OrderCancelled, 2 tenants' events, o-3 (+ o-followed).
          assert.isTrue(Number(move.events) >= 5)
          assert.strictEqual((yield* cli(["subscriptions", "dead-letters", "billing"])).code, 0)
          // The handler works now: it receives the event.
          const delivered = yield* Effect.gen(function*() {
            const seen: Array<string> = []
            const billing = yield* Subscription.make({
              id: "billing",
              pollInterval: "50 millis",
              handler: (event) => Effect.sync(() => seen.push(event.eventId))
            })
            const running = yield* Effect.fork(billing.run)
            const store = yield* EventStore.EventStore
            yield* billing.waitFor(yield* store.headPosition)
            yield* Fiber.interrupt(running)
            return seen
          }).pipe(Effect.provide(f.stack))
          assert.strictEqual(delivered[0], f.cancelledEventId)
          const again = yield* cli(["subscriptions", "retry", "billing", f.cancelledEventId])
          assert.strictEqual(again.code, 1)
          assert.match(again.err, /has no dead letter for event/)
          const unknown = yield* cli(["subscriptions", "retry", "nobody", f.cancelledEventId])
          assert.strictEqual(unknown.code, 1)
          assert.match(unknown.err, /Subscription "nobody" has no checkpoint/)
        }))

      it.effect("park moves a stopped subscription past the event it stopped on", () =>
        Effect.gen(function*() {
          const f = yield* Fixture
          const result = yield* cli(["subscriptions", "park", "shipping", "--reason", "customer refunded by hand"])
          assert.strictEqual(result.code, 0, result.err)
          assert.match(
            result.out,
            new RegExp(
              `^Parked shipping: checkpoint \\d+:\\d+ -> \\d+:\\d+ .*; event ${f.cancelledEventId} \\(OrderCancelled, Order/o-2\\) is a dead letter now$`
            )
          )
          const letters = parse<Array<Admin.DeadLetter>>(
            yield* cli(["subscriptions", "dead-letters", "shipping", "--json"])
          )
          assert.deepStrictEqual(letters.map((d) => [d.eventId, d.error, d.attempts]), [
            [f.cancelledEventId, "customer refunded by hand", 0]
          ])
          // Run again with the same failing handler: it goes on after the parked event, to the head.
          const stopped = yield* Effect.gen(function*() {
            const shipping = yield* Subscription.make({
              id: "shipping",
              pollInterval: "50 millis",
              handler: (event) => event.type === "OrderCancelled" ? Effect.fail("card declined") : Effect.void,
              errorPolicy: { retry: Schedule.recurs(0), onExhausted: "stop" }
            })
            const running = yield* Effect.fork(shipping.run)
            const store = yield* EventStore.EventStore
            yield* shipping.waitFor(yield* store.headPosition)
            yield* Fiber.interrupt(running)
            return Option.map(yield* (yield* CheckpointStore.CheckpointStore).get("shipping"), (c) => c.status)
          }).pipe(Effect.provide(f.stack))
          assert.deepStrictEqual(stopped, Option.some("active"))
          // At the head now: nothing to park; a named event behind the checkpoint is refused.
          const nothing = yield* cli(["subscriptions", "park", "shipping"])
          assert.strictEqual(nothing.code, 1)
          assert.match(nothing.err, /is at the head of the feed: no event to park/)
          const behind = yield* cli(["subscriptions", "park", "shipping", f.cancelledEventId])
          assert.strictEqual(behind.code, 1)
          assert.match(behind.err, /not after the checkpoint/)
        }))

      it.effect("a subscription per tenant is named with --tenant, and park counts only its tenant's events", () =>
        Effect.gen(function*() {
          const f = yield* Fixture
          // mailer runs once per tenant and stops on each tenant's first event.
          yield* Effect.gen(function*() {
            for (const tenantId of ["acme", "globex"]) {
              const mailer = yield* Subscription.make({
                id: "mailer",
                tenantId,
                pollInterval: "50 millis",
                handler: () => Effect.fail("smtp down"),
                errorPolicy: { retry: Schedule.recurs(0), onExhausted: "stop" }
              })
              const stopped = yield* Effect.either(mailer.run)
              assert.isTrue(stopped._tag === "Left" && stopped.left._tag === "SubscriptionStopped")
            }
          }).pipe(Effect.provide(f.stack))
          const listed = parse<Array<Admin.Subscription>>(yield* cli(["subscriptions", "list", "--json"]))
          assert.deepStrictEqual(
            listed.filter((s) => s.subscription === "mailer").map((s) => [s.tenantId, s.status]),
            [["acme", "failed"], ["globex", "failed"]]
          )
          const ambiguous = yield* cli(["subscriptions", "park", "mailer"])
          assert.strictEqual(ambiguous.code, 1)
          assert.match(ambiguous.err, /runs in 2 tenant scopes \("acme", "globex"\): name the tenant/)
          // acme's first event comes after default-tenant events in the feed; none of them is acme's, so nothing is skipped.
          const parked = parse<Admin.Parked>(
            yield* cli(["subscriptions", "park", "mailer", "--tenant", "acme", "--json"])
          )
          assert.strictEqual(parked.tenantId, "acme")
          assert.deepStrictEqual(
            [parked.deadLetter.eventType, parked.deadLetter.eventTenantId, parked.events],
            ["CustomerRegistered", "acme", "1"]
          )
          const status = parse<Admin.Status>(yield* cli(["status", "--json"]))
          assert.include(
            status.problems.map((p) => p.message),
            "mailer (tenant globex): stopped on a failing event (status failed)"
          )
        }))

      it.effect("reset rebuilds a running projection and follows its progress to the end", () =>
        Effect.gen(function*() {
          const f = yield* Fixture
          const result = yield* cli([
            "subscriptions",
            "reset",
            "orders-view",
            "--truncate",
            "public.order_view",
            "--interval",
            "100"
          ])
          assert.strictEqual(result.code, 0, result.err)
          const printed = result.out.split("\n")
          assert.match(
            printed[0]!,
            /^Reset orders-view: checkpoint \d+:\d+ -> 0:0 \(feed head \d+:\d+\); \d+ event\(s\) to replay; emptied public\.order_view$/
          )
          assert.match(printed.at(-1)!, /^\[#{30}\] 100% +(\d+)\/\1 events +\d+ events\/s +done$/)
          const rows = yield* Effect.flatMap(
            SqlClient.SqlClient,
            (sql) =>
              sql<{ readonly n: number; readonly distinct: number }>`SELECT count(*)::int AS n,
            count(DISTINCT event_id)::int AS distinct FROM public.order_view`
          ).pipe(Effect.provide(f.stack))
          const events = yield* Effect.flatMap(
            SqlClient.SqlClient,
            (sql) => sql<{ readonly n: number }>`SELECT count(*)::int AS n FROM eventfold.events`
          ).pipe(Effect.provide(f.stack))
          assert.strictEqual(rows[0]!.n, events[0]!.n)
          assert.strictEqual(rows[0]!.distinct, events[0]!.n)

          const moved = parse<Admin.CheckpointMove>(
            yield* cli(["subscriptions", "reset", "orders-view", "--to", "end", "--json", "--no-wait"])
          )
          assert.deepStrictEqual(moved.to, moved.head)
          const progress = lines<Admin.RebuildProgress & Admin.CheckpointMove>(
            yield* cli([
              "subscriptions",
              "reset",
              "orders-view",
              "--json",
              "--interval",
              "100",
              "--truncate",
              "order_view"
            ])
          )
          assert.match(progress[0].events, /^\d+$/)
          assert.isTrue(progress.at(-1)?.finished === true)
          assert.strictEqual(progress.at(-1)?.done, progress.at(-1)?.total)
          const refused = yield* cli(["subscriptions", "reset", "orders-view", "--truncate", "eventfold.events"])
          assert.strictEqual(refused.code, 1)
          assert.match(refused.err, /refusing to truncate eventfold\.events/)
          const badTable = yield* cli(["subscriptions", "reset", "orders-view", "--truncate", "x; DROP TABLE y"])
          assert.strictEqual(badTable.code, 1)
          assert.match(badTable.err, /a table to truncate is "table" or "schema.table"/)
        }))
    })

    describe("outbox", () => {
      it.effect("stats shows the backlog and the failed rows, and exits 2; retry and purge act on them", () =>
        Effect.gen(function*() {
          const stats = yield* cli(["outbox", "stats"])
          assert.strictEqual(stats.code, 2, stats.err)
          assert.match(stats.out, /^failed: +1$/m)
          assert.match(stats.out, /^ +ID +EVENT +TENANT +STREAM +VERSION +TYPE +RETRIES +CREATED +LAST ERROR$/m)
          assert.match(stats.out, /broker unavailable$/m)
          const json = parse<Admin.OutboxStats & { readonly failures: Array<Admin.OutboxFailure> }>(
            yield* cli(["outbox", "stats", "--json"])
          )
          assert.strictEqual(json.failed, 1)
          assert.isTrue(json.published > 0)
          assert.isTrue(json.pending > 0)
          assert.strictEqual(json.failures[0].lastError, "broker unavailable")

          const bad = yield* cli(["outbox", "retry", "--id", "o-1"])
          assert.strictEqual(bad.code, 1)
          assert.match(bad.err, /a stream id needs its stream type/)
          const retried = yield* cli(["outbox", "retry"])
          assert.strictEqual(retried.code, 0, retried.err)
          assert.strictEqual(retried.out, "Set 1 failed outbox row(s) back to pending")
          const after = parse<Admin.OutboxStats>(yield* cli(["outbox", "stats", "--json"]))
          assert.strictEqual(after.failed, 0)
          assert.strictEqual((yield* cli(["outbox", "stats"])).code, 0)

          const kept = parse<unknown>(yield* cli(["outbox", "purge", "--older-than", "1 hour", "--json"]))
          assert.deepStrictEqual(kept, { purged: 0 })
          const purged = yield* cli(["outbox", "purge"])
          assert.strictEqual(purged.out, `Deleted ${json.published} published outbox row(s)`)
          assert.strictEqual(parse<Admin.OutboxStats>(yield* cli(["outbox", "stats", "--json"])).published, 0)
          const badAge = yield* cli(["outbox", "purge", "--older-than", "soon"])
          assert.strictEqual(badAge.code, 1)
          assert.match(badAge.err, /--older-than must be a duration/)
        }))
    })

    describe("snapshots", () => {
      it.effect("clear deletes one stream's snapshot or a type's", () =>
        Effect.gen(function*() {
          const one = yield* cli(["snapshots", "clear", "Order", "o-1"])
          assert.strictEqual(one.code, 0, one.err)
          assert.strictEqual(one.out, "Deleted 1 snapshot(s) of Order/o-1; the next loads fold the events again")
          const shown = parse<Admin.StreamDetail>(yield* cli(["streams", "show", "Order", "o-1", "--json"]))
          assert.strictEqual(shown.snapshot, null)
          const rest = parse<unknown>(yield* cli(["snapshots", "clear", "Order", "--json"]))
          assert.deepStrictEqual(rest, { cleared: 1 })
          assert.deepStrictEqual(parse<unknown>(yield* cli(["snapshots", "clear", "Order", "--json"])), { cleared: 0 })
        }))
    })
  }
)

describe(`eventfold migrate (${PgTest.serverLabel()})`, () => {
  layer(Layer.empty, { excludeTestServices: true, timeout: "120 seconds" })((it) => {
    it.scoped("status reports pending migrations (exit 2); --dry-run prints the SQL; migrate applies them once", () =>
      Effect.gen(function*() {
        const db = yield* PgTest.freshDatabase({ migrate: false })
        const pending = yield* runCli(db.adminUrl, ["status"])
        assert.strictEqual(pending.code, 2)
        assert.match(pending.out, /^migrations: +0 applied, \d+ pending$/m)
        assert.match(
          pending.out,
          /! \d+ migration\(s\) pending \(0001_event_store, 0002_snapshots, .*\): run eventfold migrate/
        )

        const dryRun = yield* runCli(db.adminUrl, ["migrate", "--dry-run"])
        assert.strictEqual(dryRun.code, 0, dryRun.err)
        assert.match(dryRun.out, /^-- eventfold migration 0001_event_store \(schema "eventfold"\)$/m)
        assert.include(dryRun.out, `CREATE SCHEMA IF NOT EXISTS "eventfold";`)
        assert.include(dryRun.out, "SET LOCAL search_path TO \"eventfold\", pg_catalog;")
        assert.strictEqual((yield* runCli(db.adminUrl, ["status"])).code, 2)

        const applied = yield* runCli(db.adminUrl, ["migrate"])
        assert.strictEqual(applied.code, 0, applied.err)
        assert.match(
          applied.out,
          /^Applied \d+ migration\(s\) to schema "eventfold": 0001_event_store, 0002_snapshots, /
        )
        const again = parse<unknown>(yield* runCli(db.adminUrl, ["migrate", "--json"]))
        assert.deepStrictEqual(again, { schema: "eventfold", applied: [] })
        const plan = parse<unknown>(yield* runCli(db.adminUrl, ["migrate", "--dry-run", "--json"]))
        assert.deepStrictEqual(plan, { schema: "eventfold", pending: [] })
        const healthy = yield* runCli(db.adminUrl, ["status"])
        assert.strictEqual(healthy.code, 0, healthy.out)
        assert.match(healthy.out, /No problems found\.$/)

        // Another schema, named by --schema.
        const other = parse<{ readonly schema: string; readonly applied: Array<Admin.Migration> }>(
          yield* runCli(db.adminUrl, ["migrate", "--schema", "ops", "--json"])
        )
        assert.strictEqual(other.schema, "ops")
        assert.isTrue(other.applied.length > 0)
        assert.strictEqual((yield* runCli(db.adminUrl, ["status", "--schema", "ops"])).code, 0)
        const badSchema = yield* runCli(db.adminUrl, ["status", "--schema", "Not-A-Schema"])
        assert.strictEqual(badSchema.code, 1)
        assert.match(badSchema.err, /schema must match/)
      }))

    it.effect("configuration and usage errors exit 1", () =>
      Effect.gen(function*() {
        const noUrl = yield* Cli.run(["status"]).pipe(
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map())),
          Effect.provide(NodeContext.layer),
          Effect.withConsole({
            ...(yield* Effect.console),
            error: () => Effect.void,
            log: () => Effect.void
          })
        )
        assert.strictEqual(noUrl, 1)
        const unreachable = yield* runCli("postgres://nobody@127.0.0.1:1/none", ["status"])
        assert.strictEqual(unreachable.code, 1)
        assert.match(unreachable.err, /^error: /)
        const usage = yield* runCli("postgres://nobody@127.0.0.1:1/none", ["streams", "show"])
        assert.strictEqual(usage.code, 1)
        const help = yield* runCli("postgres://nobody@127.0.0.1:1/none", ["--help"])
        assert.strictEqual(help.code, 0)
        assert.include(help.out, "EXIT CODES")
      }))
  })
})

describe("npx eventfold (spawned)", () => {
  const repository = fileURLToPath(new URL("../../..", import.meta.url))
  const spawn = (args: ReadonlyArray<string>, env: Record<string, string>) =>
    Effect.async<Captured>((resume) => {
      const child = execFile(
        "npx",
        ["--no-install", "eventfold", ...args],
        { cwd: repository, env: { ...process.env, ...env }, timeout: 60_000 },
        (error, stdout, stderr) => {
          resume(
            Effect.succeed({
              code: error === null ? 0 : typeof error.code === "number" ? error.code : -1,
              out: stdout,
              err: stderr
            })
          )
        }
      )
      return Effect.sync(() => child.kill())
    })

  layer(Layer.empty, { excludeTestServices: true, timeout: "120 seconds" })((it) => {
    it.scoped("--help and status run from the sources without a build", () =>
      Effect.gen(function*() {
        const help = yield* spawn(["--help"], {})
        assert.strictEqual(help.code, 0, help.err)
        assert.include(help.out, "EXIT CODES")
        const db = yield* PgTest.freshDatabase()
        const status = yield* spawn(["status", "--json"], { DATABASE_URL: db.adminUrl })
        assert.strictEqual(status.code, 0, status.err)
        assert.strictEqual((JSON.parse(status.out) as Admin.Status).events, "0")
        const failing = yield* spawn(["status"], { DATABASE_URL: "postgres://nobody@127.0.0.1:1/none" })
        assert.strictEqual(failing.code, 1)
        assert.match(failing.err, /^error: /m)
      }))
  })
})
