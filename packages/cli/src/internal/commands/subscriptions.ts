/** @internal `eventfold subscriptions list | reset | dead-letters | retry | park`. */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as Admin from "../../Admin.js"
import * as Output from "../output.js"
import * as Shared from "../shared.js"
import { subscriptionsTable } from "./status.js"

const name = Args.text({ name: "subscription" }).pipe(Args.withDescription("The subscription's name (its id)"))
const tenant = Shared.tenant(
  "The subscription's tenant scope (\"*\" for one over every tenant); needed only when it runs in several"
)

const list = Command.make(
  "list",
  { ...Shared.common },
  ({ json, schema }) =>
    Shared.withAdmin(
      schema,
      (admin) =>
        Effect.flatMap(admin.subscriptions, (subs) => json ? Output.json(subs) : Output.print(subscriptionsTable(subs)))
    )
).pipe(
  Command.withDescription(
    "List every subscription's checkpoint: position, lag behind the feed head (approximate), status, owner and " +
      "lease, dead letters."
  )
)

const moveText = (verb: string, move: Admin.CheckpointMove) =>
  `${verb} ${move.subscription}${move.tenantId === "*" ? "" : ` (tenant ${move.tenantId})`}: checkpoint ${
    Admin.formatPosition(move.from)
  } -> ${Admin.formatPosition(move.to)} (feed head ${Admin.formatPosition(move.head)})`

const progressLine = (p: Admin.RebuildProgress) =>
  [
    Output.bar(Number(p.done), Number(p.total)),
    `${Output.count(p.done)}/${Output.count(p.total)} events`,
    `${Output.count(Math.round(p.rate))} events/s`,
    p.finished ? "done" : p.etaSeconds === null ? "time left unknown" : `${Output.seconds(p.etaSeconds)} left`,
    ...(p.owner === null && !p.finished ? ["(not running: start the application that runs it)"] : [])
  ].join("  ")

const reset = Command.make(
  "reset",
  {
    ...Shared.common,
    name,
    tenant,
    to: Options.text("to").pipe(
      Options.withDescription(
        "Where to move the checkpoint: beginning (a rebuild), end, or transactionId:globalPosition"
      ),
      Options.withDefault("beginning")
    ),
    truncate: Options.text("truncate").pipe(
      Options.withDescription(
        "A read-model table (table or schema.table) to empty in the same transaction, so the projection rebuilds " +
          "from nothing (repeatable)"
      ),
      Options.repeated
    ),
    noWait: Options.boolean("no-wait").pipe(
      Options.withDescription("Return at once instead of following the rebuild's progress")
    ),
    interval: Options.integer("interval").pipe(
      Options.withDescription("Milliseconds between progress samples"),
      Options.withDefault(1000)
    )
  },
  ({ interval, json, name, noWait, schema, tenant, to, truncate }) =>
    Shared.withAdmin(schema, (admin) =>
      Effect.gen(function*() {
        const target: Admin.ResetTarget = to === "beginning" || to === "end"
          ? to
          : Admin.formatPositionJson(yield* Admin.parsePosition(to))
        const tenantId = Shared.orUndefined(tenant)
        const move = yield* admin.resetSubscription({ subscription: name, tenantId, to: target, truncate })
        if (noWait) {
          return yield* json ? Output.json(move) : Output.print(
            `${moveText("Reset", move)}; ${Output.count(move.events)} event(s) to replay` +
              (truncate.length === 0 ? "" : `; emptied ${truncate.join(", ")}`)
          )
        }
        yield* json ? Output.jsonLine(move) : Output.print(
          `${moveText("Reset", move)}; ${Output.count(move.events)} event(s) to replay` +
            (truncate.length === 0 ? "" : `; emptied ${truncate.join(", ")}`)
        )
        const tty = !json && process.stdout.isTTY === true
        let first = true
        yield* admin.rebuildProgress({
          subscription: move.subscription,
          tenantId: move.tenantId,
          target: move.head,
          from: move.to,
          interval: Math.max(50, interval)
        }).pipe(
          Stream.runForEach((p) => {
            if (json) return Output.jsonLine(p)
            // On a terminal the bar is redrawn in place; in a pipe each sample is a line.
            const line = tty && !first ? `\u001b[1A\u001b[2K${progressLine(p)}` : progressLine(p)
            first = false
            return Output.print(line)
          })
        )
      }))
).pipe(
  Command.withDescription(
    "Move a subscription's checkpoint (to the beginning by default: rebuild a projection) and follow the rebuild " +
      "(events done, rate, time left) as the application's running subscription replays. The CLI moves the " +
      "checkpoint; the application does the work. --truncate empties read-model tables in the same transaction."
  )
)

