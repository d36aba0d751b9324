/**
 * Tenants: the ambient tenant a program runs for, the store's tenancy mode, and how an operation's tenant is
 * resolved.
 *
 * Every stream belongs to one tenant: a stream is identified by (tenant, stream type, stream id) in every store, so
 * two tenants that use the same stream id have two independent streams. A program sets its tenant once for a scope,
 * `Tenant.with("acme")(program)` or `Tenant.layer("acme")` per request, and every eventfold service called inside
 * (`CommandHandler`, `EventStore`, snapshots, subscriptions, projections) works in that tenant.
 *
 * Modes (`Tenancy`):
 * - `single` (the default): operations without a tenant use `Tenant.defaultId`, so single-tenant applications never
 *   mention tenants. A tenant set explicitly is honoured all the same.
 * - `multi`: an operation without a tenant fails with `TenantRequired`. Reading every tenant's feed is an explicit
 *   admin operation (`allTenants: true`).
 *
 * When the operation has a tenant (always in `multi` mode), event metadata that names another tenant is refused
 * (`InvalidInput`), and an appended event's metadata carries its tenant. In `single` mode without a tenant, a
 * metadata `tenantId` stays what it was before tenancy: a label, kept as given, in the default tenant.
 *
 * Infrastructure that spans tenants runs without one in both modes: the outbox relay, `headPosition`, and
 * checkpoints of subscriptions over every tenant.
 *
 * @since 0.3.0
 */
/// <reference lib="es2024.string" />
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Errors from "./Errors.js"

/**
 * The tenant of streams written without one, in `single` mode.
 *
 * @since 0.3.0
 * @category constants
 */
export const defaultId = "default"

/**
 * The checkpoint and row-level-security scope of an operation over every tenant. Not a valid tenant id.
 *
 * @since 0.3.0
 * @category constants
 */
export const allScope = "*"

/**
 * The longest tenant id, in characters.
 *
 * @since 0.3.0
 * @category constants
 */
export const maxLength = 128

/**
 * An operation ran without a tenant on a store in `multi` mode.
 *
 * @since 0.3.0
 * @category errors
 */
export class TenantRequired extends Schema.TaggedError<TenantRequired>()("TenantRequired", {
  /** What was attempted, e.g. "append" or "readAll". */
  operation: Schema.String
}) {
  override get message(): string {
    return `${this.operation} needs a tenant: this store is multi-tenant; run it inside Tenant.with(tenantId) ` +
      "or provide Tenant.layer(tenantId)"
  }
}

/**
 * @since 0.3.0
 * @category models
 */
export type Mode = "single" | "multi"

/**
 * The ambient tenant: `Option.none()` unless a scope set one.
 *
 * @since 0.3.0
 * @category references
 */
export class CurrentTenant extends Context.Reference<CurrentTenant>()("@eventfold/core/Tenant/CurrentTenant", {
  defaultValue: (): Option.Option<string> => Option.none()
}) {}

/**
 * The stores' tenancy mode, read when a store is built; `single` unless provided.
 *
 * @since 0.3.0
 * @category references
 */
export class Tenancy extends Context.Reference<Tenancy>()("@eventfold/core/Tenant/Tenancy", {
  defaultValue: (): Mode => "single"
}) {}

/**
 * Runs an effect for a tenant: every eventfold operation inside it works in that tenant.
 *
 * @since 0.3.0
 * @category combinators
 */
const with_: {
  (tenantId: string): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <A, E, R>(self: Effect.Effect<A, E, R>, tenantId: string): Effect.Effect<A, E, R>
} = ((...args: Array<unknown>) =>
  typeof args[0] === "string"
    ? (self: Effect.Effect<unknown, unknown, unknown>) =>
      Effect.provideService(self, CurrentTenant, Option.some(args[0] as string))
    : Effect.provideService(args[0] as Effect.Effect<unknown>, CurrentTenant, Option.some(args[1] as string))) as never

export {
  /**
   * Runs an effect for a tenant: every eventfold operation inside it works in that tenant.
   *
   * @since 0.3.0
   * @category combinators
   */
  with_ as with
}

/**
 * The ambient tenant as a Layer, for a request or a worker that serves one tenant.
 *
 * @since 0.3.0
 * @category layers
 */
export const layer = (tenantId: string): Layer.Layer<CurrentTenant> =>
  Layer.succeed(CurrentTenant, Option.some(tenantId))

/**
 * The tenancy mode as a Layer, for the stores built below it.
 *
 * @since 0.3.0
 * @category layers
 */
export const layerTenancy = (mode: Mode): Layer.Layer<Tenancy> => Layer.succeed(Tenancy, mode)

/**
 * The ambient tenant, if one is set.
 *
 * @since 0.3.0
 * @category accessors
 */
