// Migration 0007 (tenancy) on a database built and filled by the previous schema, and the opt-in row-level security
// of migrations/row_level_security.sql as the least-privilege application role. The SQL is the files' own text (the
// generated migrations module), applied as PgMigrations applies it; this file imports nothing of the library's
// TypeScript beyond that module.
import * as PgClient from "@effect/sql-pg/PgClient"
import type * as SqlError from "@effect/sql/SqlError"
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { grants, migrations, rowLevelSecurity } from "../src/internal/migrations.js"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..")
const SCHEMA = "eventfold"

const ident = (name: string) => `"${name.replaceAll("\"", "\"\"")}"`
const randomHex = (length: number) => crypto.randomUUID().replace(/-/g, "").slice(0, length)

/** A migration file as PgMigrations renders it: psql meta-commands dropped, the schema substituted, SET LOCAL. */
const render = (sql: string, role?: string) =>
  sql
    .split("\n")
    .filter((line) => !line.startsWith("\\"))
    .join("\n")
    .replaceAll(":\"schema\"", ident(SCHEMA))
    .replaceAll(":\"role\"", role === undefined ? ":\"role\"" : ident(role))
    .replace(/^SET search_path TO/m, "SET LOCAL search_path TO")

const serverUrl = () => {
  const url = process.env.DATABASE_URL || process.env.EVENTFOLD_TEST_ADMIN_URL
  if (!url) throw new Error("no PostgreSQL server: set DATABASE_URL (the global setup sets EVENTFOLD_TEST_ADMIN_URL)")
  return url
}

const connect = (url: string, maxConnections = 2) =>
  Effect.map(
    Layer.build(PgClient.layer({ url: Redacted.make(url), maxConnections })),
    Context.get(PgClient.PgClient)
  )

const onServer = <A, E>(f: (sql: PgClient.PgClient) => Effect.Effect<A, E>) =>
  Effect.scoped(Effect.flatMap(connect(serverUrl(), 1), f))

/**
 * A database and a LOGIN role with a shared random suffix (as PgTest names them), both dropped when the scope closes.
 * Nothing is migrated.
 */
const freshDatabase = Effect.gen(function*() {
  const suffix = randomHex(16)
  const name = `eventfold_test_${suffix}`
  const role = `eventfold_app_${suffix}`
  const password = randomHex(32)
  yield* onServer((sql) => sql.unsafe(`CREATE DATABASE ${ident(name)}`))
  // The role goes after its database, whose objects held its grants.
  yield* Effect.addFinalizer(() =>
    onServer((sql) =>
      Effect.zipRight(
        sql.unsafe(`DROP DATABASE IF EXISTS ${ident(name)} WITH (FORCE)`),
        sql.unsafe(`DROP ROLE IF EXISTS ${ident(role)}`)
      )
    ).pipe(Effect.orDie)
  )
  yield* onServer((sql) => sql.unsafe(`CREATE ROLE ${ident(role)} LOGIN PASSWORD '${password}'`))
  const adminUrl = new URL(serverUrl())
  adminUrl.pathname = `/${name}`
  const url = new URL(adminUrl)
  url.username = role
  url.password = password
  return { name, role, adminUrl: adminUrl.toString(), url: url.toString() }
})

const apply = (sql: PgClient.PgClient, text: string) => sql.withTransaction(sql.unsafe(text))
const migrateTo = (sql: PgClient.PgClient, last: number) =>
  Effect.forEach(migrations.filter((m) => m.id <= last), (m) => apply(sql, render(m.sql)), { discard: true })

const sqlState = (error: SqlError.SqlError): string | undefined => {
  const cause: unknown = error.cause
  return typeof cause === "object" && cause !== null && "code" in cause && typeof cause.code === "string"
    ? cause.code
    : undefined
}

interface NewEvent {
  readonly type?: string
  readonly payload?: object
  readonly metadata?: object
  readonly eventId?: string
}

const arrays = (events: ReadonlyArray<NewEvent>) => ({
  ids: events.map((e) => e.eventId ?? crypto.randomUUID()),
  types: events.map((e) => e.type ?? "Happened"),
  versions: events.map(() => 1),
  payloads: events.map((e) => JSON.stringify(e.payload ?? {})),
  metadata: events.map((e) => JSON.stringify(e.metadata ?? {}))
})

interface AppendRow {
  readonly status: string
  readonly stream_version: number | null
}

