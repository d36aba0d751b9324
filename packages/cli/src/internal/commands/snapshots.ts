/** @internal `eventfold snapshots clear <type> [id]`. */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Output from "../output.js"
import * as Shared from "../shared.js"

const clear = Command.make(
  "clear",
  {
    ...Shared.common,
    streamType: Args.text({ name: "type" }).pipe(Args.withDescription("The stream type whose snapshots to delete")),
    streamId: Args.text({ name: "id" }).pipe(Args.withDescription("Only this stream's snapshot"), Args.optional),
    tenant: Shared.tenant("Only this tenant's snapshots")
  },
  ({ json, schema, streamId, streamType, tenant }) =>
    Shared.withAdmin(schema, (admin) =>
      Effect.flatMap(
        admin.clearSnapshots({
          streamType,
          streamId: Option.getOrUndefined(streamId),
          tenantId: Shared.orUndefined(tenant)
        }),
        (cleared) =>
          json ? Output.json({ cleared }) : Output.print(
            `Deleted ${Output.count(cleared)} snapshot(s) of ${streamType}${
              Option.isSome(streamId) ? `/${streamId.value}` : ""
            }; the next loads fold the events again`
          )
      ))
).pipe(
  Command.withDescription(
    "Delete the snapshots of a stream type, or of one stream (after a bug in a fold or a state schema change). " +
      "Events stay the truth: the next load folds them and writes new snapshots."
  )
)

/** @internal */
export const command = Command.make("snapshots").pipe(
  Command.withDescription("Snapshots: the cache of aggregate state."),
  Command.withSubcommands([clear])
)