export const current: Effect.Effect<Option.Option<string>> = CurrentTenant

const TENANT_ID = /^[^\u0000-\u001f\u007f*]+$/

/**
 * Checks a tenant id: 1 to 128 characters, no control characters, no lone UTF-16 surrogate and no `*`.
 *
 * @since 0.3.0
 * @category validation
 */
export const validate = (tenantId: string): Effect.Effect<string, Errors.InvalidInput> =>
  typeof tenantId === "string" && tenantId.length > 0 && tenantId.length <= maxLength && TENANT_ID.test(tenantId) &&
    tenantId.isWellFormed()
    ? Effect.succeed(tenantId)
    : Effect.fail(
      new Errors.InvalidInput({
        reason: `tenant id must be 1 to ${maxLength} characters without control characters or "*", got ${
          JSON.stringify(tenantId)?.slice(0, 160)
        }`
      })
    )

/**
 * The tenant an operation works in: the explicit one (admin tools) or the ambient one, which must agree when both
 * are given; otherwise `defaultId` in `single` mode and `TenantRequired` in `multi` mode.
 *
 * @since 0.3.0
 * @category resolution
 */
export const resolve = (
  mode: Mode,
  operation: string,
  explicit?: string | undefined
): Effect.Effect<string, TenantRequired | Errors.InvalidInput> =>
  Effect.flatMap(CurrentTenant, (ambient): Effect.Effect<string, TenantRequired | Errors.InvalidInput> => {
    if (explicit !== undefined) {
      if (Option.isSome(ambient) && ambient.value !== explicit) {
        return Effect.fail(
          new Errors.InvalidInput({
            reason: `${operation} names tenant ${JSON.stringify(explicit)} inside tenant ${
              JSON.stringify(ambient.value)
            }'s scope`
          })
        )
      }
      return validate(explicit)
    }
    if (Option.isSome(ambient)) return validate(ambient.value)
    return mode === "single" ? Effect.succeed(defaultId) : Effect.fail(new TenantRequired({ operation }))
  })

/**
 * The tenants a feed read covers: one tenant, or every tenant (`allScope`). Every tenant is read when asked
 * explicitly (`allTenants`), or in `single` mode when no tenant is given (the whole feed, as before tenancy).
 *
 * @since 0.3.0
 * @category resolution
 */
export const resolveScope = (
  mode: Mode,
  operation: string,
  options: { readonly tenantId?: string | undefined; readonly allTenants?: boolean | undefined }
): Effect.Effect<string, TenantRequired | Errors.InvalidInput> => {
  if (options.allTenants === true) {
    return options.tenantId === undefined
      ? Effect.succeed(allScope)
      : Effect.fail(new Errors.InvalidInput({ reason: `${operation}: give tenantId or allTenants, not both` }))
  }
  if (options.tenantId !== undefined) return resolve(mode, operation, options.tenantId)
  return Effect.flatMap(
    CurrentTenant,
    (ambient): Effect.Effect<string, TenantRequired | Errors.InvalidInput> =>
      Option.isSome(ambient)
        ? validate(ambient.value)
        : mode === "single"
        ? Effect.succeed(allScope)
        : Effect.fail(new TenantRequired({ operation }))
  )
}

/**
 * Checks that event metadata names no other tenant than `tenantId`, and returns it stamped with that tenant (metadata
 * of the default tenant is left as it is). The error is the reason, for an `InvalidInput`.
 *
 * @since 0.3.0
 * @category validation
 */
export const stampMetadata = <M extends { readonly tenantId?: string | undefined }>(
  tenantId: string,
  metadata: M
): Either.Either<M, string> =>
  metadata.tenantId === undefined
    ? Either.right(tenantId === defaultId ? metadata : { ...metadata, tenantId })
    : metadata.tenantId === tenantId
    ? Either.right(metadata)
    : Either.left(
      `event metadata names tenant ${JSON.stringify(metadata.tenantId)}, but the append is for tenant ${
        JSON.stringify(tenantId)
      }`
    )

/**
 * The scope of infrastructure records kept per tenant (checkpoints, dead letters): the ambient tenant, checked, or
 * `allScope` when none is set. An invalid ambient tenant is refused as a non-retryable `StoreError` of `operation`.
 *
 * @since 0.3.0
 * @category resolution
 */
export const ambientScope = (operation: string): Effect.Effect<string, Errors.StoreError> =>
  Effect.flatMap(
    CurrentTenant,
    (tenant) =>
      Option.isNone(tenant) ? Effect.succeed(allScope) : validate(tenant.value).pipe(
        Effect.mapError((invalid) =>
          new Errors.StoreError({ operation, reason: invalid.reason, retryable: false, kind: "other" })
        )
      )
  )
