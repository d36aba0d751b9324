-- eventfold 0006: events are append-only in the database too. A statement-level trigger refuses UPDATE, DELETE and
-- TRUNCATE on events, whoever runs them (the owner, a migration, a buggy script), so appends pay nothing per row.
-- Apply with psql:  psql "$DATABASE_URL" -v schema=eventfold -f migrations/0006_append_only.sql
-- The library applies the same text through PgMigrations, substituting :"schema" (psql's quoted-identifier form).
--
-- The refusal is SQLSTATE EF001 ("events are append-only"), with a hint naming the escape hatch.
-- The escape hatch, for retention tooling and deliberate repairs only, is one transaction wide:
--   BEGIN;
--   SET LOCAL eventfold.allow_event_mutation = 'on';
--   DELETE FROM eventfold.events WHERE ...;
--   COMMIT;
-- Use SET LOCAL (or set_config(..., true)), never a session-wide SET: the guard cannot tell the two apart.
-- The application role needs no hatch: it has no UPDATE, DELETE or TRUNCATE privilege on events (see grants.sql).
\if :{?schema}
\else
\set schema eventfold
\endif

CREATE SCHEMA IF NOT EXISTS :"schema";
SET search_path TO :"schema", pg_catalog;

CREATE OR REPLACE FUNCTION refuse_event_mutation() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  IF current_setting('eventfold.allow_event_mutation', true) = 'on' THEN
    RETURN NULL;
  END IF;
  RAISE EXCEPTION 'events are append-only: % on %.% refused', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
    USING ERRCODE = 'EF001',
          HINT = 'Retention tooling may run SET LOCAL eventfold.allow_event_mutation = ''on'' in its transaction.';
END;
$$;

-- FOR EACH STATEMENT: the guard runs once per refused statement, never per appended row.
CREATE OR REPLACE TRIGGER events_append_only
  BEFORE UPDATE OR DELETE OR TRUNCATE ON events
  FOR EACH STATEMENT EXECUTE FUNCTION refuse_event_mutation();
