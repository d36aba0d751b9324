/** @internal `eventfold outbox stats | retry | purge`. */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Errors from "@eventfold/core/Errors"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Output from "../output.js"
import * as Shared from "../shared.js"
import { outboxFields } from "./status.js"

const stats = Command.make(
  "stats",
  { ...Shared.common, limit: Shared.limit(20, "List at most this many failed rows (1 to 10000)") },
  ({ json, limit, schema }) =>
    Shared.withAdmin(schema, (admin) =>
      Effect.gen(function*() {
        const stats = yield* admin.outboxStats
        const failures = yield* admin.outboxFailures({ limit })
        yield* json ? Output.json({ ...stats, failures }) : Output.print(
          [
            Output.fields(outboxFields(stats)),
            ...(failures.length === 0 ? [] : [
              "",
              `Failed rows${stats.failed > failures.length ? ` (first ${failures.length} of ${stats.failed})` : ""}`,
              Shared.indent(Output.table(failures, [
                { header: "ID", cell: (f) => f.id, numeric: true },
                { header: "EVENT", cell: (f) => f.eventId },
                { header: "TENANT", cell: (f) => f.tenantId },
                { header: "STREAM", cell: (f) => `${f.streamType}/${f.streamId}` },
                { header: "VERSION", cell: (f) => String(f.version), numeric: true },
                { header: "TYPE", cell: (f) => f.eventType },
                { header: "RETRIES", cell: (f) => String(f.retryCount), numeric: true },
                { header: "CREATED", cell: (f) => Output.time(f.createdAt) },
                { header: "LAST ERROR", cell: (f) => f.lastError ?? "-" }
              ]))
            ])
          ].join("\n")
        )
        yield* Shared.problemsIf(stats.failed)
      }))
).pipe(
  Command.withDescription(
    "Show the outbox backlog (pending rows, the oldest one's age), published rows, and the failed rows with their " +
      "last errors. Exit code 2 when rows have failed."
  )
)

const retry = Command.make(
  "retry",
  {
    ...Shared.common,
    streamType: Options.text("type").pipe(
      Options.withDescription("Only rows of streams of this type"),
      Options.optional
    ),
    streamId: Options.text("id").pipe(
      Options.withDescription("Only rows of this stream (needs --type)"),
      Options.optional
    )
  },
  ({ json, schema, streamId, streamType }) =>
    Shared.withAdmin(schema, (admin) =>
      Effect.flatMap(
        admin.retryOutbox({ streamType: Shared.orUndefined(streamType), streamId: Shared.orUndefined(streamId) }),
        (retried) =>
          json
            ? Output.json({ retried })
            : Output.print(`Set ${Output.count(retried)} failed outbox row(s) back to pending`)
      ))
).pipe(
  Command.withDescription(
    "Set failed outbox rows back to pending (retry count reset), so the relay publishes them again, in stream order."
  )
)

const purge = Command.make(
  "purge",
  {
    ...Shared.common,
    olderThan: Options.text("older-than").pipe(
      Options.withDescription("Only rows published longer ago than this (\"7 days\", \"12 hours\"); default: all"),
      Options.optional
    )
  },
  ({ json, olderThan, schema }) =>
    Shared.withAdmin(schema, (admin) =>
      Effect.gen(function*() {
        const age = Option.isNone(olderThan) ? undefined : Duration.decodeUnknown(olderThan.value)
        if (Option.isSome(olderThan) && (age === undefined || Option.isNone(age) || !Duration.isFinite(age.value))) {
          return yield* new Errors.InvalidInput({
            reason: `--older-than must be a duration such as "7 days" or "12 hours", got ${
              JSON.stringify(Option.getOrElse(olderThan, () => "")).slice(0, 80)
            }`
          })
        }
        const purged = yield* admin.purgeOutbox({
          olderThan: age === undefined ? undefined : Option.getOrUndefined(age)
        })
        yield* json ? Output.json({ purged }) : Output.print(`Deleted ${Output.count(purged)} published outbox row(s)`)
      }))
).pipe(Command.withDescription("Delete published outbox rows (all, or those published longer ago than --older-than)."))

/** @internal */
export const command = Command.make("outbox").pipe(
  Command.withDescription("The transactional outbox: backlog, failures, retries and cleanup."),
  Command.withSubcommands([stats, retry, purge])
)
