-- eventfold 0003: the transactional outbox. append_events writes one row per event when p_outbox is true; relays
-- claim rows with FOR UPDATE SKIP LOCKED under a lease and publish them in stream order.
-- Apply with psql:  psql "$DATABASE_URL" -v schema=eventfold -f migrations/0003_outbox.sql
\if :{?schema}
\else
\set schema eventfold
\endif

CREATE SCHEMA IF NOT EXISTS :"schema";
SET search_path TO :"schema", pg_catalog;

-- Status semantics as in eventsource-py's event_outbox: 'pending' -> 'published', or 'failed' (dead letter, keeping
-- last_error) after the relay's retry schedule is exhausted. A failed row blocks its stream's later rows, so
-- per-stream order holds; retrying it (status back to 'pending') unblocks the stream.
CREATE TABLE IF NOT EXISTS outbox (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  event_id        uuid NOT NULL,
  global_position bigint NOT NULL,
  transaction_id  xid8 NOT NULL,
  stream_type     text NOT NULL,
  stream_id       text NOT NULL,
  version         integer NOT NULL,
  event_type      text NOT NULL,
  schema_version  integer NOT NULL DEFAULT 1,
  payload         jsonb NOT NULL,
  metadata        jsonb NOT NULL DEFAULT '{}',
  status          text NOT NULL DEFAULT 'pending',
  retry_count     integer NOT NULL DEFAULT 0,
  last_error      text,
  -- Backoff survives a crash: the next attempt time is stored on the row, not held in a relay's memory.
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  -- The claim lease: a relay that dies holding rows loses them once claimed_until has passed.
  claimed_by      text,
  claimed_until   timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now(),
  published_at    timestamptz,
  CONSTRAINT outbox_status_check CHECK (status IN ('pending', 'published', 'failed')),
  CONSTRAINT outbox_event_id_key UNIQUE (event_id)
);

-- Finding each stream's head (its earliest unpublished row) reads only unpublished rows.
CREATE INDEX IF NOT EXISTS outbox_unpublished_idx ON outbox (stream_type, stream_id, global_position)
  WHERE status <> 'published';
-- Cleanup of published rows past their retention.
CREATE INDEX IF NOT EXISTS outbox_published_idx ON outbox (published_at) WHERE status = 'published';

-- append_events as in 0001 (same signature and behaviour), except that p_outbox now writes the outbox rows.
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
    -- One outbox row per inserted event, in this transaction: a rolled-back append leaves none.
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
