-- eventfold 0008: the feed by event type, by stream type and from a time, each served by an index. Before, a page
-- filtered by type walked the whole feed's index (events_feed_idx, or events_tenant_feed_idx for a tenant) and
-- dropped the other types' rows: about 1 / share rows read per row returned, and all of the feed when the type is
-- rare or new.
--   events_type_feed_idx, events_stream_type_feed_idx: a type's events in feed order, so a page of one type reads the
--   page and stops. tenant_id is the last key column, so that a tenant's filter is an index condition, checked on
--   the index entries, without visiting the rows of the other tenants.
--   events_recorded_at_idx: the events recorded since a time (recorded_at is when the append's transaction began).
--   events_type_dependencies: statistics that tell the planner each event type comes with one stream type.
-- read_all gets the time filter (p_since) and reads a page of several types as one index scan per type, sorted
-- together (read_all_query); the previous 6-argument function is dropped, so a previous release of the library
-- cannot read the feed under row-level security any more: migrate, then deploy the release that ships this migration.
-- Building the indexes reads events once and holds off appends (SHARE lock) meanwhile: on a large store, create them
-- by hand first without blocking writers, outside a transaction, then apply this file, which then skips them:
--   CREATE INDEX CONCURRENTLY IF NOT EXISTS events_type_feed_idx
--     ON eventfold.events (event_type, transaction_id, global_position, tenant_id);
--   CREATE INDEX CONCURRENTLY IF NOT EXISTS events_stream_type_feed_idx
--     ON eventfold.events (stream_type, transaction_id, global_position, tenant_id);
--   CREATE INDEX CONCURRENTLY IF NOT EXISTS events_recorded_at_idx ON eventfold.events (recorded_at);
-- (a CONCURRENTLY build that fails leaves an INVALID index behind: drop it and build it again).
-- Apply with psql:  psql "$DATABASE_URL" -v schema=eventfold -f migrations/0008_feed_indexes.sql
-- The library applies the same text through PgMigrations, substituting :"schema" (psql's quoted-identifier form).
\if :{?schema}
\else
\set schema eventfold
\endif

CREATE SCHEMA IF NOT EXISTS :"schema";
SET search_path TO :"schema", pg_catalog;

CREATE INDEX IF NOT EXISTS events_type_feed_idx ON events (event_type, transaction_id, global_position, tenant_id);
CREATE INDEX IF NOT EXISTS events_stream_type_feed_idx
  ON events (stream_type, transaction_id, global_position, tenant_id);
CREATE INDEX IF NOT EXISTS events_recorded_at_idx ON events (recorded_at);
-- An event type belongs to one stream type, which the planner does not know by itself: without these statistics it
-- takes a page filtered by both (EventQuery.readAll's filter) for a rare combination, and reads and sorts all of
-- the type's events instead of one page of them. ANALYZE reads a sample of events, not all of them.
CREATE STATISTICS IF NOT EXISTS events_type_dependencies (dependencies) ON event_type, stream_type FROM events;
ANALYZE events;

DROP FUNCTION IF EXISTS read_all(text, xid8, bigint, integer, text[], text[]);

-- The statement of one feed page, as read_all runs it (and as PgEventStore.readAll sends it without row-level
-- security), for EXECUTE ... USING and for EXPLAIN. Its parameters: $1 the position's transaction id (xid8), $2 its
-- global position (bigint), $3 the limit (integer), $4 the scope (text: a tenant, or '*' for every tenant), $5 the
-- event types, $6 the stream types (text[], NULL for no filter, without duplicates), $7 the time (timestamptz, NULL
-- for none). The text depends only on which filters are given and on how many types, never on their values.
-- Shapes, every one in feed order below the horizon:
--   - Event types, else stream types, at most 16 of them: one index scan per type on events_type_feed_idx or
--     events_stream_type_feed_idx (the type, then the position, then the tenant as index conditions), each stopping
--     after a page; several are merged and sorted (at most a page per type). Each type is named as a one-element
--     array and first in ORDER BY, the trick of read_all in 0007_tenancy.sql: only its index yields that order. Given
--     `event_type = $x`, the planner walks the whole feed's index instead for a type it thinks common (a few % of the
--     feed), reading and dropping the other types' events: all of the older feed when the type is recent.
--     The tenant is a plain equality there: the tenant column of those indexes checks it.
--   - Otherwise (no type filter, or more than 16 types: one filter, and the planner's choice): the whole feed's index,
--     or for a tenant its own (named as a one-element array and first in ORDER BY: see read_all in 0007_tenancy.sql).
--   - A time: a filter, and the planner's choice. For a recent time (up to a few % of the feed after it) it reads
--     events_recorded_at_idx and sorts. For one further back it walks the feed's index from the position instead,
--     which on the first page reads the whole feed before that time (1,000,000 events: 250 ms for a time 10 % from
--     the end; bench/README.md, "queries"); the pages after it read a page. No position can stand for a time:
--     recorded_at is when a transaction began, not when it took the id that orders the feed.
-- An empty type list matches nothing.
CREATE OR REPLACE FUNCTION read_all_query(
  p_scope        text,
  p_event_types  text[],
  p_stream_types text[],
  p_since        timestamptz
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
  v_since    text := CASE WHEN p_since IS NULL THEN '' ELSE ' AND e.recorded_at >= $7::timestamptz' END;
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
  p_since          timestamptz
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
  RETURN QUERY EXECUTE read_all_query(p_scope, v_event_types, v_stream_types, p_since)
    USING p_after_xid, p_after_position, p_limit, p_scope, v_event_types, v_stream_types, p_since;
END;
$$;