/** The 0001-0006 append_events: no tenant argument. */
const oldAppend = (
  sql: PgClient.PgClient,
  streamType: string,
  streamId: string,
  events: ReadonlyArray<NewEvent>,
  outbox = false
) => {
  const a = arrays(events)
  return sql<AppendRow>`SELECT status, stream_version FROM eventfold.append_events(${streamType}, ${streamId},
    'any', 0, true, ${a.ids}::uuid[], ${a.types}::text[], ${a.versions}::integer[], ${a.payloads}::jsonb[],
    ${a.metadata}::jsonb[], false, ${outbox}::boolean)`.pipe(Effect.map((rows) => rows[0]!))
}

/** The 0007 append_events: the tenant comes first. */
const append = (
  sql: PgClient.PgClient,
  tenant: string,
  streamType: string,
  streamId: string,
  events: ReadonlyArray<NewEvent>,
  options?: { readonly kind?: string; readonly expected?: number; readonly outbox?: boolean }
) => {
  const a = arrays(events)
  return sql<AppendRow>`SELECT status, stream_version FROM eventfold.append_events(${tenant}, ${streamType},
    ${streamId}, ${options?.kind ?? "any"}, ${options?.expected ?? 0}::integer, true, ${a.ids}::uuid[],
    ${a.types}::text[], ${a.versions}::integer[], ${a.payloads}::jsonb[], ${a.metadata}::jsonb[], true,
    ${options?.outbox ?? false}::boolean)`.pipe(Effect.map((rows) => rows[0]!))
}

interface EventRow {
  readonly global_position: string
  readonly transaction_id: string
  readonly stream_type: string
  readonly stream_id: string
  readonly version: number
  readonly event_id: string
  readonly event_type: string
  readonly schema_version: number
  readonly payload: string
  readonly metadata: string
  readonly actor_id: string | null
  readonly correlation_id: string | null
  readonly causation_id: string | null
  readonly recorded_at: string
}

const eventRows = (sql: PgClient.PgClient) =>
  sql<EventRow>`SELECT global_position::text, transaction_id::text, stream_type, stream_id, version, event_id::text,
      event_type, schema_version, payload::text, metadata::text, actor_id, correlation_id, causation_id,
      recorded_at::text
    FROM eventfold.events ORDER BY global_position`

const tenantsOf = (sql: PgClient.PgClient, table: string) =>
  Effect.map(
    sql.unsafe<{ tenant_id: string }>(`SELECT DISTINCT tenant_id FROM eventfold.${table} ORDER BY 1`),
    (rows) => rows.map((r) => r.tenant_id)
  )

const countOf = (sql: PgClient.PgClient, table: string) =>
  Effect.map(sql.unsafe<{ n: number }>(`SELECT count(*)::int AS n FROM eventfold.${table}`), (rows) => rows[0]!.n)

const TABLES = ["events", "streams", "snapshots", "outbox", "checkpoints", "dead_letters"] as const

