// Personal data on PostgreSQL, as the least-privilege application role (no UPDATE or DELETE on events): the contract
// the memory stack passes, with raw scans of events, snapshots and the outbox as the tables' owner, with and without
// row-level security; a transactional projection replayed after a forget; what the role may do to keys and audit rows.
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import { Aggregate, CommandHandler, Decider, EventQuery, PersonalData } from "@eventfold/core"
import { PersonalDataContract } from "@eventfold/core/testing"
import { PgKeyStore, PgProjection, PgTest } from "@eventfold/postgres"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"

/** The undecorated stack on a fresh database as the application role, its `KeyStore`, and `Admin`. */
const stackOn = (switches?: PgTest.Switches) =>
  Layer.unwrapScoped(
    Effect.map(
      PgTest.freshDatabase({ rowLevelSecurity: switches?.rowLevelSecurity }),
      (database) =>
        Layer.merge(
          PgKeyStore.layer().pipe(Layer.provideMerge(PgTest.eventfold(database, { outbox: true, ...switches }))),
          PgTest.layerAdmin(database)
        )
    )
  )

/** Every payload, metadata, snapshot state and outbox payload as stored, read as the owner with plain SQL. */
const rawText = PgTest.asAdmin(
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) =>
      sql<{ readonly text: string }>`SELECT coalesce(string_agg(t, E'\n'), '') AS text FROM (
      SELECT payload::text AS t FROM eventfold.events
      UNION ALL SELECT metadata::text FROM eventfold.events
      UNION ALL SELECT state::text FROM eventfold.snapshots
      UNION ALL SELECT payload::text FROM eventfold.outbox
    ) AS stored`
  ).pipe(Effect.map((rows) => rows[0]!.text))
)

PersonalDataContract.suite("PgEventfold, application role", stackOn(), { rawText })
PersonalDataContract.suite("PgEventfold, application role, row-level security", stackOn({ rowLevelSecurity: true }), {
  rawText
})

class Registered extends Schema.TaggedClass<Registered>()("Registered", {
  customerId: Schema.String,
  email: PersonalData.field(Schema.String, { subject: "customerId", redacted: "[forgotten]" })
}) {}
type Command = { readonly customerId: string; readonly email: string }

const Customer = Aggregate.make({
  name: "Customer",
  decider: Decider.make<{ readonly email: string }, Command, Registered>({
    initialState: { email: "" },
    evolve: (_, event) => ({ email: event.email }),
    decide: (command) => Effect.succeed([new Registered(command)])
  }),
  events: Registered
})

const live = PersonalData.layer({ aggregates: [Customer] }).pipe(Layer.provideMerge(stackOn()))

describe("PersonalData on PostgreSQL", () => {
  it.live("a transactional projection replayed from the beginning after a forget writes the redacted value", () =>
    Effect.gen(function*() {
      yield* PgTest.asAdmin(
        Effect.flatMap(
          SqlClient.SqlClient,
          (sql) => sql`CREATE TABLE public.customer_emails (customer_id text PRIMARY KEY, email text NOT NULL)`
        )
      )
      const handler = yield* CommandHandler.make(Customer)
      const registered = yield* handler.handle("c-1", { customerId: "c-1", email: "ada@example.com" })
      const until = Option.getOrThrow(registered.position)
      const project = (id: string) =>
        Effect.gen(function*() {
          const projection = yield* PgProjection.make({
            id,
            pollInterval: "20 millis",
            ...EventQuery.handler({ aggregates: [Customer] }, ({ event }) =>
              Effect.flatMap(SqlClient.SqlClient, (sql) =>
                sql`INSERT INTO public.customer_emails (customer_id, email) VALUES (${event.customerId}, ${event.email})
                  ON CONFLICT (customer_id) DO UPDATE SET email = EXCLUDED.email`))
          })
          yield* Effect.forkScoped(projection.run)
          yield* projection.waitFor(until).pipe(Effect.timeout("30 seconds"))
          const sql = yield* SqlClient.SqlClient
          return (yield* sql<{ readonly email: string }>`SELECT email FROM public.customer_emails`).map((r) =>
            r.email
          )
        }).pipe(Effect.scoped)
      assert.deepStrictEqual(yield* project("emails-1"), ["ada@example.com"])
      yield* PersonalData.forget("c-1", { by: "dpo" })
      // The read model is rebuilt from the beginning (what a projection reset does), as the application role.
      yield* Effect.flatMap(SqlClient.SqlClient, (sql) => sql`DELETE FROM public.customer_emails`)
      assert.deepStrictEqual(yield* project("emails-2"), ["[forgotten]"])
    }).pipe(Effect.provide(live)))

  it.live("the application role creates, rotates and deletes keys and records forgets, but never alters either", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const [{ role }] = yield* sql<{ readonly role: string }>`SELECT current_user AS role`
      const privileges = yield* sql<{ readonly name: string; readonly granted: boolean }>`
        SELECT t || ':' || p AS name, has_table_privilege(current_user, 'eventfold.' || t, p) AS granted
          FROM unnest(ARRAY['events', 'subject_keys', 'forgotten_subjects']) AS t,
               unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) AS p
         ORDER BY 1`
      assert.deepStrictEqual(privileges.filter((p) => p.granted).map((p) => p.name), [
        "events:INSERT",
        "events:SELECT",
        "forgotten_subjects:INSERT",
        "forgotten_subjects:SELECT",
        "subject_keys:DELETE",
        "subject_keys:INSERT",
        "subject_keys:SELECT"
      ])
      const handler = yield* CommandHandler.make(Customer)
      yield* handler.handle("c-2", { customerId: "c-2", email: "bob@example.com" })
      yield* PersonalData.rotate("c-2")
      yield* PersonalData.forget("c-2", { by: "first" })
      yield* PersonalData.forget("c-2", { by: "second", reason: "again" })
      const audit = yield* PgTest.asAdmin(
        Effect.flatMap(
          SqlClient.SqlClient,
          (admin) =>
            admin<{ readonly forgotten_by: string; readonly keys_deleted: number }>`
          SELECT forgotten_by, keys_deleted FROM eventfold.forgotten_subjects WHERE subject_id = 'c-2' ORDER BY id`
        )
      )
      assert.deepStrictEqual(audit.map((r) => [r.forgotten_by, r.keys_deleted]), [["first", 2], ["second", 0]])
      const keys = yield* PgTest.asAdmin(
        Effect.flatMap(
          SqlClient.SqlClient,
          (admin) => admin`SELECT 1 FROM eventfold.subject_keys WHERE subject_id = 'c-2'`
        )
      )
      assert.strictEqual(keys.length, 0)
      // The audit trail cannot be rewritten by the application.
      for (
        const statement of [
          sql`DELETE FROM eventfold.forgotten_subjects`,
          sql`UPDATE eventfold.forgotten_subjects SET forgotten_by = 'nobody'`,
          sql`UPDATE eventfold.subject_keys SET generation = generation`
        ]
      ) {
        const refused = yield* Effect.flip(statement)
        assert.strictEqual((refused.cause as { code?: string }).code, "42501", role)
      }
    }).pipe(Effect.provide(live)))
})
