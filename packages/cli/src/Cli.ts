/**
 * The `eventfold` command: its subcommands, and `run`, which runs a command line and returns the process's exit code.
 *
 * Exit codes: 0 when the command succeeded; 1 when it failed (bad usage, configuration, a database error); 2 when it
 * ran and found problems (`status`: pending migrations, dead letters, stopped subscriptions, failed outbox rows, lag
 * above `--max-lag`; `subscriptions dead-letters`: any dead letter; `outbox stats`: any failed row).
 *
 * @since 0.4.0
 */
import type * as CliApp from "@effect/cli/CliApp"
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as ValidationError from "@effect/cli/ValidationError"
import * as Cause from "effect/Cause"
import * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { createRequire } from "node:module"
import * as WebConsole from "./Console.js"
import * as Migrate from "./internal/commands/migrate.js"
import * as Outbox from "./internal/commands/outbox.js"
import * as Snapshots from "./internal/commands/snapshots.js"
import * as Status from "./internal/commands/status.js"
import * as Streams from "./internal/commands/streams.js"
import * as Subscriptions from "./internal/commands/subscriptions.js"
import * as Output from "./internal/output.js"
import { ProblemsFound } from "./internal/shared.js"

/**
 * The exit codes `run` returns.
 *
 * @since 0.4.0
 * @category constants
 */
export const ExitCode = {
  /** The command succeeded. */
  ok: 0,
  /** The command failed: bad usage, configuration, or a database error. */
  failed: 1,
  /** The command ran and found problems (see the module's documentation). */
  problems: 2
} as const

/**
 * The version of this package (the CLI's `--version`).
 *
 * @since 0.4.0
 * @category constants
 */
export const version: string = (createRequire(import.meta.url)("../package.json") as { readonly version: string })
  .version

/**
 * The subcommands of `eventfold`. The web console registers itself here as `console` (`./Console.js`).
 *
 * @since 0.4.0
 * @category commands
 */
export const subcommands = [
  Migrate.command,
  Status.command,
  Streams.command,
  Subscriptions.command,
  Outbox.command,
  Snapshots.command,
  WebConsole.command
] as const

/**
 * The root command.
 *
 * @since 0.4.0
 * @category commands
 */
export const command = Command.make("eventfold").pipe(
  Command.withDescription("Operate an eventfold event store on PostgreSQL."),
  Command.withSubcommands(subcommands)
)

const footer = HelpDoc.blocks([
  HelpDoc.h2("CONFIGURATION"),
  HelpDoc.p(
    "The same environment variables as the library: DATABASE_URL (required), EVENTFOLD_SCHEMA (default \"eventfold\"; " +
      "--schema overrides it), EVENTFOLD_ROW_LEVEL_SECURITY, and the pool settings EVENTFOLD_PG_* (EVENTFOLD_PG_SSL, " +
      "EVENTFOLD_PG_SSL_CA, EVENTFOLD_PG_CONNECT_TIMEOUT, EVENTFOLD_PG_STATEMENT_TIMEOUT, ...)."
  ),
  HelpDoc.h2("EXIT CODES"),
  HelpDoc.p(
    "0: success. 1: failure (bad usage, configuration, a database error). 2: the command ran and found problems " +
      "(status: pending migrations, dead letters, stopped subscriptions, failed outbox rows, lag above --max-lag; " +
      "subscriptions dead-letters: any dead letter; outbox stats: any failed row)."
  )
])

const cli = Command.run(command, {
  name: "eventfold",
  version,
  footer
})

const describe = (error: unknown): string => {
  if (ConfigError.isConfigError(error)) {
    return `configuration: ${error.toString()}. Set DATABASE_URL=postgres://user:password@host:5432/database ` +
      "(and EVENTFOLD_SCHEMA when not \"eventfold\")"
  }
  if (error instanceof Error || (typeof error === "object" && error !== null && "message" in error)) {
    const message = String((error as { readonly message: unknown }).message)
    return message.length > 0 ? message : String(error)
  }
  return String(error)
}

/**
 * Runs a command line (the arguments after `eventfold`) and returns its exit code (`ExitCode`); errors are printed
 * on standard error, never thrown.
 *
 * @since 0.4.0
 * @category running
 */
export const run = (args: ReadonlyArray<string>): Effect.Effect<number, never, CliApp.CliApp.Environment> =>
  cli(["node", "eventfold", ...args]).pipe(
    Effect.as(ExitCode.ok),
    Effect.catchAllCause((cause) => {
      const failure = Cause.failureOption(cause)
      if (Option.isSome(failure)) {
        const error: unknown = failure.value
        if (error instanceof ProblemsFound) return Effect.succeed(ExitCode.problems)
        // @effect/cli printed the usage error already.
        if (ValidationError.isValidationError(error)) return Effect.succeed(ExitCode.failed)
        return Effect.as(Output.printError(`error: ${describe(error)}`), ExitCode.failed)
      }
      if (Cause.isInterruptedOnly(cause)) return Effect.succeed(ExitCode.ok)
      return Effect.as(Output.printError(`error: ${Cause.pretty(cause)}`), ExitCode.failed)
    })
  )
