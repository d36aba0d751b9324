/**
 * The console's own typed refusals, sent to the browser as `{ _tag, message }` with their HTTP status.
 *
 * @since 0.4.0
 */
import * as Schema from "effect/Schema"

/**
 * An admin action came without the configured token, or with another one (HTTP 401).
 *
 * @since 0.4.0
 * @category errors
 */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", {
  reason: Schema.String
}) {
  override get message(): string {
    return `Admin action refused: ${this.reason}`
  }
}

/**
 * An admin action reached a console started without a token (`EVENTFOLD_CONSOLE_TOKEN`): it is read-only (HTTP 403).
 *
 * @since 0.4.0
 * @category errors
 */
export class AdminActionsDisabled extends Schema.TaggedError<AdminActionsDisabled>()("AdminActionsDisabled", {}) {
  override get message(): string {
    return "Admin actions are disabled: this console is read-only. Start it with EVENTFOLD_CONSOLE_TOKEN set to " +
      "allow them"
  }
}

/**
 * A request whose query, headers or body failed validation (HTTP 400).
 *
 * @since 0.4.0
 * @category errors
 */
export class BadRequest extends Schema.TaggedError<BadRequest>()("BadRequest", {
  reason: Schema.String
}) {
  override get message(): string {
    return `Bad request: ${this.reason}`
  }
}

/**
 * A request whose `Host` header names another host than the loopback address the console listens on: a page on
 * another site reaching it through DNS rebinding (HTTP 421).
 *
 * @since 0.4.0
 * @category errors
 */
export class ForeignHost extends Schema.TaggedError<ForeignHost>()("ForeignHost", {
  host: Schema.String
}) {
  override get message(): string {
    return `This console answers requests for localhost only, not for host ${JSON.stringify(this.host.slice(0, 100))}`
  }
}
