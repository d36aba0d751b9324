-- eventfold 0005: per-stream order in the feed. The feed is ordered by (transaction_id, global_position), and
-- PostgreSQL gives a transaction its id at its first write, not at commit. A caller's transaction that wrote something
-- early holds an older id than an append that committed meanwhile; had it then appended the stream's next version,
-- the feed would deliver version n+1 before n. So the stream row records the transaction id of its last append, and
-- append_events refuses (status 'stale', a retryable conflict) an append from a transaction older than that one.
-- Standalone appends never hit it: they take the stream's advisory lock before their transaction has an id, so the
-- id they get is newer than that of every append that committed before them.
-- Apply it while no append runs on the 0001 function: one blocked behind the ALTER TABLE would finish without
-- recording its transaction id, leaving that stream's check lenient until its next append.
-- Also: the NOTIFY channel is cut to 56 bytes of the schema name plus "_events", within the 63-byte limit.
-- Apply with psql:  psql "$DATABASE_URL" -v schema=eventfold -f migrations/0005_stream_order.sql
-- The library applies the same text through PgMigrations, substituting :"schema" (psql's quoted-identifier form).
\if :{?schema}
\else
\set schema eventfold
\endif

CREATE SCHEMA IF NOT EXISTS :"schema";
SET search_path TO :"schema", pg_catalog;

-- The transaction of the stream's last append; an append from an older transaction is refused.
ALTER TABLE streams ADD COLUMN IF NOT EXISTS last_transaction_id xid8;

-- Existing streams: the transaction that wrote their current version (the one with the highest version).
UPDATE streams s
   SET last_transaction_id = e.transaction_id
  FROM events e
 WHERE s.last_transaction_id IS NULL
   AND e.stream_type = s.stream_type AND e.stream_id = s.stream_id AND e.version = s.version;

-- Appends events to one stream in one call: checks the expected version on the stream row, inserts every event in
-- one statement, and sends one NOTIFY hint per transaction. Version conflicts, idempotent repeats and duplicates
-- within the stream are returned as a status, not raised, so a caller's surrounding transaction stays usable; an
-- event id already used by another stream still raises unique_violation (the client reports DuplicateEvent).
--   p_expected_kind: 'any' | 'no_stream' | 'stream_exists' | 'exact'
--   p_check_ids:     the caller supplied event ids, so a retried append must be recognised (idempotency)
-- Returns status 'ok' | 'idempotent' | 'conflict' | 'duplicate' | 'stale'. 'stale': the expected version holds, but
-- the stream's last append came from a transaction newer than this one (see the header); nothing was written, and
-- only a new transaction can succeed.
CREATE OR REPLACE FUNCTION append_events(
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
DECLARE
  v_count    integer := cardinality(p_event_ids);
  v_version  integer;
  v_existing integer;
  v_matching integer;
  v_last     bigint;
  v_dup      uuid;
  v_xid      xid8;
  v_current  integer;
  v_last_xid xid8;
BEGIN
  IF v_count IS NULL OR v_count = 0 THEN
    RAISE EXCEPTION 'append_events: no events' USING ERRCODE = '22023';
  END IF;

  -- Serialise appends to this stream, taken before this transaction has an id of its own where it has none yet: the
  -- id it then gets is newer than that of every append to the stream that committed before. Appends that carry ids
  -- also rely on it, so a concurrent retry sees the first one's rows.
  PERFORM pg_advisory_xact_lock(hashtextextended(p_stream_type || '/' || p_stream_id, 7130));
  -- The transaction's id if it already has one (it wrote before); NULL otherwise. No id is taken here: an append that
  -- ends as a conflict or an idempotent repeat writes nothing and must not hold back the feed horizon.
  v_xid := pg_current_xact_id_if_assigned();

  IF p_check_ids THEN
    SELECT count(*)::integer,
           count(*) FILTER (WHERE e.stream_type = p_stream_type AND e.stream_id = p_stream_id
                              AND e.event_type = n.event_type AND e.payload = n.payload)::integer
      INTO v_existing, v_matching
      FROM unnest(p_event_ids, p_event_types, p_payloads) AS n(event_id, event_type, payload)
      JOIN events e ON e.event_id = n.event_id;
    IF v_existing > 0 THEN
      IF v_existing = v_count AND v_matching = v_count THEN
        RETURN QUERY
          SELECT 'idempotent'::text, e.version, e.transaction_id, e.global_position, NULL::uuid
            FROM events e WHERE e.event_id = p_event_ids[v_count];
        RETURN;
      END IF;
      SELECT n.event_id INTO v_dup
        FROM unnest(p_event_ids, p_event_types, p_payloads) WITH ORDINALITY AS n(event_id, event_type, payload, ord)
        JOIN events e ON e.event_id = n.event_id
       WHERE NOT (e.stream_type = p_stream_type AND e.stream_id = p_stream_id
                  AND e.event_type = n.event_type AND e.payload = n.payload)
       ORDER BY n.ord LIMIT 1;
      RETURN QUERY SELECT 'duplicate'::text, NULL::integer, NULL::xid8, NULL::bigint,
                          coalesce(v_dup, p_event_ids[1]);
      RETURN;
    END IF;
  END IF;

  IF p_expected_kind = 'any' THEN
    INSERT INTO streams AS s (stream_type, stream_id, version, tenant_id, last_transaction_id)
    VALUES (p_stream_type, p_stream_id, v_count, p_metadata[1] ->> 'tenantId', pg_current_xact_id())
    ON CONFLICT (stream_type, stream_id)
      DO UPDATE SET version = s.version + v_count, updated_at = now(), last_transaction_id = pg_current_xact_id()
      WHERE v_xid IS NULL OR s.last_transaction_id IS NULL OR s.last_transaction_id <= v_xid
    RETURNING s.version INTO v_version;
  ELSIF p_expected_kind = 'no_stream' OR (p_expected_kind = 'exact' AND p_expected_version = 0) THEN
    INSERT INTO streams (stream_type, stream_id, version, tenant_id, last_transaction_id)
    VALUES (p_stream_type, p_stream_id, v_count, p_metadata[1] ->> 'tenantId', pg_current_xact_id())
    ON CONFLICT (stream_type, stream_id) DO NOTHING
    RETURNING version INTO v_version;
  ELSIF p_expected_kind = 'exact' THEN
    UPDATE streams SET version = version + v_count, updated_at = now(), last_transaction_id = pg_current_xact_id()
     WHERE stream_type = p_stream_type AND stream_id = p_stream_id AND version = p_expected_version
       AND (v_xid IS NULL OR last_transaction_id IS NULL OR last_transaction_id <= v_xid)
    RETURNING version INTO v_version;
  ELSIF p_expected_kind = 'stream_exists' THEN
    UPDATE streams SET version = version + v_count, updated_at = now(), last_transaction_id = pg_current_xact_id()
     WHERE stream_type = p_stream_type AND stream_id = p_stream_id
       AND (v_xid IS NULL OR last_transaction_id IS NULL OR last_transaction_id <= v_xid)
    RETURNING version INTO v_version;
  ELSE
    RAISE EXCEPTION 'append_events: unknown expected kind %', p_expected_kind USING ERRCODE = '22023';
  END IF;

  IF v_version IS NULL THEN
    -- A fresh snapshot: the actual version includes whatever a concurrent writer just committed.
    SELECT s.version, s.last_transaction_id INTO v_current, v_last_xid
      FROM streams s WHERE s.stream_type = p_stream_type AND s.stream_id = p_stream_id;
    v_current := coalesce(v_current, 0);
    IF v_last_xid > v_xid AND (p_expected_kind = 'any' OR (p_expected_kind = 'stream_exists' AND v_current > 0)
                               OR (p_expected_kind = 'exact' AND v_current = p_expected_version)) THEN
      RETURN QUERY SELECT 'stale'::text, v_current, NULL::xid8, NULL::bigint, NULL::uuid;
    ELSE
      RETURN QUERY SELECT 'conflict'::text, v_current, NULL::xid8, NULL::bigint, NULL::uuid;
    END IF;
    RETURN;
  END IF;

  WITH inserted AS (
    INSERT INTO events (stream_type, stream_id, version, event_id, event_type, schema_version, payload, metadata,
                        tenant_id, actor_id, correlation_id, causation_id)
    SELECT p_stream_type, p_stream_id, v_version - v_count + n.ord::integer, n.event_id, n.event_type,
           n.schema_version, n.payload, n.metadata,
           n.metadata ->> 'tenantId', n.metadata ->> 'actorId', n.metadata ->> 'correlationId',
           n.metadata ->> 'causationId'
      FROM unnest(p_event_ids, p_event_types, p_schema_versions, p_payloads, p_metadata)
           WITH ORDINALITY AS n(event_id, event_type, schema_version, payload, metadata, ord)
     ORDER BY n.ord
    RETURNING events.global_position
  )
  SELECT max(inserted.global_position) INTO v_last FROM inserted;

  IF p_outbox THEN
    -- One outbox row per inserted event, in this transaction: a rolled-back append leaves none. The outbox table
    -- comes from 0003_outbox.sql; PL/pgSQL resolves it only when this branch runs.
    INSERT INTO outbox (event_id, global_position, transaction_id, stream_type, stream_id, version, event_type,
                        schema_version, payload, metadata)
    SELECT e.event_id, e.global_position, e.transaction_id, e.stream_type, e.stream_id, e.version, e.event_type,
           e.schema_version, e.payload, e.metadata
      FROM events e
     WHERE e.stream_type = p_stream_type AND e.stream_id = p_stream_id AND e.version > v_version - v_count
     ORDER BY e.version;
  END IF;

  IF p_notify THEN
    -- Identical notifications in one transaction are folded into one: at most one hint per transaction. The channel
    -- is cut to fit PostgreSQL's 63-byte identifier limit for the longest schema name (a shared prefix only costs
    -- another schema's readers a spurious wake-up).
    PERFORM pg_notify(left(current_schema(), 56) || '_events', '1');
  END IF;

  RETURN QUERY SELECT 'ok'::text, v_version, pg_current_xact_id(), v_last, NULL::uuid;
END;
$$;
