/**
 * The admin token: where it comes from (`EVENTFOLD_CONSOLE_TOKEN`) and how a request proves it holds it
 * (`Authorization: Bearer <token>`, compared in constant time).
 *
 * @since 0.4.0
 */
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { createHash, timingSafeEqual } from "node:crypto"
import * as ConsoleErrors from "./errors.js"

/**
 * The admin token from `EVENTFOLD_CONSOLE_TOKEN`; `None` (a read-only console) when unset. Blank is refused, so an
 * empty variable never turns into a token everyone knows.
 *
 * @since 0.4.0
 * @category config
 */
export const token: Config.Config<Option.Option<Redacted.Redacted<string>>> = Config.redacted("EVENTFOLD_CONSOLE_TOKEN")
  .pipe(
    Config.validate({
      message: "EVENTFOLD_CONSOLE_TOKEN must not be blank (leave it unset for a read-only console)",
      validation: (value) => Redacted.value(value).trim().length > 0
    }),
    Config.option
  )

// Hashing first gives both sides the same length, so the comparison takes the same time whatever the input.
const digest = (text: string) => createHash("sha256").update(text, "utf8").digest()

/**
 * Whether `presented` is the configured token, in time independent of where they differ.
 *
 * @since 0.4.0
 * @category utils
 */
export const matches = (configured: Redacted.Redacted<string>, presented: string): boolean =>
  timingSafeEqual(digest(Redacted.value(configured)), digest(presented))

const BEARER = /^Bearer ([\x21-\x7e]+)$/

/**
 * Lets the request through when it carries the configured token as `Authorization: Bearer <token>`; fails with
 * `AdminActionsDisabled` when no token is configured and `Unauthorized` otherwise.
 *
 * @since 0.4.0
 * @category utils
 */
export const authorize = (
  configured: Option.Option<Redacted.Redacted<string>>
): Effect.Effect<
  void,
  ConsoleErrors.Unauthorized | ConsoleErrors.AdminActionsDisabled,
  HttpServerRequest.HttpServerRequest
> =>
  Effect.flatMap(
    HttpServerRequest.HttpServerRequest,
    (request): Effect.Effect<void, ConsoleErrors.Unauthorized | ConsoleErrors.AdminActionsDisabled> => {
      if (Option.isNone(configured)) return Effect.fail(new ConsoleErrors.AdminActionsDisabled())
      const header = request.headers["authorization"]
      if (header === undefined || header.length === 0) {
        return Effect.fail(
          new ConsoleErrors.Unauthorized({ reason: "send the admin token as the header Authorization: Bearer <token>" })
        )
      }
      const presented = BEARER.exec(header)?.[1]
      return presented !== undefined && matches(configured.value, presented)
        ? Effect.void
        : Effect.fail(new ConsoleErrors.Unauthorized({ reason: "the token does not match" }))
    }
  )
