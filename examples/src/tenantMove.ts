/**
 * A tenant outgrows the shared tables (`npm run example:tenantMove`, PostgreSQL only): acme and globex share one
 * multi-tenant store; while globex keeps creating orders, `PgTenantMove.run` copies acme to a schema of its own
 * (`tenant_acme`), cuts it over and verifies the copy. Acme's writes to the shared store are then refused with
 * `TenantUnavailable`, every order globex was told about is there, and `PgSchemaPerTenant` serves acme from its schema,
 * at the versions it had before the move.
 *
 * The move connects as the tables' owner on both sides and reads every session's transaction horizon, so it needs
 * the owner's rights and `pg_read_all_stats` (or a superuser): the example runs everything as the URL's user, the
 * superuser on the embedded server. When it created `tenant_acme`, it drops it at the end and lifts acme's block in
 * the shared store, so a rerun on the same `DATABASE_URL` starts over.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlSchema from "@effect/sql/SqlSchema"
import { CommandHandler, Tenant } from "@eventfold/core"
import { type PgDatabase, PgMigrations, PgSchemaPerTenant, PgTenantMove } from "@eventfold/postgres"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import { OrderAggregate } from "./domain/Order.js"
import { onPostgres, runIfMain } from "./run.js"

/** The shared store's schema, and the one acme moves to. */
const SHARED = "eventfold"
const TARGET = "tenant_acme"

/** What one schema holds of a tenant's events: their count and an MD5 over every column that matters, in order. */
export interface Contents {
  readonly events: number
  readonly digest: string
}

/** What the example saw, for its test. */
export interface TenantMoveResult {
  readonly summary: PgTenantMove.Summary
  /** Acme's orders of this run, and their versions before the move (some shipped, so 2). */
  readonly acmeOrders: ReadonlyArray<string>
  readonly versionsBefore: ReadonlyArray<number>
  /** The same orders loaded from `tenant_acme` after the move. */
  readonly versionsAfter: ReadonlyArray<number>
  /** Acme's events in the shared store and in its own schema, computed by the example, not by the mover. */
  readonly source: Contents
  readonly target: Contents
  /** What acme's write to the shared store got after the move: `TenantUnavailable (moved)`. */
  readonly acmeAtSource: string
  /** Globex orders acknowledged while acme moved, of them while acme's cut-over lock was held, and found after. */
  readonly globexAcknowledged: number
  readonly globexDuringCutOver: number
  readonly globexPresent: number
  /** The version of the order acme shipped from its own schema. */
  readonly shippedVersion: number
}

const create = (customerId: string) =>
  ({ _tag: "CreateOrder", customerId, items: [{ productId: "book", quantity: 1, unitPrice: 12 }] }) as const

const ContentsRow = Schema.Struct({ events: Schema.Number, digest: Schema.String })

