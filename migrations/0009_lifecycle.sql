-- eventfold 0009: stream lifecycle and retention (StreamLifecycle). A stream can be archived (appends refused with
-- status 'archived'; reads fail unless they ask for archived streams; feed reads filtered by stream type leave its
-- events out), tombstoned (status 'deleted' for good; reads say deleted), soft-deleted (reads see no stream, and the
-- next append recreates it: it counts as no stream, and its versions continue after the old ones; first_version
-- hides the old events from reads of the stream, origin remembers where its new life began), truncated before a
-- version and expired by age (both delete events: they need the owner's rights, and open the append-only guard of
-- 0006 for their own statement only).
-- Archive, unarchive and delete take the stream's append lock (the advisory lock of append_events), so an append in
-- flight commits before the change, and every later one sees it.
-- recorded_at is now the time the event is written (clock_timestamp(), under the stream's lock), not the time its
-- transaction began: a stream's events are recorded in version order, which point-in-time loads rely on.
-- read_stream, read_all_query and read_all get a p_include_archived argument (the previous functions are dropped, so
-- a previous release of the library cannot read any more: migrate, then deploy the release that ships this file).
-- Apply with psql:  psql "$DATABASE_URL" -v schema=eventfold -f migrations/0009_lifecycle.sql
-- The library applies the same text through PgMigrations, substituting :"schema" (psql's quoted-identifier form).
\if :{?schema}
\else
\set schema eventfold
\endif

CREATE SCHEMA IF NOT EXISTS :"schema";
SET search_path TO :"schema", pg_catalog;

ALTER TABLE streams ADD COLUMN IF NOT EXISTS first_version integer NOT NULL DEFAULT 1;
ALTER TABLE streams ADD COLUMN IF NOT EXISTS soft_deleted boolean NOT NULL DEFAULT false;
ALTER TABLE streams ADD COLUMN IF NOT EXISTS origin integer NOT NULL DEFAULT 0;
-- The archived streams, for the feed's anti-join: small, and empty for most stores.
CREATE INDEX IF NOT EXISTS streams_archived_idx ON streams (tenant_id, stream_type, stream_id) WHERE archived;
ALTER TABLE events ALTER COLUMN recorded_at SET DEFAULT clock_timestamp();

-- append_events of 0007, refusing archived and tombstoned streams and recreating soft-deleted ones.
-- Returns status 'ok' | 'idempotent' | 'conflict' | 'duplicate' | 'stale' | 'blocked' | 'archived' | 'deleted'.
CREATE OR REPLACE FUNCTION append_events(
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
  v_archived boolean;
  v_deleted  boolean;
  v_soft     boolean;
BEGIN
  IF p_tenant_id IS NULL OR p_tenant_id = '' OR p_tenant_id = '*' THEN
    RAISE EXCEPTION 'append_events: invalid tenant id %', coalesce('"' || p_tenant_id || '"', 'NULL')
      USING ERRCODE = '22023';
  END IF;
  -- Sets no transaction id: the advisory lock below must still come first.
  PERFORM enter_tenant(p_tenant_id);
  IF v_count IS NULL OR v_count = 0 THEN
    RAISE EXCEPTION 'append_events: no events' USING ERRCODE = '22023';
  END IF;

  -- The tenant's cut-over lock, shared by its appends: a move's cut-over takes it exclusively, so it waits for the
  -- appends in flight and holds new ones back until its block is committed; then the check below sees the block (a
  -- statement of a read-committed transaction takes a new snapshot; the move waits out older snapshots). Like the
  -- stream lock below, it is taken before this transaction has an id where it has none yet.
  PERFORM pg_advisory_xact_lock_shared(hashtextextended('tenant/' || p_tenant_id, 7131));
  IF EXISTS (SELECT 1 FROM tenant_blocks b WHERE b.tenant_id = p_tenant_id) THEN
    RETURN QUERY SELECT 'blocked'::text, NULL::integer, NULL::xid8, NULL::bigint, NULL::uuid;
    RETURN;
  END IF;

  -- Serialise appends to this stream, taken before this transaction has an id of its own where it has none yet: the
  -- id it then gets is newer than that of every append to the stream that committed before. Appends that carry ids
  -- also rely on it, so a concurrent retry sees the first one's rows.
  PERFORM pg_advisory_xact_lock(hashtextextended(p_tenant_id || '/' || p_stream_type || '/' || p_stream_id, 7130));
  -- The transaction's id if it already has one (it wrote before); NULL otherwise. No id is taken here: an append that
  -- ends as a conflict or an idempotent repeat writes nothing and must not hold back the feed horizon.
  v_xid := pg_current_xact_id_if_assigned();

  IF p_check_ids THEN
    SELECT count(*)::integer,
           count(*) FILTER (WHERE e.tenant_id = p_tenant_id AND e.stream_type = p_stream_type
                              AND e.stream_id = p_stream_id
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
      -- An id stored in another stream, another tenant's included, or with other content.
      SELECT n.event_id INTO v_dup
        FROM unnest(p_event_ids, p_event_types, p_payloads) WITH ORDINALITY AS n(event_id, event_type, payload, ord)
        JOIN events e ON e.event_id = n.event_id
       WHERE NOT (e.tenant_id = p_tenant_id AND e.stream_type = p_stream_type AND e.stream_id = p_stream_id
                  AND e.event_type = n.event_type AND e.payload = n.payload)
       ORDER BY n.ord LIMIT 1;
      RETURN QUERY SELECT 'duplicate'::text, NULL::integer, NULL::xid8, NULL::bigint,
                          coalesce(v_dup, p_event_ids[1]);
      RETURN;
    END IF;
  END IF;

  -- An archived or tombstoned stream takes no append; a soft-deleted one is recreated by 'any' (below for the
  -- others), its versions continuing after the old ones. The checks ride on the statements that lock the row.
  IF p_expected_kind = 'any' THEN
    INSERT INTO streams AS s (tenant_id, stream_type, stream_id, version, last_transaction_id)
    VALUES (p_tenant_id, p_stream_type, p_stream_id, v_count, pg_current_xact_id())
    ON CONFLICT (tenant_id, stream_type, stream_id)
      DO UPDATE SET version = s.version + v_count, updated_at = now(), last_transaction_id = pg_current_xact_id(),
                    soft_deleted = false
      WHERE (v_xid IS NULL OR s.last_transaction_id IS NULL OR s.last_transaction_id <= v_xid)
        AND NOT s.archived AND NOT s.deleted
    RETURNING s.version INTO v_version;
  ELSIF p_expected_kind = 'no_stream' OR (p_expected_kind = 'exact' AND p_expected_version = 0) THEN
    INSERT INTO streams (tenant_id, stream_type, stream_id, version, last_transaction_id)
    VALUES (p_tenant_id, p_stream_type, p_stream_id, v_count, pg_current_xact_id())
    ON CONFLICT (tenant_id, stream_type, stream_id) DO NOTHING
    RETURNING version INTO v_version;
  ELSIF p_expected_kind = 'exact' THEN
    UPDATE streams SET version = version + v_count, updated_at = now(), last_transaction_id = pg_current_xact_id()
     WHERE tenant_id = p_tenant_id AND stream_type = p_stream_type AND stream_id = p_stream_id
       AND version = p_expected_version
       AND (v_xid IS NULL OR last_transaction_id IS NULL OR last_transaction_id <= v_xid)
       AND NOT archived AND NOT deleted AND NOT soft_deleted
    RETURNING version INTO v_version;
  ELSIF p_expected_kind = 'stream_exists' THEN
    UPDATE streams SET version = version + v_count, updated_at = now(), last_transaction_id = pg_current_xact_id()
     WHERE tenant_id = p_tenant_id AND stream_type = p_stream_type AND stream_id = p_stream_id
       AND (v_xid IS NULL OR last_transaction_id IS NULL OR last_transaction_id <= v_xid)
       AND NOT archived AND NOT deleted AND NOT soft_deleted
    RETURNING version INTO v_version;
  ELSE
    RAISE EXCEPTION 'append_events: unknown expected kind %', p_expected_kind USING ERRCODE = '22023';
  END IF;

  IF v_version IS NULL THEN
    -- A fresh snapshot: the actual version includes whatever a concurrent writer just committed.
    SELECT s.version, s.last_transaction_id, s.archived, s.deleted, s.soft_deleted
      INTO v_current, v_last_xid, v_archived, v_deleted, v_soft
      FROM streams s WHERE s.tenant_id = p_tenant_id AND s.stream_type = p_stream_type AND s.stream_id = p_stream_id;
    IF v_deleted THEN
      RETURN QUERY SELECT 'deleted'::text, v_current, NULL::xid8, NULL::bigint, NULL::uuid;
      RETURN;
    ELSIF v_archived THEN
      RETURN QUERY SELECT 'archived'::text, v_current, NULL::xid8, NULL::bigint, NULL::uuid;
      RETURN;
    ELSIF v_soft AND (p_expected_kind = 'no_stream' OR (p_expected_kind = 'exact' AND p_expected_version = 0))
          AND (v_xid IS NULL OR v_last_xid IS NULL OR v_last_xid <= v_xid) THEN
      -- Recreating a soft-deleted stream: it counts as no stream, and its versions continue.
      UPDATE streams SET version = version + v_count, updated_at = now(), last_transaction_id = pg_current_xact_id(),
                         soft_deleted = false
       WHERE tenant_id = p_tenant_id AND stream_type = p_stream_type AND stream_id = p_stream_id
      RETURNING version INTO v_version;
    END IF;
  END IF;

  IF v_version IS NULL THEN
    -- A soft-deleted stream's version is 0 to expected-version checks.
    v_current := CASE WHEN v_soft THEN 0 ELSE coalesce(v_current, 0) END;
    IF v_last_xid > v_xid AND (p_expected_kind = 'any' OR (p_expected_kind = 'stream_exists' AND v_current > 0)
                               OR (p_expected_kind = 'exact' AND v_current = p_expected_version)) THEN
      RETURN QUERY SELECT 'stale'::text, v_current, NULL::xid8, NULL::bigint, NULL::uuid;
    ELSE
      RETURN QUERY SELECT 'conflict'::text, v_current, NULL::xid8, NULL::bigint, NULL::uuid;
    END IF;
    RETURN;
  END IF;

  WITH inserted AS (
    INSERT INTO events (tenant_id, stream_type, stream_id, version, event_id, event_type, schema_version, payload,
                        metadata, actor_id, correlation_id, causation_id)
    SELECT p_tenant_id, p_stream_type, p_stream_id, v_version - v_count + n.ord::integer, n.event_id, n.event_type,
           n.schema_version, n.payload, n.metadata,
           n.metadata ->> 'actorId', n.metadata ->> 'correlationId', n.metadata ->> 'causationId'
      FROM unnest(p_event_ids, p_event_types, p_schema_versions, p_payloads, p_metadata)
           WITH ORDINALITY AS n(event_id, event_type, schema_version, payload, metadata, ord)
     ORDER BY n.ord
    RETURNING events.global_position
  )
  SELECT max(inserted.global_position) INTO v_last FROM inserted;

  IF p_outbox THEN
    -- One outbox row per inserted event, in this transaction: a rolled-back append leaves none. The outbox table
    -- comes from 0003_outbox.sql; PL/pgSQL resolves it only when this branch runs.
    INSERT INTO outbox (tenant_id, event_id, global_position, transaction_id, stream_type, stream_id, version,
                        event_type, schema_version, payload, metadata)
    SELECT e.tenant_id, e.event_id, e.global_position, e.transaction_id, e.stream_type, e.stream_id, e.version,
           e.event_type, e.schema_version, e.payload, e.metadata
      FROM events e
     WHERE e.tenant_id = p_tenant_id AND e.stream_type = p_stream_type AND e.stream_id = p_stream_id
       AND e.version > v_version - v_count
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

-- The state of a stream as the lifecycle names it.
CREATE OR REPLACE FUNCTION stream_state(p_archived boolean, p_deleted boolean, p_soft_deleted boolean) RETURNS text
LANGUAGE sql
IMMUTABLE
AS $$
  SELECT CASE WHEN p_deleted THEN 'deleted' WHEN p_soft_deleted THEN 'soft-deleted' WHEN p_archived THEN 'archived'
              ELSE 'active' END
$$;

DROP FUNCTION IF EXISTS read_stream(text, text, text, integer, integer, boolean);

-- Reads one stream of one tenant in one round trip (see 0007), from its first_version. When the stream cannot be
-- read (no such stream, soft-deleted, tombstoned, or archived without p_include_archived) or no event is in range,
-- it returns one row instead, every event column NULL, stream_version the stream's version (0: none, or
-- soft-deleted) and stream_state its state ('none' when it does not exist).
CREATE OR REPLACE FUNCTION read_stream(
  p_tenant_id        text,
  p_stream_type      text,
  p_stream_id        text,
  p_from             integer,
  p_limit            integer,
  p_backward         boolean,
  p_include_archived boolean
) RETURNS TABLE (
  global_position bigint,
  transaction_id  xid8,
  event_id        uuid,
  tenant_id       text,
  stream_type     text,
  stream_id       text,
  version         integer,
  event_type      text,
  schema_version  integer,
  payload         jsonb,
  metadata        jsonb,
  recorded_at     timestamptz,
  stream_version  integer,
  stream_state    text
)
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
#variable_conflict use_column
DECLARE
  v_version integer;
  v_first   integer;
  v_state   text;
BEGIN
  IF p_tenant_id IS NULL OR p_tenant_id = '' OR p_tenant_id = '*' THEN
    RAISE EXCEPTION 'read_stream: invalid tenant id %', coalesce('"' || p_tenant_id || '"', 'NULL')
      USING ERRCODE = '22023';
  END IF;
  PERFORM enter_tenant(p_tenant_id);
  SELECT s.version, s.first_version, stream_state(s.archived, s.deleted, s.soft_deleted)
    INTO v_version, v_first, v_state
    FROM streams s
   WHERE s.tenant_id = p_tenant_id AND s.stream_type = p_stream_type AND s.stream_id = p_stream_id;
  IF v_state IS NULL OR v_state IN ('soft-deleted', 'deleted') OR (v_state = 'archived' AND NOT p_include_archived) THEN
    RETURN QUERY
      SELECT NULL::bigint, NULL::xid8, NULL::uuid, NULL::text, NULL::text, NULL::text, NULL::integer, NULL::text,
             NULL::integer, NULL::jsonb, NULL::jsonb, NULL::timestamptz,
             CASE WHEN v_state IS NULL OR v_state = 'soft-deleted' THEN 0 ELSE v_version END,
             coalesce(v_state, 'none');
    RETURN;
  END IF;
  IF p_backward THEN
    RETURN QUERY
      SELECT e.global_position, e.transaction_id, e.event_id, e.tenant_id, e.stream_type, e.stream_id, e.version,
             e.event_type, e.schema_version, e.payload, e.metadata, e.recorded_at, NULL::integer, NULL::text
        FROM events e
       WHERE e.tenant_id = p_tenant_id AND e.stream_type = p_stream_type AND e.stream_id = p_stream_id
         AND e.version <= p_from AND e.version >= v_first
       ORDER BY e.version DESC
       LIMIT p_limit;
  ELSE
    RETURN QUERY
      SELECT e.global_position, e.transaction_id, e.event_id, e.tenant_id, e.stream_type, e.stream_id, e.version,
             e.event_type, e.schema_version, e.payload, e.metadata, e.recorded_at, NULL::integer, NULL::text
        FROM events e
       WHERE e.tenant_id = p_tenant_id AND e.stream_type = p_stream_type AND e.stream_id = p_stream_id
         AND e.version >= greatest(p_from, v_first)
       ORDER BY e.version
       LIMIT p_limit;
  END IF;
  IF NOT FOUND THEN
    RETURN QUERY
      SELECT NULL::bigint, NULL::xid8, NULL::uuid, NULL::text, NULL::text, NULL::text, NULL::integer, NULL::text,
             NULL::integer, NULL::jsonb, NULL::jsonb, NULL::timestamptz, v_version, v_state;
  END IF;
END;
$$;

-- A stream's lifecycle state; no row when it does not exist.
CREATE OR REPLACE FUNCTION stream_info(
  p_tenant_id   text,
  p_stream_type text,
  p_stream_id   text
) RETURNS TABLE (version integer, state text, first_version integer, origin integer)
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
#variable_conflict use_column
BEGIN
  IF p_tenant_id IS NULL OR p_tenant_id = '' OR p_tenant_id = '*' THEN
    RAISE EXCEPTION 'stream_info: invalid tenant id %', coalesce('"' || p_tenant_id || '"', 'NULL')
      USING ERRCODE = '22023';
  END IF;
  PERFORM enter_tenant(p_tenant_id);
  RETURN QUERY
    SELECT s.version, stream_state(s.archived, s.deleted, s.soft_deleted), s.first_version, s.origin
      FROM streams s
     WHERE s.tenant_id = p_tenant_id AND s.stream_type = p_stream_type AND s.stream_id = p_stream_id;
END;
$$;

-- Archives ('archive'), unarchives ('unarchive'), tombstones ('tombstone') or soft-deletes ('soft_delete') a stream
-- under its append lock. Returns 'ok', 'not_found', or 'deleted' (a tombstoned stream changes no more).
CREATE OR REPLACE FUNCTION change_stream(
  p_tenant_id   text,
  p_stream_type text,
  p_stream_id   text,
  p_action      text
) RETURNS text
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
  v_deleted boolean;
BEGIN
  IF p_tenant_id IS NULL OR p_tenant_id = '' OR p_tenant_id = '*' THEN
    RAISE EXCEPTION 'change_stream: invalid tenant id %', coalesce('"' || p_tenant_id || '"', 'NULL')
      USING ERRCODE = '22023';
  END IF;
  PERFORM enter_tenant(p_tenant_id);
  -- The append lock of append_events: an append in flight commits first, and every later one sees the change.
  PERFORM pg_advisory_xact_lock(hashtextextended(p_tenant_id || '/' || p_stream_type || '/' || p_stream_id, 7130));
  SELECT s.deleted INTO v_deleted FROM streams s
   WHERE s.tenant_id = p_tenant_id AND s.stream_type = p_stream_type AND s.stream_id = p_stream_id
   FOR UPDATE;
  IF NOT FOUND THEN
    RETURN 'not_found';
  END IF;
  IF p_action = 'tombstone' THEN
    UPDATE streams s SET deleted = true, updated_at = now()
     WHERE s.tenant_id = p_tenant_id AND s.stream_type = p_stream_type AND s.stream_id = p_stream_id;
    RETURN 'ok';
  END IF;
  IF v_deleted THEN
    RETURN 'deleted';
  END IF;
  IF p_action = 'archive' OR p_action = 'unarchive' THEN
    UPDATE streams s SET archived = (p_action = 'archive'), updated_at = now()
     WHERE s.tenant_id = p_tenant_id AND s.stream_type = p_stream_type AND s.stream_id = p_stream_id;
  ELSIF p_action = 'soft_delete' THEN
    UPDATE streams s SET soft_deleted = true, archived = false, first_version = s.version + 1, origin = s.version,
                         updated_at = now()
     WHERE s.tenant_id = p_tenant_id AND s.stream_type = p_stream_type AND s.stream_id = p_stream_id
       AND NOT s.soft_deleted;
  ELSE
    RAISE EXCEPTION 'change_stream: unknown action %', p_action USING ERRCODE = '22023';
  END IF;
  RETURN 'ok';
END;
$$;

-- Deletes a stream's events before p_before (the event at p_before stays) under its append lock, and reads start
-- there. Returns 'ok' with the number deleted, or 'not_found', 'deleted' (tombstoned) or 'invalid' (p_before outside
-- 1 .. version + 1) with the stream's version. Needs DELETE on events: the owner's rights.
CREATE OR REPLACE FUNCTION truncate_stream(
  p_tenant_id   text,
  p_stream_type text,
  p_stream_id   text,
  p_before      integer
) RETURNS TABLE (status text, deleted bigint, stream_version integer)
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
#variable_conflict use_column
DECLARE
  v_version integer;
  v_deleted boolean;
  v_count   bigint;
BEGIN
  IF p_tenant_id IS NULL OR p_tenant_id = '' OR p_tenant_id = '*' THEN
    RAISE EXCEPTION 'truncate_stream: invalid tenant id %', coalesce('"' || p_tenant_id || '"', 'NULL')
      USING ERRCODE = '22023';
  END IF;
  PERFORM enter_tenant(p_tenant_id);
  PERFORM pg_advisory_xact_lock(hashtextextended(p_tenant_id || '/' || p_stream_type || '/' || p_stream_id, 7130));
  SELECT s.version, s.deleted INTO v_version, v_deleted FROM streams s
   WHERE s.tenant_id = p_tenant_id AND s.stream_type = p_stream_type AND s.stream_id = p_stream_id
   FOR UPDATE;
  IF NOT FOUND THEN
    RETURN QUERY SELECT 'not_found'::text, 0::bigint, 0;
    RETURN;
  END IF;
  IF v_deleted THEN
    RETURN QUERY SELECT 'deleted'::text, 0::bigint, v_version;
    RETURN;
  END IF;
  IF p_before IS NULL OR p_before < 1 OR p_before > v_version + 1 THEN
    RETURN QUERY SELECT 'invalid'::text, 0::bigint, v_version;
    RETURN;
  END IF;
  -- The append-only guard of 0006 lets this statement through, and only it.
  PERFORM set_config('eventfold.allow_event_mutation', 'on', true);
  DELETE FROM events e
   WHERE e.tenant_id = p_tenant_id AND e.stream_type = p_stream_type AND e.stream_id = p_stream_id
     AND e.version < p_before;
  GET DIAGNOSTICS v_count = ROW_COUNT;
  PERFORM set_config('eventfold.allow_event_mutation', 'off', true);
  UPDATE streams s SET first_version = greatest(s.first_version, p_before), updated_at = now()
   WHERE s.tenant_id = p_tenant_id AND s.stream_type = p_stream_type AND s.stream_id = p_stream_id;
  RETURN QUERY SELECT 'ok'::text, v_count, v_version;
END;
$$;

-- Deletes the events of the given stream types recorded more than p_max_age_ms milliseconds ago, in a scope (a
-- tenant, or '*'), and moves each touched stream's first_version past its deleted events. Returns how many were
-- deleted. Needs DELETE on events: the owner's rights.
CREATE OR REPLACE FUNCTION expire_events(
  p_scope        text,
  p_stream_types text[],
  p_max_age_ms   bigint
) RETURNS bigint
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
  v_count bigint;
BEGIN
  IF p_scope IS NULL OR p_scope = '' THEN
    RAISE EXCEPTION 'expire_events: invalid scope %', coalesce('"' || p_scope || '"', 'NULL') USING ERRCODE = '22023';
  END IF;
  IF p_max_age_ms IS NULL OR p_max_age_ms <= 0 THEN
    RAISE EXCEPTION 'expire_events: invalid age %', p_max_age_ms USING ERRCODE = '22023';
  END IF;
  PERFORM enter_tenant(p_scope);
  PERFORM set_config('eventfold.allow_event_mutation', 'on', true);
  WITH gone AS (
    DELETE FROM events e
     WHERE e.stream_type = ANY(p_stream_types)
       AND e.recorded_at < clock_timestamp() - p_max_age_ms * interval '1 millisecond'
       AND (p_scope = '*' OR e.tenant_id = p_scope)
    RETURNING e.tenant_id, e.stream_type, e.stream_id, e.version
  ), per_stream AS (
    SELECT g.tenant_id, g.stream_type, g.stream_id, max(g.version) AS last, count(*) AS n
      FROM gone g GROUP BY g.tenant_id, g.stream_type, g.stream_id
  ), moved AS (
    UPDATE streams s SET first_version = greatest(s.first_version, p.last + 1), updated_at = now()
      FROM per_stream p
     WHERE s.tenant_id = p.tenant_id AND s.stream_type = p.stream_type AND s.stream_id = p.stream_id
    RETURNING p.n
  )
  SELECT coalesce(sum(m.n), 0)::bigint INTO v_count FROM moved m;
  PERFORM set_config('eventfold.allow_event_mutation', 'off', true);
  RETURN v_count;
END;
$$;

DROP FUNCTION IF EXISTS read_all(text, xid8, bigint, integer, text[], text[], timestamptz);
DROP FUNCTION IF EXISTS read_all_query(text, text[], text[], timestamptz);

-- read_all_query and read_all of 0008, leaving archived streams out of reads by stream type unless
-- p_include_archived.
CREATE OR REPLACE FUNCTION read_all_query(
  p_scope            text,
  p_event_types      text[],
  p_stream_types     text[],
  p_since            timestamptz,
  p_include_archived boolean
) RETURNS text
LANGUAGE plpgsql
IMMUTABLE
AS $$
DECLARE
  v_columns  constant text := 'e.global_position, e.transaction_id, e.event_id, e.tenant_id, e.stream_type, '
    'e.stream_id, e.version, e.event_type, e.schema_version, e.payload, e.metadata, e.recorded_at';
  v_feed     constant text := '(e.transaction_id, e.global_position) > ($1::xid8, $2::bigint) '
    'AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())';
  v_tenant   boolean := p_scope IS DISTINCT FROM '*';
  v_since    text := CASE WHEN p_since IS NULL THEN '' ELSE ' AND e.recorded_at >= $7::timestamptz' END
    -- A read by stream type leaves archived streams out: an anti-join on the small streams_archived_idx. Once most
    -- streams are archived the planner reads and sorts every event of the type instead of one page (bench/README.md,
    -- "lifecycle"): a known limit.
    || CASE WHEN p_stream_types IS NULL OR p_include_archived THEN '' ELSE ' AND NOT EXISTS (SELECT 1 FROM streams s '
         'WHERE s.archived AND s.tenant_id = e.tenant_id AND s.stream_type = e.stream_type '
         'AND s.stream_id = e.stream_id)' END;
  v_column   text;
  v_param    text;
  v_filter   text;
  v_count    integer;
  v_branches text[] := '{}';
BEGIN
  IF cardinality(p_event_types) = 0 OR cardinality(p_stream_types) = 0 THEN
    RETURN 'SELECT ' || v_columns || ' FROM events e WHERE false';
  END IF;
  IF cardinality(p_event_types) <= 16 THEN
    v_column := 'e.event_type';
    v_param := '$5::text[]';
    v_count := cardinality(p_event_types);
    v_filter := CASE WHEN p_stream_types IS NULL THEN '' ELSE ' AND e.stream_type = ANY($6::text[])' END;
  ELSIF cardinality(p_stream_types) <= 16 THEN
    v_column := 'e.stream_type';
    v_param := '$6::text[]';
    v_count := cardinality(p_stream_types);
    v_filter := CASE WHEN p_event_types IS NULL THEN '' ELSE ' AND e.event_type = ANY($5::text[])' END;
  ELSE
    RETURN 'SELECT ' || v_columns || ' FROM events e WHERE ' || v_feed
      || CASE WHEN v_tenant THEN ' AND e.tenant_id = ANY(ARRAY[$4::text])' ELSE '' END
      || CASE WHEN p_event_types IS NULL THEN '' ELSE ' AND e.event_type = ANY($5::text[])' END
      || CASE WHEN p_stream_types IS NULL THEN '' ELSE ' AND e.stream_type = ANY($6::text[])' END
      || v_since
      || ' ORDER BY ' || CASE WHEN v_tenant THEN 'e.tenant_id, ' ELSE '' END
      || 'e.transaction_id, e.global_position LIMIT $3::integer';
  END IF;
  FOR i IN 1 .. v_count LOOP
    v_branches := v_branches || ('(SELECT ' || v_columns || ' FROM events e WHERE ' || v_column || ' = ANY(ARRAY[('
      || v_param || ')[' || i || ']]) AND ' || v_feed || CASE WHEN v_tenant THEN ' AND e.tenant_id = $4::text' ELSE ''
      END || v_filter || v_since || ' ORDER BY ' || v_column || ', e.transaction_id, e.global_position LIMIT '
      '$3::integer)');
  END LOOP;
  IF v_count = 1 THEN
    RETURN v_branches[1];
  END IF;
  RETURN 'SELECT * FROM (' || array_to_string(v_branches, ' UNION ALL ')
    || ') e ORDER BY e.transaction_id, e.global_position LIMIT $3::integer';
END;
$$;

-- One page of the feed for a scope (a tenant, or '*' for every tenant) in one round trip: enters the scope (for
-- row-level security) and runs the statement of read_all_query, as the plain query of PgEventStore.readAll does.
-- Filters are NULL for none; duplicate types are dropped. p_since: only events recorded at or after it. The stores
-- call it when row-level security is on; without, they send the same statement directly.
CREATE OR REPLACE FUNCTION read_all(
  p_scope          text,
  p_after_xid      xid8,
  p_after_position bigint,
  p_limit          integer,
  p_event_types    text[],
  p_stream_types   text[],
  p_since          timestamptz,
  p_include_archived boolean
) RETURNS TABLE (
  global_position bigint,
  transaction_id  xid8,
  event_id        uuid,
  tenant_id       text,
  stream_type     text,
  stream_id       text,
  version         integer,
  event_type      text,
  schema_version  integer,
  payload         jsonb,
  metadata        jsonb,
  recorded_at     timestamptz
)
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
  v_event_types  text[] := (SELECT array_agg(DISTINCT t) FROM unnest(p_event_types) AS u(t));
  v_stream_types text[] := (SELECT array_agg(DISTINCT t) FROM unnest(p_stream_types) AS u(t));
BEGIN
  IF p_scope IS NULL OR p_scope = '' THEN
    RAISE EXCEPTION 'read_all: invalid scope %', coalesce('"' || p_scope || '"', 'NULL') USING ERRCODE = '22023';
  END IF;
  PERFORM enter_tenant(p_scope);
  -- array_agg of no rows is NULL: an empty list stays empty (it matches nothing), it does not become "no filter".
  IF cardinality(p_event_types) = 0 THEN
    v_event_types := '{}';
  END IF;
  IF cardinality(p_stream_types) = 0 THEN
    v_stream_types := '{}';
  END IF;
  RETURN QUERY EXECUTE read_all_query(p_scope, v_event_types, v_stream_types, p_since, p_include_archived)
    USING p_after_xid, p_after_position, p_limit, p_scope, v_event_types, v_stream_types, p_since;
END;
$$;
