-- eventfold 0011: group commit. append_batch runs several independent appends (to any streams, of any tenants) in
-- one statement and one transaction, so that concurrent writers of one process share a round trip and a commit
-- (PgEventStore's group commit). Each append keeps its own outcome: append_batch returns append_events' row for each,
-- numbered by its position in the arguments ('ok', 'idempotent', 'conflict', 'duplicate', 'blocked', 'archived',
-- 'deleted'; never 'stale', below). An error raised by one append (a unique violation, a deadlock) aborts the whole
-- statement, and nothing of the batch is written: the library then runs that batch's appends one by one.
--
-- Locks. Every tenant's shared cut-over lock, then every stream's append lock, are taken first, each set in key
-- order, before the transaction has an id: two batches lock in the same order (no deadlock between them), and the
-- transaction id the first write takes is newer than that of every append that committed to one of these streams
-- before. So no append of the batch can find its stream written by a newer transaction ('stale'), and the feed keeps
-- each stream's events in version order: all of a batch's events share one transaction id, in argument order.
--
-- The appends of a batch may belong to different tenants: each runs in its own tenant's scope (eventfold.tenant, for
-- row-level security), set here before each one.
-- A batch is meant for appends outside any caller's transaction (the library only batches those). The events of the
-- i-th append are the p_event_counts[i] elements of the event arrays that follow those of the appends before it.
-- Apply with psql:  psql "$DATABASE_URL" -v schema=eventfold -f migrations/0011_group_commit.sql
-- The library applies the same text through PgMigrations, substituting :"schema" (psql's quoted-identifier form).
\if :{?schema}
\else
\set schema eventfold
\endif

CREATE SCHEMA IF NOT EXISTS :"schema";
SET search_path TO :"schema", pg_catalog;

CREATE OR REPLACE FUNCTION append_batch(
  p_tenant_ids        text[],
  p_stream_types      text[],
  p_stream_ids        text[],
  p_expected_kinds    text[],
  p_expected_versions integer[],
  p_check_ids         boolean[],
  p_event_counts      integer[],
  p_event_ids         uuid[],
  p_event_types       text[],
  p_schema_versions   integer[],
  p_payloads          jsonb[],
  p_metadata          jsonb[],
  p_notify            boolean,
  p_outbox            boolean
) RETURNS TABLE (
  ord                integer,
  status             text,
  stream_version     integer,
  transaction_id     xid8,
  global_position    bigint,
  duplicate_event_id uuid
)
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
  v_n     integer := coalesce(cardinality(p_tenant_ids), 0);
  v_start integer := 1;
  v_end   integer;
  v_key   bigint;
  -- The transaction's tenant scope on entry: none for a transaction of its own, which is how the library calls this.
  v_scope text := coalesce(current_setting('eventfold.tenant', true), '');
BEGIN
  IF v_n = 0 OR coalesce(cardinality(p_stream_types), 0) <> v_n OR coalesce(cardinality(p_stream_ids), 0) <> v_n
     OR coalesce(cardinality(p_expected_kinds), 0) <> v_n OR coalesce(cardinality(p_expected_versions), 0) <> v_n
     OR coalesce(cardinality(p_check_ids), 0) <> v_n OR coalesce(cardinality(p_event_counts), 0) <> v_n THEN
    RAISE EXCEPTION 'append_batch: the per-append arrays must be non-empty and of one length' USING ERRCODE = '22023';
  END IF;
  IF (SELECT sum(c) FROM unnest(p_event_counts) c) IS DISTINCT FROM cardinality(p_event_ids)
     OR cardinality(p_event_types) <> cardinality(p_event_ids) OR cardinality(p_schema_versions) <> cardinality(p_event_ids)
     OR cardinality(p_payloads) <> cardinality(p_event_ids) OR cardinality(p_metadata) <> cardinality(p_event_ids) THEN
    RAISE EXCEPTION 'append_batch: the event arrays must hold the sum of p_event_counts elements each'
      USING ERRCODE = '22023';
  END IF;

  -- The same locks append_events takes, all of them up front and in key order (see the header).
  FOR v_key IN
    SELECT DISTINCT hashtextextended('tenant/' || t, 7131) FROM unnest(p_tenant_ids) AS t ORDER BY 1
  LOOP
    PERFORM pg_advisory_xact_lock_shared(v_key);
  END LOOP;
  FOR v_key IN
    SELECT DISTINCT hashtextextended(u.t || '/' || u.st || '/' || u.sid, 7130)
      FROM unnest(p_tenant_ids, p_stream_types, p_stream_ids) AS u(t, st, sid) ORDER BY 1
  LOOP
    PERFORM pg_advisory_xact_lock(v_key);
  END LOOP;

  FOR i IN 1 .. v_n LOOP
    v_end := v_start + p_event_counts[i] - 1;
    -- Each append runs in its own tenant's scope, as it would in a transaction of its own (enter_tenant refuses a
    -- second tenant in one transaction). A transaction that was scoped on entry keeps its scope, and enter_tenant
    -- refuses the appends of other tenants, as for single appends.
    IF v_scope = '' THEN
      PERFORM set_config('eventfold.tenant', p_tenant_ids[i], true);
    END IF;
    -- append_events takes the same locks again (a no-op now) and does the rest, as for a single append.
    RETURN QUERY
      SELECT i, a.status, a.stream_version, a.transaction_id, a.global_position, a.duplicate_event_id
        FROM append_events(p_tenant_ids[i], p_stream_types[i], p_stream_ids[i], p_expected_kinds[i],
                           p_expected_versions[i], p_check_ids[i], p_event_ids[v_start:v_end],
                           p_event_types[v_start:v_end], p_schema_versions[v_start:v_end],
                           p_payloads[v_start:v_end], p_metadata[v_start:v_end], p_notify, p_outbox) AS a;
    v_start := v_end + 1;
  END LOOP;
END;
$$;
