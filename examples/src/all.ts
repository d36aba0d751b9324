/**
 * `npm run examples`: every capability example, each in its own process as its `npm run example:<name>` runs it,
 * one after another, on `DATABASE_URL` or on one embedded PostgreSQL started for all of them. Prints a summary and
 * exits non-zero when any example failed.
 */
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import * as Command from "@effect/platform/Command"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { fileURLToPath } from "node:url"
import { database } from "./run.js"

/** The examples, in the order they run; each is `examples/src/<name>.ts`, started by `npm run example:<name>`. */
export const examples: ReadonlyArray<string> = [
  "snapshots",
  "outbox",
  "projection",
  "configuration",
  "idempotency",
  "transactions",
  "tenancy",
  "tenantMove",
  "evolution",
  "lifecycle",
  "telemetry"
]

/** Some examples exited non-zero. */
export class ExamplesFailed extends Schema.TaggedError<ExamplesFailed>()("ExamplesFailed", {
  failed: Schema.Array(Schema.String)
}) {
  override get message(): string {
    return `examples failed: ${this.failed.join(", ")}`
  }
}

const repositoryRoot = fileURLToPath(new URL("../..", import.meta.url))

const runOne = (name: string, databaseUrl: string) =>
  Effect.gen(function*() {
    yield* Console.log(`\n--- npm run example:${name} ---`)
    const file = fileURLToPath(new URL(`./${name}.ts`, import.meta.url))
    const [elapsed, exitCode] = yield* Command.make(
      process.execPath,
      "--conditions=@eventfold/source",
      "--import",
      "tsx",
      file
    ).pipe(
      Command.workingDirectory(repositoryRoot),
      Command.env({ DATABASE_URL: databaseUrl }),
      Command.stdout("inherit"),
      Command.stderr("inherit"),
      Command.exitCode,
      Effect.timed
    )
    return { name, ok: exitCode === 0, detail: exitCode === 0 ? "ok" : `exit code ${exitCode}`, elapsed }
  })

const main = Effect.gen(function*() {
  const url = Redacted.value(yield* database)
  const results = yield* Effect.forEach(examples, (name) => runOne(name, url))
  yield* Console.log("\n== examples ==")
  for (const r of results) {
    yield* Console.log(
      `   ${r.name.padEnd(14)} ${r.detail.padEnd(12)} ${(Duration.toMillis(r.elapsed) / 1000).toFixed(1)}s`
    )
  }
  const failed = results.filter((r) => !r.ok).map((r) => r.name)
  yield* Console.log(`${results.length - failed.length} passed, ${failed.length} failed`)
  if (failed.length > 0) return yield* new ExamplesFailed({ failed })
}).pipe(Effect.scoped, Effect.provide(NodeContext.layer))

NodeRuntime.runMain(main)
