/** @internal `eventfold streams list | show | tail`: find streams, read one, follow the feed. */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as FeedNotifier from "@eventfold/core/FeedNotifier"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Admin from "../../Admin.js"
import * as Output from "../output.js"
import * as Shared from "../shared.js"

const streamType = Options.text("type").pipe(Options.withDescription("Only streams of this type"), Options.optional)
const prefix = Options.text("prefix").pipe(
  Options.withDescription("Only streams whose id starts with this text"),
  Options.optional
)

const list = Command.make(
  "list",
  {
    ...Shared.common,
    streamType,
    tenant: Shared.tenant("Only streams of this tenant"),
    prefix,
    limit: Shared.limit(50, "At most this many streams (1 to 1000)")
  },
  ({ json, limit, prefix, schema, streamType, tenant }) =>
    Shared.withAdmin(schema, (admin) =>
      Effect.flatMap(
        admin.streams({
          streamType: Shared.orUndefined(streamType),
          tenantId: Shared.orUndefined(tenant),
          prefix: Shared.orUndefined(prefix),
          limit
        }),
        (page) =>
          json ? Output.json(page) : Output.print(
            Output.table(page.streams, [
              { header: "TENANT", cell: (s) => s.tenantId },
              { header: "TYPE", cell: (s) => s.streamType },
              { header: "ID", cell: (s) => s.streamId },
              { header: "VERSION", cell: (s) => String(s.version), numeric: true },
              { header: "STATE", cell: (s) => s.state },
              { header: "UPDATED", cell: (s) => Output.time(s.updatedAt) }
            ]) + (page.next === null ? "" : `\n(more streams: raise --limit or narrow the filter)`)
          )
      ))
).pipe(Command.withDescription("List streams, filtered by type, tenant and id prefix, in (tenant, type, id) order."))

/** @internal One event as a block of lines: its header, then its payload and metadata as JSON. */
export const eventBlock = (event: Admin.Event): string =>
  [
    `#${event.version}  ${event.type}  (schema ${event.schemaVersion})  position ${
      Admin.formatPosition(event.position)
    }  ${Output.time(event.recordedAt)}  event ${event.eventId}`,
    Output.fields([
      ["  payload", JSON.stringify(event.payload)],
      ["  metadata", JSON.stringify(event.metadata)]
    ])
  ].join("\n")

const show = Command.make(
  "show",
  {
    ...Shared.common,
    streamType: Args.text({ name: "type" }).pipe(Args.withDescription("The stream type")),
    streamId: Args.text({ name: "id" }).pipe(Args.withDescription("The stream id")),
    tenant: Shared.tenant("The stream's tenant (needed only when the id is used in several tenants)"),
    from: Options.integer("from").pipe(Options.withDescription("Start at this version"), Options.optional),
    backward: Options.boolean("backward").pipe(Options.withDescription("Newest first (from the last version down)")),
    limit: Shared.limit(100, "At most this many events (1 to 10000)")
  },
  ({ backward, from, json, limit, schema, streamId, streamType, tenant }) =>
    Shared.withAdmin(schema, (admin) =>
      Effect.flatMap(
        admin.stream({ streamType, streamId, tenantId: Shared.orUndefined(tenant) }, {
          fromVersion: Shared.orUndefined(from),
          direction: backward ? "backward" : "forward",
          limit
        }),
        (detail) =>
          json ? Output.json(detail) : Output.print(
            [
              Output.fields([
                ["stream", `${detail.stream.streamType}/${detail.stream.streamId} (tenant ${detail.stream.tenantId})`],
                ["version", `${detail.stream.version} (first readable version ${detail.stream.firstVersion})`],
                ["state", detail.stream.state],
                ["created", Output.time(detail.stream.createdAt)],
                ["updated", Output.time(detail.stream.updatedAt)],
                [
                  "snapshot",
                  detail.snapshot === null
                    ? "-"
                    : `version ${detail.snapshot.version} (state schema ${detail.snapshot.schemaVersion}) at ${
                      Output.time(detail.snapshot.createdAt)
                    }`
                ]
              ]),
              "",
              detail.events.length === 0 ? "(no events in range)" : detail.events.map(eventBlock).join("\n\n"),
              ...(detail.nextVersion === null
                ? []
                : ["", `(more events: --from ${detail.nextVersion}${backward ? " --backward" : ""})`])
            ].join("\n")
          )
      ))
).pipe(
  Command.withDescription(
    "Show one stream: its state and snapshot, and its events with payload and metadata (every stored event, also " +
      "of an archived or deleted stream)."
  )
)

