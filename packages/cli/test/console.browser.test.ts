// The console in a real headless browser: Debian's Chromium (/usr/bin/chromium, which .ci/run installs) driven by
// playwright-core, against a populated PostgreSQL database (consoleFixture.ts). Every test also checks that the page
// raised no dialog, no script error and no Content-Security-Policy violation. A screenshot of each page is kept in
// test/artifacts/ (gitignored); EVENTFOLD_CONSOLE_SCREENSHOT=1 also writes the stream page to docs/console.png.
import { PgTest } from "@eventfold/postgres"
import * as Effect from "effect/Effect"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Schedule from "effect/Schedule"
import { existsSync, mkdirSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core"
import { afterAll, afterEach, assert, beforeAll, beforeEach, describe, it } from "vitest"
import { ConsoleFixture, hostileError, hostileStreamId, hostileText, layer } from "./consoleFixture.js"

const chromiumPath = "/usr/bin/chromium"
const hasChromium = existsSync(chromiumPath)
const artifacts = fileURLToPath(new URL("./artifacts/", import.meta.url))
const readmeScreenshot = fileURLToPath(new URL("../../../docs/console.png", import.meta.url))

const title = `eventfold console in Chromium (${PgTest.serverLabel()})${
  hasChromium ? "" : ` - SKIPPED: ${chromiumPath} is absent (apt-get install chromium; .ci/run installs it)`
}`

if (!hasChromium) {
  console.warn(`The console's browser tests are skipped: ${chromiumPath} is absent (apt-get install chromium)`)
}

describe.skipIf(!hasChromium)(title, () => {
  let runtime: ManagedRuntime.ManagedRuntime<ConsoleFixture, unknown>
  let fixture: ConsoleFixture["Type"]
  let browser: Browser
  let context: BrowserContext
  let page: Page
  let dialogs: Array<string>
  let pageErrors: Array<string>

  const run = <A>(effect: Effect.Effect<A, unknown, ConsoleFixture>) => runtime.runPromise(effect)

  const screenshot = (name: string) => page.screenshot({ path: `${artifacts}${name}.png`, fullPage: true })

  const open = async (url: string, hash: string) => {
    await page.goto(`${url}/${hash}`)
    await page.locator(`main[data-page]`).waitFor()
  }

  const violations = async () => (await page.evaluate("window.__cspViolations")) as ReadonlyArray<string>

  beforeAll(async () => {
    mkdirSync(artifacts, { recursive: true })
    runtime = ManagedRuntime.make(layer)
    fixture = await runtime.runPromise(ConsoleFixture)
    browser = await chromium.launch({ executablePath: chromiumPath })
  })

  afterAll(async () => {
    await browser?.close()
    await runtime?.dispose()
  })

  beforeEach(async () => {
    context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
    page = await context.newPage()
    dialogs = []
    pageErrors = []
    page.on("dialog", (dialog) => {
      dialogs.push(`${dialog.type()}: ${dialog.message()}`)
      void dialog.dismiss()
    })
    page.on("pageerror", (error) => pageErrors.push(error.message))
    await page.addInitScript(
      "window.__cspViolations = []; document.addEventListener('securitypolicyviolation', (e) => " +
        "window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI))"
    )
  })

  afterEach(async () => {
    try {
      assert.deepStrictEqual(dialogs, [], "no dialog opened")
      assert.deepStrictEqual(pageErrors, [], "no script error")
      assert.deepStrictEqual(await violations(), [], "no Content-Security-Policy violation")
    } finally {
      await context.close()
    }
  })

  it("searches a stream by type and id, and opens it with its payloads and metadata", async () => {
    await open(fixture.console.url, "#/streams")
    await page.getByTestId("search-type").fill("Order")
    await page.getByTestId("search-id").fill("o-1001")
    await page.getByTestId("search-submit").click()
    await page.waitForFunction("location.hash === '#/streams?type=Order&id=o-1001'")
    const rows = page.getByTestId("stream-row")
    await rows.first().waitFor()
    assert.strictEqual(await rows.count(), 1)
    await screenshot("streams")

    await rows.first().getByTestId("stream-link").click()
    const events = page.getByTestId("event")
    await events.nth(2).waitFor()
    assert.strictEqual(await events.count(), 3)
    assert.strictEqual(await page.evaluate("location.hash"), "#/stream?tenant=default&type=Order&id=o-1001")
    assert.deepStrictEqual(await page.getByTestId("event-type").allTextContents(), [
      "OrderPlaced",
      "OrderPaid",
      "OrderShipped"
    ])
    const payload = JSON.parse((await events.first().getByTestId("payload").textContent()) ?? "")
    assert.strictEqual(payload.customer, "Ada Lovelace")
    assert.deepStrictEqual(payload.items.map((i: { sku: string }) => i.sku), ["BOOK-42", "PEN-7"])
    const metadata = JSON.parse((await events.nth(1).getByTestId("metadata").textContent()) ?? "")
    assert.deepStrictEqual(metadata, {
      correlationId: "checkout-7f3a",
      causationId: "payment-51c2",
      actorId: "payments"
    })
    await screenshot("stream")
    if (process.env.EVENTFOLD_CONSOLE_SCREENSHOT === "1") {
      await page.screenshot({ path: readmeScreenshot, fullPage: true })
    }
  })

  it("shows a newly appended event in the live feed without reloading", async () => {
    await open(fixture.console.url, "#/feed")
    await page.locator("[data-testid=feed-state][data-state=live]").waitFor()
    // A reload would lose this marker.
    await page.evaluate("window.__samePage = true")
    const first = await run(fixture.append("Order", "o-2001", "OrderPlaced", { orderId: "o-2001", total: 18.5 }))
    const row = page.locator(`[data-testid=feed-event][data-event-id="${first.eventIds[0]}"]`)
    await row.waitFor({ timeout: 20_000 })
    assert.include(await row.textContent(), "OrderPlaced")
    assert.include(await row.getByTestId("stream-link").textContent(), "Order/o-2001")
    const second = await run(fixture.append("Order", "o-2001", "OrderPaid", { orderId: "o-2001", amount: 18.5 }))
    await page.locator(`[data-testid=feed-event][data-event-id="${second.eventIds[0]}"]`).waitFor({ timeout: 20_000 })
    // Newest first.
    assert.deepStrictEqual(await page.getByTestId("feed-event-type").allTextContents(), ["OrderPaid", "OrderPlaced"])
    assert.strictEqual(await page.evaluate("window.__samePage"), true)
    await screenshot("feed")
  })

  it("retries a dead-lettered event with the token, and refuses without it", async () => {
    const deadLetter = `[data-testid=dead-letter][data-event-id="${fixture.deadLetterEventId}"]`
    // Without a token on a console that has one: 401.
    await open(fixture.console.url, "#/subscriptions")
    await page.locator(deadLetter).waitFor()
    assert.strictEqual(await page.getByTestId("admin-mode").textContent(), "read-only until a token is given")
    await page.locator(deadLetter).getByTestId("retry-dead-letter").click()
    const refused = page.getByTestId("flash-error")
    await refused.waitFor()
    assert.match((await refused.textContent()) ?? "", /^Refused: Unauthorized \(HTTP 401\): Admin action refused/)
    await screenshot("subscriptions-refused")
    // A wrong token: 401 too.
    await page.getByTestId("token").fill("not-the-token")
    await page.locator(deadLetter).getByTestId("retry-dead-letter").click()
    await page.waitForFunction(
      "document.querySelector('[data-testid=flash-error]')?.textContent.includes('does not match')"
    )
    assert.strictEqual((await run(fixture.admin.deadLetters())).length, 1)

    // On a console without a token, admin actions are off: 403.
    const readOnly = await context.newPage()
    await readOnly.goto(`${fixture.readOnly.url}/#/subscriptions`)
    await readOnly.locator(deadLetter).waitFor()
    assert.strictEqual(await readOnly.getByTestId("admin-mode").textContent(), "read-only")
    assert.isTrue(await readOnly.getByTestId("token").isDisabled())
    await readOnly.locator(deadLetter).getByTestId("retry-dead-letter").click()
    const disabled = readOnly.getByTestId("flash-error")
    await disabled.waitFor()
    assert.match((await disabled.textContent()) ?? "", /AdminActionsDisabled \(HTTP 403\)/)
    await readOnly.close()
    assert.strictEqual((await run(fixture.admin.deadLetters())).length, 1)

    // With the token, after the handler is repaired: the dead letter is retried and gone.
    await run(fixture.repair)
    await page.getByTestId("token").fill(fixture.token)
    assert.strictEqual(await page.getByTestId("admin-mode").textContent(), "admin")
    await page.locator(deadLetter).getByTestId("retry-dead-letter").click()
    const done = page.getByTestId("flash-ok")
    await done.waitFor()
    assert.match((await done.textContent()) ?? "", /^Retrying OrderRejected .*: order-emails replays \d+ events/)
    await page.getByTestId("no-dead-letters").waitFor()
    assert.strictEqual(await page.locator(deadLetter).count(), 0)
    assert.deepStrictEqual(await run(fixture.admin.deadLetters()), [])
    // The running subscription replays the event with its repaired handler and parks nothing again.
    const caughtUp = await run(
      fixture.admin.subscriptions.pipe(
        Effect.map((all) => all.find((s) => s.subscription === "order-emails")!),
        Effect.filterOrFail((s) => s.lag === "0", () => "still replaying"),
        Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo("20 seconds")))
      )
    )
    assert.strictEqual(caughtUp.deadLetters, 0)
    // Let the lag chart gather a few samples for the screenshot.
    await page.waitForFunction(
      "document.querySelectorAll('[data-testid=subscription-row] svg.chart polyline').length === 2",
      undefined,
      { timeout: 20_000 }
    )
    await screenshot("subscriptions")
  })

  it("shows markup from the database as text: payloads, stream ids and errors", async () => {
    await open(fixture.console.url, "#/stream?type=Note&id=xss")
    const payload = page.getByTestId("payload")
    await payload.waitFor()
    const text = (await payload.textContent()) ?? ""
    assert.include(text, hostileText)
    assert.include(text, "<img src=x onerror=alert(3)>")
    assert.deepStrictEqual(JSON.parse(text).text, hostileText)
    assert.strictEqual(await page.locator("main script, main img").count(), 0)
    await screenshot("stream-markup")

    // A stream id that is markup: a link with that text, and a page titled with it.
    await open(fixture.console.url, "#/streams?type=Note")
    const link = page.getByTestId("stream-link").filter({ hasText: "onerror" })
    assert.strictEqual(await link.textContent(), hostileStreamId)
    await link.click()
    await page.getByTestId("event").waitFor()
    assert.strictEqual(await page.getByTestId("stream-title").textContent(), `Note/${hostileStreamId}`)
    assert.strictEqual(await page.locator("main img").count(), 0)

    // The outbox's last error, and the dead letter's error, are text too.
    await open(fixture.console.url, "#/outbox")
    const lastError = page.getByTestId("outbox-last-error")
    await lastError.waitFor()
    assert.strictEqual(await lastError.textContent(), hostileError)
    assert.strictEqual(await page.locator("main b").filter({ hasText: "broker unavailable" }).count(), 0)
    assert.strictEqual(await page.getByTestId("outbox-failure").count(), 1)
    await screenshot("outbox")

    // And were markup to get in, the Content-Security-Policy would still block inline script: prove it.
    await page.evaluate(
      "(() => { const s = document.createElement('script'); s.textContent = 'window.__inlineRan = true'; " +
        "document.body.appendChild(s) })()"
    )
    assert.strictEqual(await page.evaluate("window.__inlineRan === undefined"), true)
    assert.deepStrictEqual(await violations(), ["script-src-elem inline"])
    await page.evaluate("window.__cspViolations.length = 0")
  })
})
