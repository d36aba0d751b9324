/** @internal `eventfold migrate`: apply the pending migrations, or print their SQL with `--dry-run`. */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Output from "../output.js"
import * as Shared from "../shared.js"

const dryRun = Options.boolean("dry-run").pipe(
  Options.withDescription("Print the SQL of the pending migrations instead of applying them")
)

/** @internal */
export const command = Command.make(
  "migrate",
  { ...Shared.common, dryRun },
  ({ dryRun, json, schema }) =>
    Shared.withAdmin(schema, (admin) =>
      dryRun
        ? Effect.flatMap(admin.migrationPlan, (plan) =>
          json
            ? Output.json(plan)
            : Output.print(
              plan.pending.length === 0
                ? `-- schema "${plan.schema}" is up to date: no migration pending`
                : plan.pending.map((m) =>
                  `-- eventfold migration ${Output.migration(m)} (schema "${plan.schema}")\n${m.sql}`
                )
                  .join("\n\n")
            ))
        : Effect.flatMap(admin.migrate, (applied) =>
          json
            ? Output.json({ schema: admin.schema, applied })
            : Output.print(
              applied.length === 0
                ? `Schema "${admin.schema}" is up to date: no migration pending`
                : `Applied ${applied.length} migration(s) to schema "${admin.schema}": ${
                  applied.map(Output.migration).join(", ")
                }`
            )))
).pipe(
  Command.withDescription(
    "Apply eventfold's pending migrations to the schema (--dry-run prints their SQL instead). Needs the rights of " +
      "the schema's owner. Safe to run twice and from several processes."
  )
)