/** @internal One event on one line, for `tail`. */
export const eventLine = (event: Admin.Event): string =>
  [
    Output.time(event.recordedAt),
    Admin.formatPosition(event.position),
    event.tenantId,
    `${event.streamType}/${event.streamId}`,
    `v${event.version}`,
    event.type,
    Output.compactJson(event.payload)
  ].join("  ")

const tail = Command.make(
  "tail",
  {
    ...Shared.common,
    follow: Options.boolean("follow").pipe(
      Options.withAlias("f"),
      Options.withDescription("Keep printing new events as they arrive (Ctrl-C stops)")
    ),
    limit: Shared.limit(20, "Print the last this many events first (1 to 10000)"),
    after: Options.text("after").pipe(
      Options.withDescription("Start after this feed position (transactionId:globalPosition) instead"),
      Options.optional
    ),
    streamTypes: Options.text("type").pipe(
      Options.withDescription("Only events of streams of this type (repeatable)"),
      Options.repeated
    ),
    eventTypes: Options.text("event-type").pipe(
      Options.withDescription("Only events of this type (repeatable)"),
      Options.repeated
    ),
    tenant: Shared.tenant("Only events of this tenant"),
    interval: Options.integer("interval").pipe(
      Options.withDescription("With --follow: the longest wait, in milliseconds, before reading the feed again"),
      Options.withDefault(500)
    )
  },
  ({ after, eventTypes, follow, interval, json, limit, schema, streamTypes, tenant }) =>
    Shared.withAdmin(schema, (admin) =>
      Effect.gen(function*() {
        const filters = {
          tenantId: Shared.orUndefined(tenant),
          streamTypes: streamTypes.length === 0 ? undefined : streamTypes,
          eventTypes: eventTypes.length === 0 ? undefined : eventTypes
        }
        const emit = (events: ReadonlyArray<Admin.Event>) =>
          Effect.forEach(events, (e) => (json ? Output.jsonLine(e) : Output.print(eventLine(e))), { discard: true })
        const start = Option.isSome(after) ? yield* Admin.parsePosition(after.value) : undefined
        // Subscribed before the first read: an append's hint wakes the follower, the interval is its longest wait.
        const hints = follow ? yield* admin.feedHints : undefined
        const pause = Duration.millis(Math.max(10, interval))
        const wait = hints === undefined ? () => Effect.sleep(pause) : FeedNotifier.follower(hints, pause)
        let page = yield* admin.feed({
          ...filters,
          ...(start === undefined ? { last: limit } : { after: Admin.formatPositionJson(start), limit })
        })
        yield* emit(page.events)
        if (!follow) return
        while (true) {
          page = yield* admin.feed({ ...filters, after: page.next, limit: 1000 })
          yield* emit(page.events)
          if (page.events.length < 1000) yield* wait(page.events.length > 0)
        }
      }).pipe(Effect.scoped))
).pipe(
  Command.withDescription(
    "Print the last events of the global feed, oldest first; with --follow, keep printing new ones (one JSON " +
      "object per line with --json)."
  )
)

/** @internal */
export const command = Command.make("streams").pipe(
  Command.withDescription("Find streams, read one, and follow the global feed."),
  Command.withSubcommands([list, show, tail])
)
