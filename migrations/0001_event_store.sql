-- eventfold 0001: streams and events, the append function and the feed horizon.
-- Apply with psql:  psql "$DATABASE_URL" -v schema=eventfold -f migrations/0001_event_store.sql
-- The library applies the same text through PgMigrations, substituting :"schema" (psql's quoted-identifier form).
\if :{?schema}
\else
\set schema eventfold
\endif

CREATE SCHEMA IF NOT EXISTS :"schema";
SET search_path TO :"schema", pg_catalog;

-- One row per stream; the row is the optimistic-concurrency lock.
CREATE TABLE IF NOT EXISTS streams (
  stream_type text NOT NULL,
  stream_id   text NOT NULL,
  version     integer NOT NULL CHECK (version > 0),
  tenant_id   text,
  archived    boolean NOT NULL DEFAULT false,
  deleted     boolean NOT NULL DEFAULT false,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (stream_type, stream_id)
);

CREATE TABLE IF NOT EXISTS events (
  global_position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  transaction_id  xid8 NOT NULL DEFAULT pg_current_xact_id(),
  stream_type     text NOT NULL,
  stream_id       text NOT NULL,
  version         integer NOT NULL CHECK (version > 0),
  event_id        uuid NOT NULL,
  event_type      text NOT NULL,
  schema_version  integer NOT NULL DEFAULT 1,
  payload         jsonb NOT NULL,
  metadata        jsonb NOT NULL DEFAULT '{}',
  tenant_id       text,
  actor_id        text,
  correlation_id  text,
  causation_id    text,
  recorded_at     timestamptz NOT NULL DEFAULT now(),
  -- The backstop: even a writer that bypasses append_events cannot fork a stream.
  CONSTRAINT events_stream_version_key UNIQUE (stream_type, stream_id, version),
  CONSTRAINT events_event_id_key UNIQUE (event_id)
);

-- The feed is read in (transaction_id, global_position) order below the xmin horizon.
CREATE INDEX IF NOT EXISTS events_feed_idx ON events (transaction_id, global_position);
CREATE INDEX IF NOT EXISTS events_tenant_idx ON events (tenant_id, transaction_id, global_position) WHERE tenant_id IS NOT NULL;

-- Appends events to one stream in one call: checks the expected version on the stream row, inserts every event in
-- one statement, and sends one NOTIFY hint per transaction. Version conflicts, idempotent repeats and duplicates
-- within the stream are returned as a status, not raised, so a caller's surrounding transaction stays usable; an
-- event id already used by another stream still raises unique_violation (the client reports DuplicateEvent).
--   p_expected_kind: 'any' | 'no_stream' | 'stream_exists' | 'exact'
--   p_check_ids:     the caller supplied event ids, so a retried append must be recognised (idempotency)
-- Returns status 'ok' | 'idempotent' | 'conflict' | 'duplicate'.
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
BEGIN
  IF v_count IS NULL OR v_count = 0 THEN
    RAISE EXCEPTION 'append_events: no events' USING ERRCODE = '22023';
  END IF;

  IF p_check_ids THEN
    -- Serialise appends that carry ids on this stream, so a concurrent retry sees the first one's rows.
    PERFORM pg_advisory_xact_lock(hashtextextended(p_stream_type || '/' || p_stream_id, 7130));
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
    INSERT INTO streams AS s (stream_type, stream_id, version, tenant_id)
    VALUES (p_stream_type, p_stream_id, v_count, p_metadata[1] ->> 'tenantId')
    ON CONFLICT (stream_type, stream_id)
      DO UPDATE SET version = s.version + v_count, updated_at = now()
    RETURNING s.version INTO v_version;
  ELSIF p_expected_kind = 'no_stream' OR (p_expected_kind = 'exact' AND p_expected_version = 0) THEN
    INSERT INTO streams (stream_type, stream_id, version, tenant_id)
    VALUES (p_stream_type, p_stream_id, v_count, p_metadata[1] ->> 'tenantId')
    ON CONFLICT (stream_type, stream_id) DO NOTHING
    RETURNING version INTO v_version;
  ELSIF p_expected_kind = 'exact' THEN
    UPDATE streams SET version = version + v_count, updated_at = now()
     WHERE stream_type = p_stream_type AND stream_id = p_stream_id AND version = p_expected_version
    RETURNING version INTO v_version;
  ELSIF p_expected_kind = 'stream_exists' THEN
    UPDATE streams SET version = version + v_count, updated_at = now()
     WHERE stream_type = p_stream_type AND stream_id = p_stream_id
    RETURNING version INTO v_version;
  ELSE
    RAISE EXCEPTION 'append_events: unknown expected kind %', p_expected_kind USING ERRCODE = '22023';
  END IF;

  IF v_version IS NULL THEN
    -- A fresh snapshot: the actual version includes whatever a concurrent writer just committed.
    RETURN QUERY
      SELECT 'conflict'::text, coalesce((SELECT s.version FROM streams s
                                          WHERE s.stream_type = p_stream_type AND s.stream_id = p_stream_id), 0),
             NULL::xid8, NULL::bigint, NULL::uuid;
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
    -- Identical notifications in one transaction are folded into one: at most one hint per transaction.
    PERFORM pg_notify(current_schema() || '_events', '1');
  END IF;

  RETURN QUERY SELECT 'ok'::text, v_version, pg_current_xact_id(), v_last, NULL::uuid;
END;
$$;
