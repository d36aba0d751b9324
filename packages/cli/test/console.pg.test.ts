// The console's HTTP surface against a populated PostgreSQL database (consoleFixture.ts): the page and its security
// headers, the JSON API, typed refusals of bad input and of admin actions without the token, the Host check, and the
// live feed as server-sent events (delivery, resumption, shutdown). The browser tests are in console.browser.test.ts.
import { assert, describe, it as plainIt, layer } from "@effect/vitest"
import { PgTest } from "@eventfold/postgres"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as http from "node:http"
import * as Admin from "../src/Admin.js"
import * as Console from "../src/Console.js"
import * as Auth from "../src/console/auth.js"
import { ConsoleFixture, hostileError, layer as fixtureLayer } from "./consoleFixture.js"

interface Reply {
  readonly status: number
  readonly headers: Headers
  readonly text: string
  // The API's JSON, read field by field in the assertions.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly json: any
}

const call = (base: string, path: string, init?: RequestInit) =>
  Effect.promise(async (): Promise<Reply> => {
    const response = await fetch(base + path, init)
    const text = await response.text()
    let json: unknown = undefined
    try {
      json = JSON.parse(text)
    } catch {
      // not JSON: the page and its assets
    }
    return { status: response.status, headers: response.headers, text, json }
  })

const get = (path: string) => Effect.flatMap(ConsoleFixture, (f) => call(f.console.url, path))

const post = (path: string, body: unknown, headers: Record<string, string>, base?: "readOnly") =>
  Effect.flatMap(ConsoleFixture, (f) =>
    call(base === "readOnly" ? f.readOnly.url : f.console.url, path, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify(body)
    }))

const bearer = Effect.map(ConsoleFixture, (f) => ({ authorization: `Bearer ${f.token}` }))

/** A server-sent event as the browser's EventSource sees it. */
interface Message {
  readonly event: string
  readonly id: string | undefined
  readonly data: string
}

/** An open `GET /api/feed/live`: messages in order, and whether the server ended the response. */
const openFeed = (url: string, headers: Record<string, string> = {}) =>
  Effect.async<{
    readonly status: number
    readonly next: () => Promise<Message>
    readonly ended: Promise<void>
    readonly close: () => void
  }>((resume) => {
    const request = http.get(`${url}/api/feed/live`, { headers }, (response) => {
      const queue: Array<Message> = []
      const waiting: Array<(message: Message) => void> = []
      let buffer = ""
      response.setEncoding("utf8")
      const ended = new Promise<void>((resolve) => response.on("end", resolve).on("close", resolve))
      response.on("data", (chunk: string) => {
        buffer += chunk
        let at: number
        while ((at = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, at)
          buffer = buffer.slice(at + 2)
          const fields = new Map<string, string>()
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) continue
            const colon = line.indexOf(": ")
            if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 2))
          }
          if (!fields.has("event")) continue
          const message = { event: fields.get("event")!, id: fields.get("id"), data: fields.get("data") ?? "" }
          const waiter = waiting.shift()
          if (waiter) waiter(message)
          else queue.push(message)
        }
      })
      resume(Effect.succeed({
        status: response.statusCode ?? 0,
        next: () => {
          const queued = queue.shift()
          return queued ? Promise.resolve(queued) : new Promise<Message>((resolve) => waiting.push(resolve))
        },
        ended,
        close: () => request.destroy()
      }))
    })
  })

/** Polls until `check` holds (the lag sampler and the subscription work in the background). */
const eventually = <A>(effect: Effect.Effect<A, unknown, ConsoleFixture>, check: (a: A) => boolean) =>
  effect.pipe(
    Effect.filterOrFail(check, () => "not yet"),
    Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo("20 seconds")))
  )