const deadLetters = Command.make(
  "dead-letters",
  {
    ...Shared.common,
    name: Args.text({ name: "subscription" }).pipe(
      Args.withDescription("Only this subscription's dead letters"),
      Args.optional
    ),
    limit: Shared.limit(1000, "At most this many (1 to 10000)")
  },
  ({ json, limit, name, schema }) =>
    Shared.withAdmin(schema, (admin) =>
      Effect.gen(function*() {
        const letters = yield* admin.deadLetters({ subscription: Option.getOrUndefined(name), limit })
        yield* json ? Output.json(letters) : Output.print(
          Output.table(letters, [
            { header: "SUBSCRIPTION", cell: (d) => d.subscription },
            { header: "TENANT", cell: (d) => d.tenantId },
            { header: "EVENT", cell: (d) => d.eventId },
            { header: "TYPE", cell: (d) => d.eventType },
            { header: "STREAM", cell: (d) => `${d.streamType}/${d.streamId}` },
            { header: "POSITION", cell: (d) => Admin.formatPosition(d.position) },
            { header: "ATTEMPTS", cell: (d) => String(d.attempts), numeric: true },
            { header: "PARKED", cell: (d) => Output.time(d.parkedAt) },
            { header: "ERROR", cell: (d) => d.error }
          ])
        )
        yield* Shared.problemsIf(letters.length)
      }))
).pipe(
  Command.withDescription("List the events subscriptions parked (dead letters). Exit code 2 when there are any.")
)

const retry = Command.make(
  "retry",
  {
    ...Shared.common,
    name,
    eventId: Args.text({ name: "event-id" }).pipe(Args.withDescription("The parked event's id")),
    tenant
  },
  ({ eventId, json, name, schema, tenant }) =>
    Shared.withAdmin(schema, (admin) =>
      Effect.flatMap(
        admin.retryDeadLetter({ subscription: name, tenantId: Shared.orUndefined(tenant), eventId }),
        (move) =>
          json ? Output.json(move) : Output.print(
            `${moveText("Retrying", move)}; event ${eventId} and ${
              Output.count(BigInt(move.events) > 0n ? (BigInt(move.events) - 1n).toString() : "0")
            } later event(s) will be delivered again`
          )
      ))
).pipe(
  Command.withDescription(
    "Deliver a parked event again: the dead letter is removed and the checkpoint moves back to just before the " +
      "event, so the running subscription replays it (and the events after it that it had handled: its handler " +
      "must tolerate redelivery). It is parked again if it fails again."
  )
)

const park = Command.make(
  "park",
  {
    ...Shared.common,
    name,
    eventId: Args.text({ name: "event-id" }).pipe(
      Args.withDescription("The event to park; default: the first event after the checkpoint"),
      Args.optional
    ),
    tenant,
    reason: Options.text("reason").pipe(
      Options.withDescription("Stored as the dead letter's error (default \"parked by an operator\")"),
      Options.optional
    ),
    force: Options.boolean("force").pipe(
      Options.withDescription("Park even when other events lie between the checkpoint and the event (they are skipped)")
    )
  },
  ({ eventId, force, json, name, reason, schema, tenant }) =>
    Shared.withAdmin(schema, (admin) =>
      Effect.flatMap(
        admin.parkDeadLetter({
          subscription: name,
          tenantId: Shared.orUndefined(tenant),
          eventId: Option.getOrUndefined(eventId),
          reason: Option.getOrUndefined(reason),
          force
        }),
        (parked) =>
          json ? Output.json(parked) : Output.print(
            `${
              moveText("Parked", parked)
            }; event ${parked.deadLetter.eventId} (${parked.deadLetter.eventType}, ${parked.deadLetter.streamType}/${parked.deadLetter.streamId}) is a dead letter now` +
              (BigInt(parked.events) > 1n
                ? `; ${Output.count((BigInt(parked.events) - 1n).toString())} event(s) before it skipped`
                : "")
          )
      ))
).pipe(
  Command.withDescription(
    "Park the event a stopped subscription is stuck on: record it as a dead letter and move the checkpoint past it, " +
      "so the subscription goes on after it when it runs again. Refused when other events lie in between, unless " +
      "--force."
  )
)

/** @internal */
export const command = Command.make("subscriptions").pipe(
  Command.withDescription("Subscriptions and projections: checkpoints, lag, rebuilds and dead letters."),
  Command.withSubcommands([list, reset, deadLetters, retry, park])
)
