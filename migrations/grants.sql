-- eventfold: the least-privilege application role. Not a migration: a DBA runs it, as the owner of the schema's
-- tables, after the migrations (and again after each upgrade; every statement is safe to repeat).
-- Apply with psql:  psql "$DATABASE_URL" -1 -v schema=eventfold -v role=app -f migrations/grants.sql
-- The role must exist already (CREATE ROLE app LOGIN PASSWORD '...'); PgRoles.grantApplicationRole applies the same
-- text, substituting :"schema" and :"role".
--
-- What the role gets is exactly what the library does at run time. It gets no DDL (no CREATE on the schema, no
-- ownership) and no UPDATE, DELETE or TRUNCATE on events: the only way to write an event is to append one. Identity
-- columns need no grant on their sequences, and append_events runs with the caller's privileges (SECURITY INVOKER),
-- so the table grants below are also what it needs: an `Any` append upserts the stream row, hence UPDATE on streams.
\set ON_ERROR_STOP on
\if :{?schema}
\else
\set schema eventfold
\endif
\if :{?role}
\else
\warn 'grants.sql needs the application role: psql -v role=<name> [-v schema=eventfold] -f migrations/grants.sql'
\set role ''
\endif

GRANT USAGE ON SCHEMA :"schema" TO :"role";
-- Reads: every table in the schema, eventfold_migrations included when the library migrated it (PgMigrations.run
-- then only reads it, so a role that starts with PgMigrations.layer needs no DDL once nothing is pending).
GRANT SELECT ON ALL TABLES IN SCHEMA :"schema" TO :"role";
-- Writes: appends (an `Any` append upserts the stream row), snapshots, the outbox (DELETE: cleanup of published
-- rows), checkpoints and dead letters.
GRANT INSERT ON :"schema".events TO :"role";
GRANT INSERT, UPDATE ON :"schema".streams TO :"role";
GRANT EXECUTE ON FUNCTION :"schema".append_events TO :"role";
-- Group commit (0011): several appends in one statement, each through append_events.
GRANT EXECUTE ON FUNCTION :"schema".append_batch TO :"role";
-- A lone append that never waits for a lock (0015), then through append_events.
GRANT EXECUTE ON FUNCTION :"schema".try_append_events TO :"role";
GRANT INSERT, UPDATE, DELETE ON :"schema".snapshots TO :"role";
GRANT INSERT, UPDATE, DELETE ON :"schema".outbox TO :"role";
GRANT INSERT, UPDATE ON :"schema".checkpoints TO :"role";
GRANT INSERT ON :"schema".dead_letters TO :"role";
-- Stream, feed and snapshot reads in one round trip, and enter_tenant, which scopes a transaction to a tenant (0007); like
-- append_events they run with the caller's privileges, so the table grants above are what they need.
GRANT EXECUTE ON FUNCTION :"schema".read_stream TO :"role";
GRANT EXECUTE ON FUNCTION :"schema".read_all TO :"role";
-- The statement of a feed page, which read_all runs (0008).
GRANT EXECUTE ON FUNCTION :"schema".read_all_query TO :"role";
GRANT EXECUTE ON FUNCTION :"schema".load_snapshot TO :"role";
-- Stream lifecycle (0009). truncate_stream and expire_events delete events, which this role may not: granted so
-- that they fail with a permission error, not a missing function.
GRANT EXECUTE ON FUNCTION :"schema".stream_state TO :"role";
GRANT EXECUTE ON FUNCTION :"schema".stream_info TO :"role";
GRANT EXECUTE ON FUNCTION :"schema".change_stream TO :"role";
GRANT EXECUTE ON FUNCTION :"schema".truncate_stream TO :"role";
GRANT EXECUTE ON FUNCTION :"schema".expire_events TO :"role";
GRANT EXECUTE ON FUNCTION :"schema".enter_tenant TO :"role";
-- The feed head over every tenant (a position, never an event), which tenant-scoped subscriptions need under
-- row-level security; it runs with the owner's rights, so it is granted by name.
GRANT EXECUTE ON FUNCTION :"schema".feed_head() TO :"role";
-- append_events reads tenant_blocks to refuse a blocked tenant's writes (0007; also covered by the SELECT on every
-- table above, named here because appends fail without it). The role never writes it, nor tenant_moves: moving a
-- tenant (PgTenantMove) is the owner's work.
GRANT SELECT ON :"schema".tenant_blocks TO :"role";
-- BEGIN personal data (0010) ---------------------------------------------------------------------------------------
-- The per-subject keys and the audit trail of forgotten subjects (PgKeyStore). The role creates and rotates keys
-- (INSERT) and forgets subjects (DELETE of their keys, INSERT of the audit row); it never changes a key, and never
-- changes or deletes an audit row. SELECT comes with every table above.
GRANT INSERT, DELETE ON :"schema".subject_keys TO :"role";
GRANT INSERT ON :"schema".forgotten_subjects TO :"role";
-- END personal data (0010) -----------------------------------------------------------------------------------------
