/** @internal `eventfold status`: the health of the store; exit code 2 when it finds problems. */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Admin from "../../Admin.js"
import * as Output from "../output.js"
import * as Shared from "../shared.js"

const maxLag = Options.integer("max-lag").pipe(
  Options.withDescription("Count a subscription more than this many events behind the head as a problem"),
  Options.optional
)

/** @internal The subscriptions table of `status` and `subscriptions list`. */
export const subscriptionsTable = (subscriptions: ReadonlyArray<Admin.Subscription>): string =>
  Output.table(subscriptions, [
    { header: "SUBSCRIPTION", cell: (s) => s.subscription },
    { header: "TENANT", cell: (s) => s.tenantId },
    { header: "POSITION", cell: (s) => Admin.formatPosition(s.position) },
    { header: "LAG", cell: (s) => Output.count(s.lag), numeric: true },
    { header: "STATUS", cell: (s) => s.status },
    { header: "OWNER", cell: (s) => (s.owner === null ? "-" : s.running ? s.owner : `${s.owner} (lease expired)`) },
    { header: "UPDATED", cell: (s) => Output.time(s.updatedAt) },
    { header: "DEAD LETTERS", cell: (s) => String(s.deadLetters), numeric: true }
  ])

/** @internal The outbox lines of `status` and `outbox stats`. */
export const outboxFields = (stats: Admin.OutboxStats): ReadonlyArray<readonly [string, string]> => [
  ["pending", Output.count(stats.pending)],
  ["oldest pending", stats.oldestPendingMs === null ? "-" : Output.seconds(stats.oldestPendingMs / 1000)],
  ["failed", Output.count(stats.failed)],
  ["published", Output.count(stats.published)],
  ["last error", stats.lastError ?? "-"]
]

const render = (status: Admin.Status): string => {
  const m = status.migrations
  const head = [
    Output.fields([
      ["server", `PostgreSQL ${status.server.version}, database ${status.server.database}, user ${status.server.user}`],
      ["schema", status.schema],
      [
        "migrations",
        m.tracked
          ? `${m.applied.length} applied${
            m.applied.length > 0
              ? ` (latest ${Output.migration(m.applied[m.applied.length - 1]!)})`
              : ""
          }, ${m.pending.length} pending`
          : "not tracked (no migrations table: the schema was built with psql)"
      ],
      [
        "events",
        status.events === null ? "-" : `${Output.count(status.events)}${status.eventsEstimated ? " (estimate)" : ""}`
      ],
      [
        "streams",
        status.streams === null
          ? "-"
          : `${Output.count(status.streams)}${status.streamsEstimated ? " (estimate)" : ""}`
      ],
      ["feed head", status.head === null ? "-" : Admin.formatPosition(status.head)]
    ])
  ]
  const sections = [
    head.join("\n"),
    `Subscriptions\n${Shared.indent(subscriptionsTable(status.subscriptions))}`,
    `Outbox\n${status.outbox === null ? "  -" : Shared.indent(Output.fields(outboxFields(status.outbox)))}`,
    status.problems.length === 0
      ? "No problems found."
      : `Problems (${status.problems.length})\n${status.problems.map((p) => `  ! ${p.message}`).join("\n")}`
  ]
  return sections.join("\n\n")
}

/** @internal */
export const command = Command.make(
  "status",
  { ...Shared.common, maxLag },
  ({ json, maxLag, schema }) =>
    Shared.withAdmin(schema, (admin) =>
      Effect.gen(function*() {
        const status = yield* admin.status({ maxLag: Option.getOrUndefined(maxLag) })
        yield* json ? Output.json(status) : Output.print(render(status))
        yield* Shared.problemsIf(status.problems.length)
      }))
).pipe(
  Command.withDescription(
    "Show the server, the schema's migrations, event and stream counts, the feed head, every subscription's " +
      "position, lag, owner and dead letters, and the outbox. Exit code 2 when it finds problems: pending " +
      "migrations, dead letters, stopped subscriptions, failed outbox rows, or lag above --max-lag."
  )
)