layer(fixtureLayer, { excludeTestServices: true, timeout: "120 seconds" })(
  `eventfold console over HTTP (${PgTest.serverLabel()})`,
  (it) => {
    describe("the page", () => {
      it.effect("is served with a strict Content-Security-Policy and no inline script, style or handler", () =>
        Effect.gen(function*() {
          const page = yield* get("/")
          assert.strictEqual(page.status, 200)
          assert.strictEqual(page.headers.get("content-type"), "text/html; charset=utf-8")
          const csp = page.headers.get("content-security-policy") ?? ""
          assert.strictEqual(csp, Console.contentSecurityPolicy)
          assert.include(csp, "default-src 'none'")
          assert.include(csp, "script-src 'self'")
          assert.notInclude(csp, "unsafe")
          assert.strictEqual(page.headers.get("x-content-type-options"), "nosniff")
          assert.strictEqual(page.headers.get("x-frame-options"), "DENY")
          assert.strictEqual(page.headers.get("cache-control"), "no-store")
          assert.deepStrictEqual(page.text.match(/<script[^>]*>/g), ["<script src=\"/assets/console.js\" defer>"])
          assert.notMatch(page.text, /\sstyle=|\son[a-z]+=/i)
          const script = yield* get("/assets/console.js")
          assert.strictEqual(script.headers.get("content-type"), "text/javascript; charset=utf-8")
          // The script never turns text into markup.
          assert.notMatch(script.text, /innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/)
          const css = yield* get("/assets/console.css")
          assert.strictEqual(css.headers.get("content-type"), "text/css; charset=utf-8")
          const missing = yield* get("/nowhere")
          assert.strictEqual(missing.status, 404)
          assert.strictEqual(missing.json._tag, "RouteNotFound")
          assert.strictEqual(missing.headers.get("content-security-policy"), Console.contentSecurityPolicy)
        }))
    })

    describe("the JSON API", () => {
      it.effect("searches streams by type, exact id, tenant and prefix", () =>
        Effect.gen(function*() {
          const ids = (reply: Reply) => reply.json.streams.map((s: Admin.StreamSummary) => s.streamId)
          assert.deepStrictEqual(ids(yield* get("/api/streams?type=Order")), ["o-1001", "o-1002"])
          assert.deepStrictEqual(ids(yield* get("/api/streams?id=o-1001")), ["o-1001"])
          assert.deepStrictEqual(ids(yield* get("/api/streams?id=o-100")), [])
          assert.deepStrictEqual(ids(yield* get("/api/streams?prefix=o-100")), ["o-1001", "o-1002"])
          const acme = yield* get("/api/streams?tenant=acme")
          assert.deepStrictEqual(
            acme.json.streams.map((s: Admin.StreamSummary) => [s.tenantId, s.streamType, s.streamId]),
            [["acme", "Customer", "c-ada"]]
          )
          const first = yield* get("/api/streams?type=Order&limit=1")
          assert.deepStrictEqual(ids(first), ["o-1001"])
          const next = first.json.next
          const second = yield* get(
            `/api/streams?type=Order&limit=1&afterTenant=${next.tenantId}&afterType=${next.streamType}&afterId=${next.streamId}`
          )
          assert.deepStrictEqual(ids(second), ["o-1002"])
        }))

      it.effect("shows a stream's events with their payload and metadata", () =>
        Effect.gen(function*() {
          const reply = yield* get("/api/stream?type=Order&id=o-1001")
          assert.strictEqual(reply.status, 200)
          const detail: Admin.StreamDetail = reply.json
          assert.deepStrictEqual(detail.events.map((e) => e.type), ["OrderPlaced", "OrderPaid", "OrderShipped"])
          assert.deepStrictEqual(detail.events[0]!.payload, {
            orderId: "o-1001",
            customer: "Ada Lovelace",
            items: [{ sku: "BOOK-42", quantity: 1, price: 39.5 }, { sku: "PEN-7", quantity: 3, price: 2.2 }],
            total: 46.1
          })
          assert.strictEqual(detail.events[1]!.metadata.causationId, "payment-51c2")
          const backward = yield* get("/api/stream?type=Order&id=o-1001&direction=backward&limit=2")
          assert.deepStrictEqual(backward.json.events.map((e: Admin.Event) => e.version), [3, 2])
          assert.strictEqual(backward.json.nextVersion, 1)
        }))

      it.effect("answers bad input with a typed 400 naming the parameter, and never builds SQL from it", () =>
        Effect.gen(function*() {
          const cases: ReadonlyArray<readonly [string, RegExp]> = [
            ["/api/streams?limit=abc", /^Bad request: limit: expected an integer from 1 to 1000$/],
            ["/api/streams?limit=0", /limit: expected an integer from 1 to 1000/],
            ["/api/streams?type=", /type: expected 1 to 1024 characters/],
            ["/api/streams?type=a&type=b", /type: expected 1 to 1024 characters/],
            ["/api/streams?sort=id", /sort: is unexpected/],
            ["/api/streams?id=o-1001&prefix=o", /by id or by prefix, not both/],
            ["/api/stream?type=Order", /id: is missing/],
            ["/api/stream?type=Order&id=o-1001&direction=sideways", /direction/],
            ["/api/stream?type=Order&id=o-1001&from=-1", /from: expected a stream version/],
            ["/api/feed?after=1;2", /after: expected a feed position/]
          ]
          for (const [path, message] of cases) {
            const reply = yield* get(path)
            assert.strictEqual(reply.status, 400, path)
            assert.strictEqual(reply.json._tag, "BadRequest", path)
            assert.match(reply.json.message, message, path)
          }
          const before = yield* get("/api/status")
          // Values reach the database as bound parameters: this is a stream id like any other.
          const injection = yield* get(
            `/api/stream?type=Order&id=${encodeURIComponent("o-1001'; DROP TABLE eventfold.events; --")}`
          )
          assert.strictEqual(injection.status, 404)
          assert.strictEqual(injection.json._tag, "StreamNotFound")
          const found = yield* get(`/api/streams?prefix=${encodeURIComponent("%")}`)
          assert.deepStrictEqual(found.json.streams, [])
          const after = yield* get("/api/status")
          assert.strictEqual(after.json.events, before.json.events)
          assert.strictEqual(after.json.streams, before.json.streams)
        }))

      it.effect("lists subscriptions with their lag over time, and dead letters", () =>
        Effect.gen(function*() {
          const f = yield* ConsoleFixture
          const reply = yield* eventually(
            get("/api/subscriptions"),
            (r) => r.json.subscriptions.every((s: { lagHistory: ReadonlyArray<unknown> }) => s.lagHistory.length >= 2)
          )
          const names = reply.json.subscriptions.map((s: Admin.Subscription) => s.subscription)
          assert.deepStrictEqual(names, ["analytics", "order-emails"])
          const emails = reply.json.subscriptions[1]
          assert.isTrue(emails.running)
          assert.strictEqual(emails.deadLetters, 1)
          const times = emails.lagHistory.map(([at]: [number, number]) => at)
          assert.deepStrictEqual(times, [...times].sort((a, b) => a - b))
          assert.deepStrictEqual(
            reply.json.deadLetters.map((d: Admin.DeadLetter) => [d.subscription, d.eventId, d.eventType]),
            [["order-emails", f.deadLetterEventId, "OrderRejected"]]
          )
          assert.include(reply.json.deadLetters[0].error, "SMTP 550: mailbox <unavailable>")
          const outbox = yield* get("/api/outbox")
          assert.strictEqual(outbox.json.stats.failed, 1)
          assert.strictEqual(outbox.json.failures[0].lastError, hostileError)
        }))
    })

    describe("admin actions", () => {
      it.effect("are refused without the token (401), with another token (401), and on a read-only console (403)", () =>
        Effect.gen(function*() {
          const f = yield* ConsoleFixture
          const missing = yield* post("/api/outbox/retry", {}, {})
          assert.strictEqual(missing.status, 401)
          assert.strictEqual(missing.json._tag, "Unauthorized")
          assert.strictEqual(missing.headers.get("www-authenticate"), "Bearer")
          for (const authorization of [`Bearer ${f.token}x`, "Bearer wrong", `Basic ${f.token}`, `bearer ${f.token}`]) {
            const refused = yield* post("/api/outbox/retry", {}, { authorization })
            assert.strictEqual(refused.status, 401, authorization)
            assert.strictEqual(refused.json._tag, "Unauthorized")
          }
          const readOnly = yield* post("/api/outbox/retry", {}, { authorization: `Bearer ${f.token}` }, "readOnly")
          assert.strictEqual(readOnly.status, 403)
          assert.strictEqual(readOnly.json._tag, "AdminActionsDisabled")
          // The token is checked before the body is even read.
          const refusedReset = yield* post("/api/subscriptions/reset", { nonsense: true }, {})
          assert.strictEqual(refusedReset.status, 401)
          const refusedRetry = yield* post("/api/dead-letters/retry", {}, {})
          assert.strictEqual(refusedRetry.status, 401)
          assert.strictEqual((yield* f.admin.outboxStats).failed, 1)
          assert.strictEqual((yield* f.admin.deadLetters()).length, 1)
        }))

      it.effect("validate their JSON body", () =>
        Effect.gen(function*() {
          const f = yield* ConsoleFixture
          const auth = yield* bearer
          const plain = yield* call(f.console.url, "/api/outbox/retry", {
            method: "POST",
            headers: { ...auth, "content-type": "text/plain" },
            body: "{}"
          })
          assert.strictEqual(plain.status, 400)
          assert.match(plain.json.message, /Content-Type: application\/json/)
          const broken = yield* call(f.console.url, "/api/outbox/retry", {
            method: "POST",
            headers: { ...auth, "content-type": "application/json" },
            body: "{"
          })
          assert.strictEqual(broken.status, 400)
          assert.strictEqual(broken.json._tag, "BadRequest")
          const extra = yield* post("/api/dead-letters/retry", { subscription: "order-emails", sql: "x" }, auth)
          assert.strictEqual(extra.status, 400)
          assert.match(extra.json.message, /eventId: is missing/)
          assert.match(extra.json.message, /sql: is unexpected/)
          const unknown = yield* post("/api/dead-letters/retry", {
            subscription: "order-emails",
            eventId: "00000000-0000-4000-8000-000000000000"
          }, auth)
          assert.strictEqual(unknown.status, 404)
          assert.strictEqual(unknown.json._tag, "DeadLetterNotFound")
          const noSubscription = yield* post("/api/subscriptions/reset", { subscription: "nope" }, auth)
          assert.strictEqual(noSubscription.status, 404)
          assert.strictEqual(noSubscription.json._tag, "SubscriptionNotFound")
        }))

      it.effect("with the token: retry a dead letter, reset a subscription, retry the outbox", () =>
        Effect.gen(function*() {
          const f = yield* ConsoleFixture
          const auth = yield* bearer
          yield* f.repair
          const retried = yield* post("/api/dead-letters/retry", {
            subscription: "order-emails",
            eventId: f.deadLetterEventId
          }, auth)
          assert.strictEqual(retried.status, 200, retried.text)
          assert.strictEqual(retried.json.subscription, "order-emails")
          assert.deepStrictEqual(yield* f.admin.deadLetters(), [])
          // The running subscription replays from the event, with its handler repaired: nothing is parked again.
          const caughtUp = yield* eventually(
            Effect.map(f.admin.subscriptions, (all) => all.find((s) => s.subscription === "order-emails")!),
            (s) => s.lag === "0"
          )
          assert.strictEqual(caughtUp.deadLetters, 0)

          const reset = yield* post("/api/subscriptions/reset", { subscription: "analytics" }, auth)
          assert.strictEqual(reset.status, 200, reset.text)
          assert.deepStrictEqual(reset.json.to, { transactionId: "0", globalPosition: "0" })
          // The sampler sees the rewound checkpoint: the chart's last sample is the whole feed.
          yield* eventually(get("/api/subscriptions"), (r) => {
            const analytics = r.json.subscriptions.find((s: Admin.Subscription) => s.subscription === "analytics")
            return analytics.lag !== "0" && analytics.lagHistory.at(-1)[1] === Number(analytics.lag)
          })

          const outbox = yield* post("/api/outbox/retry", {}, auth)
          assert.deepStrictEqual(outbox.json, { retried: 1 })
          assert.strictEqual((yield* f.admin.outboxStats).failed, 0)
        }))
    })

    describe("the Host check", () => {
      it.effect("answers requests for localhost only while it listens on a loopback address", () =>
        Effect.gen(function*() {
          const f = yield* ConsoleFixture
          const withHost = (host: string) =>
            Effect.async<{ status: number; body: string }>((resume) => {
              http.get(`${f.console.url}/api/session`, { headers: { host } }, (response) => {
                let body = ""
                response.setEncoding("utf8")
                response.on("data", (chunk: string) => (body += chunk))
                response.on("end", () => resume(Effect.succeed({ status: response.statusCode ?? 0, body })))
              })
            })
          const foreign = yield* withHost(`attacker.example:${f.console.port}`)
          assert.strictEqual(foreign.status, 421)
          assert.strictEqual(JSON.parse(foreign.body)._tag, "ForeignHost")
          assert.strictEqual((yield* withHost(`localhost:${f.console.port}`)).status, 200)
          assert.strictEqual((yield* withHost(`127.0.0.1:${f.console.port}`)).status, 200)
        }))
    })

    describe("the live feed", () => {
      it.effect("sends new events as server-sent events, and resumes after Last-Event-ID", () =>
        Effect.gen(function*() {
          const f = yield* ConsoleFixture
          const feed = yield* openFeed(f.console.url)
          assert.strictEqual(feed.status, 200)
          const ready = yield* Effect.promise(feed.next)
          assert.strictEqual(ready.event, "ready")
          const appended = yield* f.append("Order", "o-live", "OrderPlaced", { orderId: "o-live", note: "</script>" })
          const message = yield* Effect.promise(feed.next)
          assert.strictEqual(message.event, "events")
          const events: ReadonlyArray<Admin.Event> = JSON.parse(message.data)
          assert.deepStrictEqual(events.map((e) => e.eventId), appended.eventIds)
          assert.deepStrictEqual(events[0]!.payload, { orderId: "o-live", note: "</script>" })
          assert.strictEqual(message.id, `${appended.position.transactionId}:${appended.position.globalPosition}`)
          feed.close()

          // A browser that lost the connection after `ready` gets the event again from where it was.
          const resumed = yield* openFeed(f.console.url, { "last-event-id": ready.id! })
          assert.strictEqual((yield* Effect.promise(resumed.next)).event, "ready")
          const again = yield* Effect.promise(resumed.next)
          assert.deepStrictEqual(JSON.parse(again.data).map((e: Admin.Event) => e.eventId), appended.eventIds)
          resumed.close()

          const bad = yield* get("/api/feed/live?after=nope")
          assert.strictEqual(bad.status, 400)
          const badResume = yield* openFeed(f.console.url, { "last-event-id": "DROP" })
          assert.strictEqual(badResume.status, 400)
          badResume.close()
        }))

      it.effect("wakes on an append's hint, long before its poll interval", () =>
        Effect.gen(function*() {
          const f = yield* ConsoleFixture
          yield* Effect.scoped(Effect.gen(function*() {
            // An Admin of its own, so its LISTEN opens in this test, when the feed first reads.
            const admin = yield* f.freshAdmin
            const before = yield* f.listeners
            const running = yield* Console.serve({ port: 0, pollInterval: "10 minutes" }).pipe(
              Effect.provideService(Admin.Admin, admin)
            )
            const feed = yield* openFeed(running.url)
            assert.strictEqual((yield* Effect.promise(feed.next)).event, "ready")
            yield* f.listeners.pipe(
              Effect.filterOrFail((n) => n > before, () => "no LISTEN yet"),
              Effect.retry(Schedule.spaced("50 millis")),
              Effect.timeout("30 seconds")
            )
            // The first read (right after subscribing) is long done: what comes next comes by the hint.
            yield* Effect.sleep("1 second")
            const appended = yield* f.append("Order", "o-hinted", "OrderPlaced", { orderId: "o-hinted" })
            // Only a hint can deliver it within the test: the next poll is ten minutes away. The append's own hint
            // does, unless another test's transaction holds the feed horizon back for longer than the re-reads after
            // it last: then one of these later hints does.
            yield* Effect.forkScoped(Effect.forever(Effect.zipRight(Effect.sleep("2 seconds"), f.hint)))
            const message = yield* Effect.promise(feed.next).pipe(Effect.timeout("40 seconds"))
            assert.strictEqual(message.event, "events")
            assert.deepStrictEqual(JSON.parse(message.data).map((e: Admin.Event) => e.eventId), appended.eventIds)
            feed.close()
          }))
        }))

      it.effect("feed hints: a subscriber that goes away leaves them working for the next, and the Admin closes with them in use", () =>
        Effect.gen(function*() {
          const f = yield* ConsoleFixture
          yield* Effect.scoped(Effect.gen(function*() {
            const admin = yield* f.freshAdmin
            const first = yield* Effect.fork(Effect.scoped(Effect.zipRight(admin.feedHints, Effect.never)))
            yield* Effect.yieldNow()
            yield* Fiber.interrupt(first)
            const hints = yield* admin.feedHints.pipe(Effect.timeout("10 seconds"))
            // Until the LISTEN is in place a hint is lost: send them until one arrives.
            yield* Effect.forkScoped(Effect.forever(Effect.zipRight(f.hint, Effect.sleep("200 millis"))))
            yield* Queue.take(hints).pipe(Effect.timeout("10 seconds"))
          })).pipe(Effect.timeout("20 seconds"))
        }))

      it.effect("ends open feeds when the console stops", () =>
        Effect.gen(function*() {
          const f = yield* ConsoleFixture
          const ended = yield* Effect.scoped(Effect.gen(function*() {
            const running = yield* Console.serve({ port: 0, pollInterval: "100 millis" }).pipe(
              Effect.provideService(Admin.Admin, f.admin)
            )
            const feed = yield* openFeed(running.url)
            assert.strictEqual((yield* Effect.promise(feed.next)).event, "ready")
            return feed.ended
          }))
          // The scope closed, so the server stopped with the feed open: the response has ended.
          yield* Effect.promise(() => ended)
        }))
    })
  }
)

