/** @internal What every command shares: `--json`, `--schema`, the Admin service from the environment, exit codes. */
import * as Options from "@effect/cli/Options"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Admin from "../Admin.js"

/**
 * @internal A command ran and found something wrong (dead letters, failed outbox rows, pending migrations): exit
 * code 2. What it found is printed already.
 */
export class ProblemsFound extends Data.TaggedError("ProblemsFound")<{ readonly count: number }> {}

/** @internal Fails with `ProblemsFound` when `count` is above 0. */
export const problemsIf = (count: number): Effect.Effect<void, ProblemsFound> =>
  count > 0 ? Effect.fail(new ProblemsFound({ count })) : Effect.void

/** @internal `--json`: print JSON instead of tables. */
export const json = Options.boolean("json").pipe(Options.withDescription("Print JSON instead of tables (for scripts)"))

/** @internal `--schema`: the eventfold schema; overrides EVENTFOLD_SCHEMA. */
export const schema = Options.text("schema").pipe(
  Options.withDescription(
    "The PostgreSQL schema of eventfold's tables (default: EVENTFOLD_SCHEMA, else \"eventfold\")"
  ),
  Options.optional
)

/** @internal `--tenant`. */
export const tenant = (description: string) =>
  Options.text("tenant").pipe(Options.withDescription(description), Options.optional)

/** @internal `--limit`. */
export const limit = (fallback: number, description: string) =>
  Options.integer("limit").pipe(Options.withDescription(description), Options.withDefault(fallback))

/** @internal The common options of every command that reads the store. */
export const common = { json, schema } as const

/** @internal Runs `f` with the Admin service, configured from the environment like the library (`--schema` wins). */
export const withAdmin = <A, E, R>(
  schemaOption: Option.Option<string>,
  f: (admin: Admin.Admin["Type"]) => Effect.Effect<A, E, R>
) =>
  Effect.flatMap(Admin.Admin, f).pipe(
    Effect.provide(Admin.layerConfig({ schema: Option.getOrUndefined(schemaOption) }))
  )

/** @internal An `Option` of an option value as `T | undefined`, for the Admin's optional fields. */
export const orUndefined = <A>(option: Option.Option<A>): A | undefined => Option.getOrUndefined(option)

/** @internal Indents every line by two spaces. */
export const indent = (text: string): string => text.split("\n").map((line) => `  ${line}`).join("\n")
