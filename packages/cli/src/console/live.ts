/**
 * The live feed as server-sent events: pages of `Admin.feed` read from a position on; while the feed is quiet, the
 * next read waits for an append's hint (`Admin.feedHints`), or the poll interval at most, and re-reads quickly after
 * a hint whose events the feed horizon still hid (`FeedNotifier.follower`). Each message's id is the feed position after it, so a browser that reconnects (`Last-Event-ID`) resumes
 * where it stopped, never skipping an event.
 *
 * @since 0.4.0
 */
import * as FeedNotifier from "@eventfold/core/FeedNotifier"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as Admin from "../Admin.js"

/**
 * @since 0.4.0
 * @category models
 */
export interface Options {
  /** Events strictly after this position. */
  readonly after: Admin.FeedPosition
  readonly tenantId?: string | undefined
  readonly streamTypes?: ReadonlyArray<string> | undefined
  /** The longest wait for a hint before reading again, when the last page was not full. */
  readonly pollInterval: Duration.DurationInput
  /** Events per page (and per message). */
  readonly pageSize: number
  /** How often to send a comment that keeps proxies from closing a quiet connection. */
  readonly keepAlive: Duration.DurationInput
}

const encoder = new TextEncoder()

/**
 * One server-sent event. `data` is JSON, which has no raw line breaks, so it always fits on one `data:` line.
 *
 * @since 0.4.0
 * @category encoding
 */
export const message = (event: string, data: unknown, id?: string): Uint8Array =>
  encoder.encode(`${id === undefined ? "" : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`)

interface Cursor {
  readonly after: Admin.FeedPosition
  /** The last page was full: read again at once. */
  readonly full: boolean
  /** The last read returned events. */
  readonly found: boolean
  /** The last read failed: the next waits the whole poll interval (not a hint's quick re-reads). */
  readonly failed: boolean
}

/**
 * The event stream: `ready` (with the start position) first, then one `events` message per non-empty page, a
 * `problem` message when a read fails (it is retried after `pollInterval`), and keep-alive comments.
 *
 * @since 0.4.0
 * @category streams
 */
export const events = (admin: Admin.Admin["Type"], options: Options): Stream.Stream<Uint8Array> => {
  const poll = Duration.decode(options.pollInterval)
  const initial: Cursor = { after: options.after, full: true, found: false, failed: false }
  // Subscribed before the first read, so no append's hint falls between a read and the wait after it.
  const pages = Stream.unwrapScoped(Effect.map(admin.feedHints, (hints) => {
    const wait = FeedNotifier.follower(hints, poll)
    return Stream.unfoldEffect(
      initial,
      (cursor) =>
        Effect.gen(function*() {
          if (cursor.failed) yield* Effect.sleep(poll)
          else if (!cursor.full) yield* wait(cursor.found)
          return yield* admin.feed({
            after: cursor.after,
            limit: options.pageSize,
            tenantId: options.tenantId,
            streamTypes: options.streamTypes
          }).pipe(
            Effect.map((page) =>
              Option.some<readonly [Uint8Array, Cursor]>(
                [
                  page.events.length === 0
                    ? new Uint8Array()
                    : message("events", page.events, Admin.formatPosition(page.next)),
                  {
                    after: page.next,
                    full: page.events.length >= options.pageSize,
                    found: page.events.length > 0,
                    failed: false
                  }
                ] as const
              )
            ),
            Effect.catchAll((error) =>
              Effect.succeed(
                Option.some<readonly [Uint8Array, Cursor]>(
                  [message("problem", { _tag: error._tag, message: error.message }), {
                    after: cursor.after,
                    full: false,
                    found: false,
                    failed: true
                  }] as const
                )
              )
            )
          )
        })
    )
  })).pipe(Stream.filter((chunk) => chunk.length > 0))
  const keepAlive = Stream.map(Stream.tick(options.keepAlive), () => encoder.encode(": keep-alive\n\n"))
  const ready = Stream.succeed(
    encoder.encode(
      `retry: 2000\nid: ${Admin.formatPosition(options.after)}\nevent: ready\ndata: ${
        JSON.stringify({ after: options.after })
      }\n\n`
    )
  )
  return Stream.concat(ready, Stream.merge(pages, keepAlive, { haltStrategy: "left" }))
}
