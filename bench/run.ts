/**
 * The benchmark runner (`npm run bench [filter]`): finds `bench/src/*.bench.ts`, gets a PostgreSQL server
 * (`DATABASE_URL`, else a throwaway embedded one) and runs the benchmarks whose file name contains the filter, one
 * after another. Each benchmark makes and drops its own database.
 *
 * @since 0.1.0
 */
import { NodeRuntime } from "@effect/platform-node"
import * as PgDatabase from "@eventfold/postgres/PgDatabase"
import * as PgEmbedded from "@eventfold/postgres/PgEmbedded"
import * as Console from "effect/Console"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as url from "node:url"
import { describeServer } from "./src/util.js"

/**
 * What every `bench/src/<name>.bench.ts` exports.
 *
 * @since 0.1.0
 * @category models
 */
export interface BenchModule {
  readonly main: (ctx: { readonly serverUrl: string }) => Promise<void>
}

const isBenchModule = (u: unknown): u is BenchModule =>
  typeof u === "object" && u !== null && "main" in u && typeof u.main === "function"

const benchDir = path.join(path.dirname(url.fileURLToPath(import.meta.url)), "src")

/** A benchmark run that did not complete: nothing matched the filter, or a benchmark threw. */
class BenchFailed extends Data.TaggedError("BenchFailed")<{ readonly message: string }> {}

const program = Effect.gen(function*() {
  const filter = process.argv[2]
  const files = fs.readdirSync(benchDir)
    .filter((file) => file.endsWith(".bench.ts") && (!filter || file.includes(filter)))
    .sort()
  if (files.length === 0) {
    return yield* Effect.fail(
      new BenchFailed({ message: `no benchmark in bench/src matches ${JSON.stringify(filter ?? "")}` })
    )
  }

  const fromEnv = process.env.DATABASE_URL
  const serverUrl = fromEnv ?? (yield* PgEmbedded.start()).url
  const server = yield* Effect.promise(() => describeServer(serverUrl).catch((e) => `unreachable: ${String(e)}`))
  yield* Console.log(
    `server: ${fromEnv ? `DATABASE_URL ${PgDatabase.describe(fromEnv)}` : "embedded PostgreSQL"} (${server})`
  )
  yield* Console.log(`benchmarks: ${files.join(", ")}`)

  const failed: Array<string> = []
  for (const file of files) {
    yield* Console.log(`\n== ${file} ==`)
    const started = performance.now()
    const outcome = yield* Effect.tryPromise(async () => {
      const mod: unknown = await import(url.pathToFileURL(path.join(benchDir, file)).href)
      if (!isBenchModule(mod)) throw new Error(`${file} does not export main(ctx): Promise<void>`)
      await mod.main({ serverUrl })
    }).pipe(Effect.either)
    const seconds = ((performance.now() - started) / 1000).toFixed(1)
    if (outcome._tag === "Left") {
      failed.push(file)
      yield* Console.error(`${file} failed after ${seconds} s:`, outcome.left.error)
    } else {
      yield* Console.log(`${file} done in ${seconds} s`)
    }
  }
  if (failed.length > 0) return yield* Effect.fail(new BenchFailed({ message: `failed: ${failed.join(", ")}` }))
})

// runMain closes the scope (stopping an embedded server) on completion, failure and Ctrl-C, and sets the exit code.
NodeRuntime.runMain(Effect.scoped(program))
