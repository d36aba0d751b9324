import { assert, describe, it } from "@effect/vitest"
import { MemoryEventfold } from "@eventfold/core"
import { PgTest } from "@eventfold/postgres"
import * as Effect from "effect/Effect"
import { readFileSync } from "node:fs"
import { createServer } from "node:net"
import { program, type TelemetryResult } from "../src/telemetry.js"

/** A port nothing listens on now, for the example's scrape endpoint. */
const freePort = Effect.async<number>((resume) => {
  const server = createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

const check = (result: TelemetryResult) => {
  // Three appends in the histogram, with a bucket per boundary up to +Inf, from a real scrape.
  assert.strictEqual(result.appends, 3)
  assert.isTrue(result.histogram.some((line) => /_bucket\{.*outcome="ok".*le="\+Inf"\} \d+$/.test(line)))
  assert.isTrue(result.histogram.some((line) => line.startsWith("eventfold_append_duration_seconds_sum{")))
  assert.strictEqual(result.histogram.filter((line) => line.includes("_bucket{")).length, 15)
  // The command's trace: the load's read and the append under the command's span (PostgreSQL adds its statements).
  assert.deepStrictEqual(
    result.trace.filter((line) => !line.trim().startsWith("sql.")),
    ["CommandHandler.handle", "  EventStore.readStream", "  EventStore.append"]
  )
  assert.isTrue(result.linked)
}

describe("the telemetry example", () => {
  it.live("runs in memory", () =>
    Effect.flatMap(freePort, (port) => program({ port })).pipe(
      Effect.map(check),
      Effect.provide(MemoryEventfold.layer())
    ))

  it.live(`runs on PostgreSQL as the application role (${PgTest.serverLabel()})`, () =>
    Effect.flatMap(freePort, (port) => program({ port })).pipe(
      Effect.map(check),
      Effect.provide(PgTest.layerEventfold())
    ))
})

describe("the README's telemetry recipe", () => {
  it("is the example's code", () => {
    const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8")
    const source = readFileSync(new URL("../src/telemetry.ts", import.meta.url), "utf8")
    const recipe = /export const otlp = [\s\S]*?\n\}\)\)\n/.exec(readme)?.[0]
    assert.isDefined(recipe)
    assert.include(source, recipe!)
  })
})