/** Runs the example; `database` is the pool's options, for the per-tenant stack it opens on the same database. */
export const program = (database: PgDatabase.Options) =>
  Effect.gen(function*() {
    const sql = yield* PgClient.PgClient
    const orders = yield* CommandHandler.make(OrderAggregate)
    const run = crypto.randomUUID().slice(0, 8)

    const contents = SqlSchema.single({
      Request: Schema.Struct({ schema: Schema.String, tenantId: Schema.String }),
      Result: ContentsRow,
      execute: ({ schema, tenantId }) =>
        sql`SELECT count(*)::integer AS events, coalesce(md5(string_agg(concat_ws('|', event_id, stream_type,
            stream_id, version, event_type, schema_version, payload::text, metadata::text, recorded_at::text),
            E'\\n' ORDER BY stream_type COLLATE "C", stream_id COLLATE "C", version)), '') AS digest
          FROM ${sql(`${schema}.events`)} WHERE tenant_id = ${tenantId}`
    })

    // 1. Both tenants in the shared tables; every fourth acme order shipped, so versions differ.
    const acmeOrders = Array.from({ length: 20 }, (_, i) => `order-${run}-acme-${i + 1}`)
    const versionsBefore = yield* Effect.forEach(acmeOrders, (id, i) =>
      Tenant.with(
        Effect.gen(function*() {
          const created = yield* orders.handle(id, create(`customer-${i % 3}`))
          if (i % 4 !== 0) return created.version
          return (yield* orders.handle(id, { _tag: "ShipOrder", trackingNumber: `T-${i}` })).version
        }),
        "acme"
      ))
    yield* Effect.forEach(
      Array.from({ length: 5 }, (_, i) => `order-${run}-globex-${i + 1}`),
      (id) => Tenant.with(orders.handle(id, create("bob")), "globex")
    )
    yield* Console.log(
      `1. the shared store (schema ${SHARED}, tenancy "multi"): acme created 20 orders (5 shipped), globex 5`
    )

    // 2. Globex keeps writing while acme moves.
    const acknowledged = yield* Ref.make<ReadonlyArray<string>>([])
    const moving = yield* Ref.make(true)
    const globexWriter = yield* Effect.gen(function*() {
      let n = 0
      while (yield* Ref.get(moving)) {
        const id = `order-${run}-globex-live-${++n}`
        yield* Tenant.with(orders.handle(id, create("bob")), "globex")
        yield* Ref.update(acknowledged, (ids) => [...ids, id])
        yield* Effect.sleep("10 millis")
      }
    }).pipe(Effect.fork)

    const existed = yield* SqlSchema.findAll({
      Request: Schema.String,
      Result: Schema.Struct({ nspname: Schema.String }),
      execute: (schema) => sql`SELECT nspname FROM pg_namespace WHERE nspname = ${schema}`
    })(TARGET).pipe(Effect.map((rows) => rows.length > 0))
    // The target's tables come from the same migrations; when the example created them, it removes them at the end.
    yield* Effect.acquireRelease(PgMigrations.run({ schema: TARGET }), () =>
      existed
        ? Console.log(`6. schema ${TARGET} existed before the example: kept`)
        : Effect.gen(function*() {
          yield* sql`DROP SCHEMA ${sql(TARGET)} CASCADE`
          yield* PgTenantMove.unblock({ tenantId: "acme", source: { database: sql, schema: SHARED } }).pipe(
            Logger.withMinimumLogLevel(LogLevel.Warning)
          )
          yield* Console.log(
            `6. cleanup: dropped schema ${TARGET} (this example created it) and lifted acme's block in ${SHARED}`
          )
        }).pipe(Effect.catchAll((error) => Console.error(`6. cleanup failed: ${error.message}`))))

    const duringCutOver = yield* Ref.make(0)
    // At the cut-over acme's appends wait on its lock; globex's must not: wait here for two more of them.
    const whileLocked = Effect.gen(function*() {
      const before = (yield* Ref.get(acknowledged)).length
      yield* Ref.get(acknowledged).pipe(
        Effect.repeat({ schedule: Schedule.spaced("5 millis"), until: (ids) => ids.length >= before + 2 }),
        Effect.timeoutOption("5 seconds")
      )
      yield* Ref.set(duringCutOver, (yield* Ref.get(acknowledged)).length - before)
    })
    yield* Console.log(`2. moving acme to schema ${TARGET} (migrated first) while globex keeps writing:`)
    const summary = yield* PgTenantMove.run({
      tenantId: "acme",
      source: { database: sql, schema: SHARED },
      target: { database: sql, schema: TARGET },
      batchSize: 10,
      onBatch: (p) => Console.log(`   batch ${p.batch} (${p.phase}): ${p.events} events, ${p.copied} copied so far`),
      onCutOver: whileLocked
    }).pipe(Logger.withMinimumLogLevel(LogLevel.Warning)) // its steps are printed here; its info logs stay quiet
    yield* Ref.set(moving, false)
    yield* Fiber.join(globexWriter)
    const source = yield* contents({ schema: SHARED, tenantId: "acme" })
    const target = yield* contents({ schema: TARGET, tenantId: "acme" })
    yield* Console.log(
      `   moved and verified: ${summary.streams} streams, ${summary.events} events, ${summary.batches} batches, ` +
        `checksum ${summary.checksum.slice(0, 16)}...`
    )
    yield* Console.log(
      `   counted again by the example: ${source.events} events in ${SHARED}, ${target.events} in ${TARGET}, ` +
        `digests ${source.digest === target.digest ? "equal" : "DIFFERENT"}`
    )

    // 3. The shared store refuses acme; globex lost nothing.
    const acmeAtSource = yield* Tenant.with(orders.handle(`order-${run}-acme-late`, create("alice")), "acme").pipe(
      Effect.match({
        onFailure: (e) => (e._tag === "TenantUnavailable" ? `${e._tag} (${e.reason})` : e._tag),
        onSuccess: () => "accepted"
      })
    )
    const globexIds = yield* Ref.get(acknowledged)
    const globexPresent = yield* SqlSchema.single({
      Request: Schema.Array(Schema.String),
      Result: Schema.Struct({ present: Schema.Number }),
      execute: (ids) =>
        sql`SELECT count(*)::integer AS present FROM ${sql(`${SHARED}.streams`)}
          WHERE tenant_id = 'globex' AND stream_type = ${OrderAggregate.name} AND stream_id = ANY(${ids}::text[])`
    })(globexIds).pipe(Effect.map((row) => row.present))
    const globexDuringCutOver = yield* Ref.get(duringCutOver)
    yield* Console.log(`3. acme writes to the shared store: ${acmeAtSource}`)
    yield* Console.log(
      `   globex: ${globexIds.length} orders acknowledged during the move (${globexDuringCutOver} while acme's ` +
        `cut-over lock was held), ${globexPresent} of them in the shared store`
    )

    // 4. Acme from its own schema: the same orders at the same versions, and it writes there.
    const served = yield* Effect.gen(function*() {
      const ownOrders = yield* CommandHandler.make(OrderAggregate)
      const versionsAfter = yield* Effect.forEach(acmeOrders, (id) =>
        Tenant.with(Effect.map(ownOrders.load(id), (loaded) => loaded.version), "acme"))
      const shipped = yield* Tenant.with(
        ownOrders.handle(acmeOrders[1]!, { _tag: "ShipOrder", trackingNumber: "T-own" }),
        "acme"
      )
      return { versionsAfter, shippedVersion: shipped.version }
    }).pipe(
      Effect.provide(PgSchemaPerTenant.layer({
        database,
        // Only acme lives in a schema of its own; any other tenant reaching this stack is refused.
        schemaOf: (tenantId) => {
          if (tenantId === "acme") {
            return TARGET
          }
          throw new Error(`tenant ${tenantId} lives in the shared store`)
        },
        migrations: "verify"
      }))
    )
    const same = served.versionsAfter.every((v, i) =>
      v === versionsBefore[i]
    )
    yield* Console.log(
      `4. acme served from ${TARGET} (PgSchemaPerTenant): its 20 orders load at ${
        same ? "the same versions as before the move" : "DIFFERENT versions"
      }; ${acmeOrders[1]} shipped there, now at version ${served.shippedVersion}`
    )

    const result: TenantMoveResult = {
      summary,
      acmeOrders,
      versionsBefore,
      versionsAfter: served.versionsAfter,
      source,
      target,
      acmeAtSource,
      globexAcknowledged: globexIds.length,
      globexDuringCutOver,
      globexPresent,
      shippedVersion: served.shippedVersion
    }
    yield* Console.log(`5. route acme to ${TARGET} from now on; globex stays in ${SHARED}`)
    return result
  }).pipe(Effect.scoped)

runIfMain(
  import.meta,
  "a tenant outgrows the shared tables",
  onPostgres(program, { switches: { tenancy: "multi" } })
)
