-- eventfold 0015: a lone append that never waits for a lock. With group commit (0011) an append that finds no other
-- queued goes out at once, alone, and holds the store's batch slot until it is done, so that the appends arriving
-- meanwhile queue and go out together after it. It must not hold the slot while it waits for a lock held elsewhere
-- (a caller's open transaction on its stream, a tenant move's cut-over): try_append_events tries the two locks
-- append_events takes and returns 'busy' at once when either is held; the library then gives the slot back and sends
-- the append through append_events, to wait on a connection of its own. append_batch does the same for a batch, but
-- a batch of one through it costs more than append_events alone (its argument checks and array slices). Measured
-- from `pg` with one writer on a 2-core machine: 1,702 appends/s through append_events, 1,515 through this function,
-- 1,229 through append_batch.
-- Otherwise the outcome is exactly append_events' (which takes the same locks again, a no-op when held).
-- Apply with psql:  psql "$DATABASE_URL" -v schema=eventfold -f migrations/0015_lone_append.sql
-- The library applies the same text through PgMigrations, substituting :"schema" (psql's quoted-identifier form).
\if :{?schema}
\else
\set schema eventfold
\endif

CREATE SCHEMA IF NOT EXISTS :"schema";
SET search_path TO :"schema", pg_catalog;

CREATE OR REPLACE FUNCTION try_append_events(
  p_tenant_id        text,
  p_stream_type      text,
  p_stream_id        text,
  p_expected_kind    text,
  p_expected_version integer,
  p_check_ids        boolean,
  p_event_ids        uuid[],
  p_event_types      text[],
  p_schema_versions  integer[],
  p_payloads         jsonb[],
  p_metadata         jsonb[],
  p_notify           boolean,
  p_outbox           boolean
) RETURNS TABLE (
  status             text,
  stream_version     integer,
  transaction_id     xid8,
  global_position    bigint,
  duplicate_event_id uuid
)
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
  -- The tenant's shared cut-over lock first, then the stream's, as append_events takes them. A NULL or empty tenant
  -- is append_events' to refuse.
  IF p_tenant_id IS NOT NULL AND p_tenant_id <> '' AND p_tenant_id <> '*' AND (
       NOT pg_try_advisory_xact_lock_shared(hashtextextended('tenant/' || p_tenant_id, 7131))
       OR NOT pg_try_advisory_xact_lock(
         hashtextextended(p_tenant_id || '/' || p_stream_type || '/' || p_stream_id, 7130))) THEN
    RETURN QUERY SELECT 'busy'::text, NULL::integer, NULL::xid8, NULL::bigint, NULL::uuid;
    RETURN;
  END IF;
  RETURN QUERY
    SELECT * FROM append_events(p_tenant_id, p_stream_type, p_stream_id, p_expected_kind, p_expected_version,
                                p_check_ids, p_event_ids, p_event_types, p_schema_versions, p_payloads, p_metadata,
                                p_notify, p_outbox);
END;
$$;