describe("migration 0007 (tenancy)", () => {
  it("the generated module embeds row_level_security.sql as rowLevelSecurity, not as a migration", () => {
    assert.strictEqual(
      rowLevelSecurity,
      fs.readFileSync(path.join(root, "migrations", "row_level_security.sql"), "utf8"),
      "row_level_security.sql drifted from the library: run node scripts/generate-migrations.mjs"
    )
    assert.deepStrictEqual(migrations.find((m) => m.id === 7)?.name, "tenancy")
    assert.isFalse(migrations.some((m) => m.sql === rowLevelSecurity))
  })

  it.live(
    "on a database built and filled by 0001-0006: keeps every event, puts old rows in 'default' / '*'",
    () =>
      Effect.gen(function*() {
        const database = yield* freshDatabase
        const admin = yield* connect(database.adminUrl)
        yield* migrateTo(admin, 6)

        // Filled through the previous append_events: several streams, some metadata naming a tenant, the outbox on.
        const appends = [
          yield* oldAppend(admin, "Account", "a", [
            { payload: { n: 1 }, metadata: { tenantId: "acme", actorId: "u1", correlationId: "c1" } },
            { payload: { n: 2 }, metadata: { tenantId: "acme" } },
            { payload: { n: 3 } }
          ]),
          yield* oldAppend(admin, "Account", "b", [{ payload: { b: true } }, { type: "Other", payload: { b: 2 } }]),
          yield* oldAppend(admin, "Order", "a", [{ payload: { o: 1 }, metadata: { tenantId: "globex" } }], true),
          yield* oldAppend(admin, "Account", "a", [{ payload: { n: 4 }, metadata: { causationId: "x" } }], true)
        ]
        assert.deepStrictEqual(appends.map((r) => [r.status, r.stream_version]), [["ok", 3], ["ok", 2], ["ok", 1], [
          "ok",
          4
        ]])
        yield* admin`INSERT INTO eventfold.snapshots (stream_type, stream_id, version, schema_version, state)
        VALUES ('Account', 'a', 3, 1, '{"total": 6}')`
        const [head] = yield* admin<{ tx: string; gp: string; event_id: string }>`
        SELECT transaction_id::text AS tx, global_position::text AS gp, event_id::text FROM eventfold.events
         ORDER BY global_position LIMIT 1`
        yield* admin`INSERT INTO eventfold.checkpoints (subscription_id, transaction_id, global_position)
        VALUES ('projection', ${head!.tx}::xid8, ${head!.gp}::bigint)`
        yield* admin`INSERT INTO eventfold.dead_letters (subscription_id, event_id, transaction_id, global_position,
          stream_type, stream_id, event_type, error, attempts)
        VALUES ('projection', ${head!.event_id}::uuid, ${head!.tx}::xid8, ${head!.gp}::bigint, 'Account', 'a',
                'Happened', 'boom', 3)`

        const before = yield* eventRows(admin)
        assert.strictEqual(before.length, 7)
        const streamsBefore = yield* admin<{ stream_type: string; stream_id: string; version: number; last: string }>`
        SELECT stream_type, stream_id, version, last_transaction_id::text AS last FROM eventfold.streams ORDER BY 1, 2`
        const outboxBefore = yield* admin<{ event_id: string; global_position: string; version: number }>`
        SELECT event_id::text, global_position::text, version FROM eventfold.outbox ORDER BY id`
        assert.strictEqual(outboxBefore.length, 2)
        const filenode = (table: string) =>
          Effect.map(
            admin<{ node: string }>`SELECT pg_relation_filenode(${`${SCHEMA}.${table}`}::regclass)::text AS node`,
            (rows) => rows[0]!.node
          )
        const eventsFile = yield* filenode("events")

        const tenancy = migrations.find((m) => m.id === 7)!
        yield* apply(admin, render(tenancy.sql))
        // Safe to repeat, as psql users do.
        yield* apply(admin, render(tenancy.sql))

        // Every event as it was: positions, transaction ids, versions, ids, payloads, metadata (tenantId included).
        assert.deepStrictEqual(yield* eventRows(admin), before)
        assert.strictEqual(yield* filenode("events"), eventsFile, "events was not rewritten")
        for (const table of ["events", "streams", "snapshots", "outbox"]) {
          assert.deepStrictEqual(yield* tenantsOf(admin, table), ["default"], table)
        }
        for (const table of ["checkpoints", "dead_letters"]) {
          assert.deepStrictEqual(yield* tenantsOf(admin, table), ["*"], table)
        }
        assert.deepStrictEqual(
          yield* admin<{ stream_type: string; stream_id: string; version: number; last: string }>`
          SELECT stream_type, stream_id, version, last_transaction_id::text AS last FROM eventfold.streams
           ORDER BY 1, 2`,
          streamsBefore
        )
        assert.deepStrictEqual(
          yield* admin<{ event_id: string; global_position: string; version: number }>`
          SELECT event_id::text, global_position::text, version FROM eventfold.outbox ORDER BY id`,
          outboxBefore
        )

        // The schema: NOT NULL tenant columns, defaults only where '*' means every tenant, keys led by the tenant.
        const columns = yield* admin<{ table_name: string; is_nullable: string; column_default: string | null }>`
        SELECT table_name, is_nullable, column_default FROM information_schema.columns
         WHERE table_schema = ${SCHEMA} AND column_name = 'tenant_id' ORDER BY table_name`
        assert.deepStrictEqual(columns.map((c) => [c.table_name, c.is_nullable, c.column_default]), [
          ["checkpoints", "NO", "'*'::text"],
          ["dead_letters", "NO", "'*'::text"],
          ["events", "NO", null],
          ["outbox", "NO", null],
          ["snapshots", "NO", null],
          ["streams", "NO", null],
          // Admin tables of tenant moves (PgTenantMove), keyed by the tenant.
          ["tenant_blocks", "NO", null],
          ["tenant_moves", "NO", null]
        ])
        const constraints = yield* admin<{ conname: string; def: string }>`
        SELECT conname, pg_get_constraintdef(c.oid) AS def FROM pg_constraint c
          JOIN pg_namespace n ON n.oid = c.connamespace
         WHERE n.nspname = ${SCHEMA} AND c.contype IN ('p', 'u') ORDER BY conname`
        const def = (name: string) => constraints.find((c) => c.conname === name)?.def
        assert.strictEqual(def("events_stream_version_key"), "UNIQUE (tenant_id, stream_type, stream_id, version)")
        assert.strictEqual(def("events_event_id_key"), "UNIQUE (event_id)")
        assert.strictEqual(def("streams_pkey"), "PRIMARY KEY (tenant_id, stream_type, stream_id)")
        assert.strictEqual(def("snapshots_pkey"), "PRIMARY KEY (tenant_id, stream_type, stream_id)")
        assert.strictEqual(def("checkpoints_pkey"), "PRIMARY KEY (subscription_id, tenant_id)")
        assert.strictEqual(def("dead_letters_subscription_event_key"), "UNIQUE (subscription_id, tenant_id, event_id)")
        const indexes = yield* admin<{ indexname: string; indexdef: string }>`
        SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = ${SCHEMA} ORDER BY 1`
        const index = (name: string) => indexes.find((i) => i.indexname === name)?.indexdef
        assert.isUndefined(index("events_tenant_idx"))
        assert.include(index("events_tenant_feed_idx"), "(tenant_id, transaction_id, global_position)")
        assert.isUndefined(index("outbox_unpublished_idx"))
        assert.include(index("outbox_unpublished_tenant_idx"), "(tenant_id, stream_type, stream_id, global_position)")
        const functions = yield* admin<{ proname: string; args: string }>`
        SELECT p.proname, pg_get_function_identity_arguments(p.oid) AS args FROM pg_proc p
          JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = ${SCHEMA} AND p.proname IN ('append_events', 'read_stream', 'enter_tenant')
         ORDER BY 1`
        assert.deepStrictEqual(functions.map((f) => f.proname), ["append_events", "enter_tenant", "read_stream"])
        assert.match(functions[0]!.args, /^p_tenant_id text, p_stream_type text, /)

        // The new append_events: the old stream, now in tenant 'default', goes on at version n + 1 ...
        const next = yield* append(admin, "default", "Account", "a", [{ payload: { n: 5 } }], {
          kind: "exact",
          expected: 4,
          outbox: true
        })
        assert.deepStrictEqual([next.status, next.stream_version], ["ok", 5])
        // ... and the same stream id in another tenant is another stream, from version 1.
        const acme = yield* append(admin, "acme", "Account", "a", [{ payload: { n: 1 } }], { kind: "no_stream" })
        assert.deepStrictEqual([acme.status, acme.stream_version], ["ok", 1])
        const rows = yield* admin<{ tenant_id: string; version: number; metadata: string }>`
        SELECT tenant_id, version, metadata::text FROM eventfold.events
         WHERE stream_type = 'Account' AND stream_id = 'a' ORDER BY global_position`
        assert.deepStrictEqual(rows.map((r) => [r.tenant_id, r.version]), [
          ["default", 1],
          ["default", 2],
          ["default", 3],
          ["default", 4],
          ["default", 5],
          ["acme", 1]
        ])
        assert.deepStrictEqual(rows.map((r) => JSON.parse(r.metadata).tenantId), [
          "acme",
          "acme",
          undefined,
          undefined,
          undefined,
          undefined
        ])
        assert.deepStrictEqual(
          yield* admin<{ tenant_id: string; version: number }>`
          SELECT tenant_id, version FROM eventfold.outbox ORDER BY id`,
          [{ tenant_id: "default", version: 1 }, { tenant_id: "default", version: 4 }, {
            tenant_id: "default",
            version: 5
          }]
        )

        // read_stream: one round trip, a missing stream told apart from an empty range.
        const read = (tenant: string, streamId: string, from: number, limit: number | null, backward: boolean) =>
          admin<{ version: number | null; tenant_id: string | null; stream_version: number | null }>`
          SELECT version, tenant_id, stream_version FROM eventfold.read_stream(${tenant}, 'Account', ${streamId},
            ${from}::integer, ${limit}::integer, ${backward}::boolean)`
        assert.deepStrictEqual((yield* read("default", "a", 2, 2, false)).map((r) => r.version), [2, 3])
        assert.deepStrictEqual((yield* read("default", "a", 4, null, true)).map((r) => r.version), [4, 3, 2, 1])
        assert.deepStrictEqual((yield* read("acme", "a", 1, 10, false)).map((r) => [r.version, r.tenant_id]), [[
          1,
          "acme"
        ]])
        assert.deepStrictEqual(yield* read("default", "a", 6, 10, false), [{
          version: null,
          tenant_id: null,
          stream_version: 5
        }])
        assert.deepStrictEqual(yield* read("acme", "b", 1, 10, false), [{
          version: null,
          tenant_id: null,
          stream_version: 0
        }])
        // An event id stored in another tenant's stream is a duplicate, not an idempotent repeat.
        const [{ event_id: taken }] = yield* admin<{ event_id: string }>`
        SELECT event_id::text FROM eventfold.events WHERE tenant_id = 'acme'`
        const duplicate = yield* append(admin, "other", "Account", "a", [{ payload: { n: 1 }, eventId: taken! }])
        assert.strictEqual(duplicate.status, "duplicate")
        const repeat = yield* append(admin, "acme", "Account", "a", [{ payload: { n: 1 }, eventId: taken! }])
        assert.strictEqual(repeat.status, "idempotent")
      }).pipe(Effect.scoped),
    120_000
  )

  it.live(
    "row-level security: the application role sees and writes only its transaction's tenant",
    () =>
      Effect.gen(function*() {
        const database = yield* freshDatabase
        const admin = yield* connect(database.adminUrl)
        // Every migration: grants.sql also names functions of later ones (read_all_query, 0008).
        yield* migrateTo(admin, Math.max(...migrations.map((m) => m.id)))
        yield* apply(admin, render(grants, database.role))
        yield* apply(admin, render(rowLevelSecurity))
        yield* apply(admin, render(rowLevelSecurity)) // safe to repeat

        // The owner bypasses row-level security: it writes both tenants' rows.
        for (const tenant of ["A", "B"]) {
          assert.strictEqual((yield* append(admin, tenant, "Account", "1", [{}, {}], { outbox: true })).status, "ok")
          assert.strictEqual((yield* append(admin, tenant, "Account", `only-${tenant}`, [{}])).status, "ok")
          yield* admin`INSERT INTO eventfold.snapshots (tenant_id, stream_type, stream_id, version, schema_version, state)
          VALUES (${tenant}, 'Account', '1', 2, 1, '{}')`
          yield* admin`INSERT INTO eventfold.checkpoints (subscription_id, tenant_id, transaction_id, global_position)
          VALUES ('projection', ${tenant}, '1'::xid8, 1)`
          yield* admin`INSERT INTO eventfold.dead_letters (subscription_id, tenant_id, event_id, transaction_id,
            global_position, event_tenant_id, stream_type, stream_id, event_type, error, attempts)
          VALUES ('projection', ${tenant}, gen_random_uuid(), '1'::xid8, 1, ${tenant}, 'Account', '1', 'Happened',
            'boom', 1)`
        }
        const totals = Object.fromEntries(
          yield* Effect.forEach(TABLES, (table) => Effect.map(countOf(admin, table), (n) => [table, n] as const))
        )
        assert.deepStrictEqual(totals, {
          events: 6,
          streams: 4,
          snapshots: 2,
          outbox: 4,
          checkpoints: 2,
          dead_letters: 2
        })

        const app = yield* connect(database.url)
        const [{ role }] = yield* app<{ role: string }>`SELECT current_user AS role`
        assert.strictEqual(role, database.role)
        const inScope = <A, E, R>(scope: string, body: Effect.Effect<A, E, R>) =>
          app.withTransaction(Effect.zipRight(app`SELECT set_config('eventfold.tenant', ${scope}, true)`, body))

        // Scoped to A: every table shows A's rows only.
        yield* inScope(
          "A",
          Effect.gen(function*() {
            for (const table of TABLES) {
              assert.deepStrictEqual(yield* tenantsOf(app, table), ["A"], table)
              assert.strictEqual(yield* countOf(app, table), totals[table]! / 2, table)
            }
            const streams = yield* app<{ stream_id: string }>`SELECT stream_id FROM eventfold.streams ORDER BY 1`
            assert.deepStrictEqual(streams.map((s) => s.stream_id), ["1", "only-A"])
          })
        )

        // A row of B written in A's scope is refused.
        const forged = yield* Effect.flip(inScope(
          "A",
          app`INSERT INTO eventfold.events (tenant_id, stream_type, stream_id, version, event_id, event_type, payload)
          VALUES ('B', 'Account', 'forged', 1, gen_random_uuid(), 'Forged', '{}')`
        ))
        assert.strictEqual(sqlState(forged), "42501")
        assert.include(forged.message + String((forged.cause as Error).message), "row-level security")

        // No tenant set: every table looks empty.
        for (const table of TABLES) {
          assert.strictEqual(yield* countOf(app, table), 0, table)
        }
        assert.strictEqual(
          yield* app.withTransaction(countOf(app, "events")),
          0,
          "a transaction that set no tenant sees nothing either"
        )

        // append_events scopes the transaction to its tenant: another tenant later in it is refused.
        const crossing = yield* Effect.flip(inScope("A", append(app, "B", "Account", "1", [{}])))
        assert.strictEqual(sqlState(crossing), "42501")
        assert.include((crossing.cause as Error).message, "scoped to tenant \"A\", not \"B\"")
        const twoTenants = yield* Effect.flip(app.withTransaction(Effect.zipRight(
          append(app, "A", "Account", "1", [{}]),
          append(app, "B", "Account", "1", [{}])
        )))
        assert.strictEqual(sqlState(twoTenants), "42501")
        // Nor can a tenant's transaction widen itself to every tenant.
        const widen = yield* Effect.flip(inScope("A", app`SELECT eventfold.enter_tenant('*')`))
        assert.strictEqual(sqlState(widen), "42501")

        // As the application role, under row-level security: an append sets its own scope; `Any` upserts the stream row
        // (ON CONFLICT DO UPDATE), the outbox is written, and read_stream reads it back.
        const appended = yield* append(app, "A", "Account", "1", [{}], { outbox: true })
        assert.deepStrictEqual([appended.status, appended.stream_version], ["ok", 3])
        const fresh = yield* inScope("A", append(app, "A", "Account", "2", [{}], { kind: "no_stream" }))
        assert.deepStrictEqual([fresh.status, fresh.stream_version], ["ok", 1])
        const read = yield* app<{ version: number | null; stream_version: number | null }>`
        SELECT version, stream_version FROM eventfold.read_stream('A', 'Account', '1', 1, 100, false, false)`
        assert.deepStrictEqual(read.map((r) => r.version), [1, 2, 3])
        const crossRead = yield* Effect.flip(
          inScope("A", app`SELECT * FROM eventfold.read_stream('B', 'Account', '1', 1, 100, false, false)`)
        )
        assert.strictEqual(sqlState(crossRead), "42501")
        // An event id of another tenant is hidden from the duplicate check: the append fails on the unique key.
        const [{ event_id: ofB }] = yield* admin<{ event_id: string }>`
        SELECT event_id::text FROM eventfold.events WHERE tenant_id = 'B' LIMIT 1`
        const hidden = yield* Effect.flip(append(app, "A", "Account", "1", [{ eventId: ofB! }]))
        assert.strictEqual(sqlState(hidden), "23505")

        // '*': every row of every table, and appends to any tenant.
        yield* inScope(
          "*",
          Effect.gen(function*() {
            assert.deepStrictEqual(yield* tenantsOf(app, "events"), ["A", "B"])
            assert.strictEqual(yield* countOf(app, "events"), totals.events! + 2)
            assert.strictEqual(yield* countOf(app, "streams"), totals.streams! + 1)
            assert.strictEqual(yield* countOf(app, "outbox"), totals.outbox! + 1)
            for (const table of ["snapshots", "checkpoints", "dead_letters"] as const) {
              assert.strictEqual(yield* countOf(app, table), totals[table], table)
            }
            assert.strictEqual((yield* append(app, "B", "Account", "1", [{}])).stream_version, 3)
            assert.strictEqual((yield* append(app, "A", "Account", "1", [{}])).stream_version, 4)
          })
        )
      }).pipe(Effect.scoped),
    120_000
  )
})