describe("the admin token", () => {
  plainIt("matches only the configured token, in constant time over its hash", () => {
    const configured = Redacted.make("s3cret-token")
    assert.isTrue(Auth.matches(configured, "s3cret-token"))
    assert.isFalse(Auth.matches(configured, "s3cret-tokem"))
    assert.isFalse(Auth.matches(configured, "s3cret"))
    assert.isFalse(Auth.matches(configured, "s3cret-token "))
    assert.isFalse(Auth.matches(configured, ""))
  })

  plainIt("comes from EVENTFOLD_CONSOLE_TOKEN, unset meaning read-only and blank refused", async () => {
    const read = (entries: ReadonlyArray<readonly [string, string]>) =>
      Effect.runPromise(
        Effect.either(Effect.withConfigProvider(Auth.token, ConfigProvider.fromMap(new Map(entries))))
      )
    const unset = await read([])
    assert.isTrue(Either.isRight(unset) && Option.isNone(unset.right))
    const set = await read([["EVENTFOLD_CONSOLE_TOKEN", "abc"]])
    assert.isTrue(Either.isRight(set) && Option.isSome(set.right) && Redacted.value(set.right.value) === "abc")
    const blank = await read([["EVENTFOLD_CONSOLE_TOKEN", "  "]])
    assert.isTrue(Either.isLeft(blank))
    assert.include(String(Either.isLeft(blank) ? blank.left : ""), "must not be blank")
  })
})
