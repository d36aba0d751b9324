-- eventfold 0011: group commit. append_batch runs several independent appends (to any streams, of any tenants) in
-- one statement and one transaction, so that concurrent writers of one process share a round trip and a commit
-- (PgEventStore's group commit). Each append keeps its own outcome: append_batch returns append_events' row for each,
-- numbered by its position in the arguments ('ok', 'idempotent', 'conflict', 'duplicate', 'blocked', 'archived',
-- 'deleted', or 'busy': not attempted; never 'stale', below). An error raised by one append (a unique violation, a deadlock) aborts the whole
-- statement, and nothing of the batch is written: the library then runs that batch's appends one by one.
--
-- Locks. Every tenant's shared cut-over lock, then every stream's append lock, are tried first, before the
-- transaction has an id; an append whose lock is held elsewhere is returned as 'busy' (nothing written), and the
-- library sends it on its own. A batch never waits for a lock, so it can neither deadlock with another nor stall the
-- appends behind it. The transaction id the first write takes is newer than that of every append that committed to
-- one of the batch's streams before, so no append of the batch can find its stream written by a newer transaction
-- ('stale'), and the feed keeps each stream's events in version order: all of a batch's events share one transaction
-- id, in argument order.
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
  -- The transaction's tenant scope on entry: none for a transaction of its own, which is how the library calls this.
  v_scope text := coalesce(current_setting('eventfold.tenant', true), '');
  v_tenant  text := p_tenant_ids[1];
  v_actions text[];
  v_new     integer[];
  v_actual  integer[];
  v_last    bigint[];
  v_t       text;
  v_busy    boolean[] := array_fill(false, ARRAY[coalesce(cardinality(p_tenant_ids), 0)]);
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
  IF EXISTS (SELECT 1 FROM unnest(p_event_counts) c WHERE c IS NULL OR c < 1) THEN
    RAISE EXCEPTION 'append_batch: no events' USING ERRCODE = '22023';
  END IF;
  IF EXISTS (SELECT 1 FROM unnest(p_expected_kinds) k
              WHERE k IS NULL OR k NOT IN ('any', 'no_stream', 'stream_exists', 'exact')) THEN
    RAISE EXCEPTION 'append_batch: unknown expected kind' USING ERRCODE = '22023';
  END IF;
  IF EXISTS (SELECT 1 FROM unnest(p_tenant_ids) t WHERE t IS NULL OR t = '' OR t = '*') THEN
    RAISE EXCEPTION 'append_batch: invalid tenant id' USING ERRCODE = '22023';
  END IF;

  -- The same locks append_events takes, all of them up front, but only tried: an append whose tenant or stream lock
  -- is held elsewhere (a caller's open transaction, a tenant move's cut-over, a lifecycle change) is returned as
  -- 'busy' at once, and the library sends it alone, to wait on a connection of its own. So a batch never waits for a
  -- lock, and one blocked stream never holds back the other appends of its batch or the batches behind it.
  FOR v_t IN SELECT DISTINCT t FROM unnest(p_tenant_ids) AS t LOOP
    IF NOT pg_try_advisory_xact_lock_shared(hashtextextended('tenant/' || v_t, 7131)) THEN
      FOR i IN 1 .. v_n LOOP
        IF p_tenant_ids[i] = v_t THEN v_busy[i] := true; END IF;
      END LOOP;
    END IF;
  END LOOP;
  FOR i IN 1 .. v_n LOOP
    IF NOT v_busy[i] AND NOT pg_try_advisory_xact_lock(
         hashtextextended(p_tenant_ids[i] || '/' || p_stream_types[i] || '/' || p_stream_ids[i], 7130)) THEN
      v_busy[i] := true;
    END IF;
  END LOOP;
  IF NOT (false = ANY(v_busy)) THEN
    RETURN QUERY SELECT i, 'busy'::text, NULL::integer, NULL::xid8, NULL::bigint, NULL::uuid
                   FROM generate_series(1, v_n) AS i;
    RETURN;
  END IF;

  -- The set-based path, for the common batch of several appends: one tenant, each stream once, no supplied ids to
  -- check (a lone append is cheaper through append_events). It decides
  -- every append against its stream's row at once (no other writer can change those rows: their locks are held), then
  -- writes every stream row and every event with one statement each. It gives each append exactly the outcome
  -- append_events gives it (see 0009: archived, deleted and soft-deleted streams included). Other batches take the
  -- loop below, one append_events call per append.
  IF v_n > 1 AND NOT (true = ANY(p_check_ids))
     AND NOT EXISTS (SELECT 1 FROM unnest(p_tenant_ids) t WHERE t <> v_tenant)
     AND (SELECT count(DISTINCT (st, sid)) FROM unnest(p_stream_types, p_stream_ids) AS u(st, sid)) = v_n
     AND pg_current_xact_id_if_assigned() IS NULL THEN
    PERFORM enter_tenant(v_tenant);
    IF EXISTS (SELECT 1 FROM tenant_blocks b WHERE b.tenant_id = v_tenant) THEN
      RETURN QUERY SELECT i, 'blocked'::text, NULL::integer, NULL::xid8, NULL::bigint, NULL::uuid
                     FROM generate_series(1, v_n) AS i;
      RETURN;
    END IF;
    SELECT array_agg(d.action ORDER BY d.ord), array_agg(d.new_version ORDER BY d.ord),
           array_agg(d.actual ORDER BY d.ord)
      INTO v_actions, v_new, v_actual
      FROM (
        SELECT r.ord,
               CASE
                 WHEN v_busy[r.ord] THEN 'busy'
                 WHEN s.stream_id IS NULL THEN
                   CASE WHEN r.kind IN ('any', 'no_stream') OR (r.kind = 'exact' AND r.ev = 0) THEN 'insert'
                        ELSE 'conflict' END
                 WHEN s.deleted THEN 'deleted'
                 WHEN s.archived THEN 'archived'
                 -- A soft-deleted stream counts as no stream; recreated, its versions continue.
                 WHEN s.soft_deleted THEN
                   CASE WHEN r.kind IN ('any', 'no_stream') OR (r.kind = 'exact' AND r.ev = 0) THEN 'update'
                        ELSE 'conflict' END
                 WHEN r.kind IN ('any', 'stream_exists') OR (r.kind = 'exact' AND r.ev > 0 AND r.ev = s.version)
                   THEN 'update'
                 ELSE 'conflict'
               END AS action,
               coalesce(s.version, 0) + r.cnt AS new_version,
               CASE WHEN s.stream_id IS NULL OR s.soft_deleted THEN 0 ELSE s.version END AS actual
          FROM unnest(p_stream_types, p_stream_ids, p_expected_kinds, p_expected_versions, p_event_counts)
               WITH ORDINALITY AS r(st, sid, kind, ev, cnt, ord)
          LEFT JOIN streams s ON s.tenant_id = v_tenant AND s.stream_type = r.st AND s.stream_id = r.sid
      ) d;

    UPDATE streams s
       SET version = r.new_version, updated_at = now(), last_transaction_id = pg_current_xact_id(),
           soft_deleted = false
      FROM unnest(p_stream_types, p_stream_ids, v_actions, v_new) AS r(st, sid, action, new_version)
     WHERE r.action = 'update' AND s.tenant_id = v_tenant AND s.stream_type = r.st AND s.stream_id = r.sid;
    INSERT INTO streams (tenant_id, stream_type, stream_id, version, last_transaction_id)
    SELECT v_tenant, r.st, r.sid, r.new_version, pg_current_xact_id()
      FROM unnest(p_stream_types, p_stream_ids, v_actions, v_new) AS r(st, sid, action, new_version)
     WHERE r.action = 'insert';

    -- Every event of a written append, in argument order (which gives the global positions).
    WITH inserted AS (
      INSERT INTO events (tenant_id, stream_type, stream_id, version, event_id, event_type, schema_version, payload,
                          metadata, actor_id, correlation_id, causation_id)
      SELECT v_tenant, p_stream_types[x.o], p_stream_ids[x.o], v_new[x.o] - p_event_counts[x.o] + x.g,
             p_event_ids[x.k], p_event_types[x.k], p_schema_versions[x.k], p_payloads[x.k], p_metadata[x.k],
             p_metadata[x.k] ->> 'actorId', p_metadata[x.k] ->> 'correlationId', p_metadata[x.k] ->> 'causationId'
        FROM (SELECT o, g, (row_number() OVER (ORDER BY o, g))::integer AS k
                FROM generate_series(1, v_n) AS o, LATERAL generate_series(1, p_event_counts[o]) AS g) x
       WHERE v_actions[x.o] IN ('insert', 'update')
       ORDER BY x.k
      RETURNING events.stream_type, events.stream_id, events.global_position
    )
    SELECT array_agg(l.last ORDER BY r.ord) INTO v_last
      FROM unnest(p_stream_types, p_stream_ids) WITH ORDINALITY AS r(st, sid, ord)
      LEFT JOIN (SELECT i.stream_type, i.stream_id, max(i.global_position) AS last FROM inserted i GROUP BY 1, 2) l
        ON l.stream_type = r.st AND l.stream_id = r.sid;

    IF p_outbox THEN
      INSERT INTO outbox (tenant_id, event_id, global_position, transaction_id, stream_type, stream_id, version,
                          event_type, schema_version, payload, metadata)
      SELECT e.tenant_id, e.event_id, e.global_position, e.transaction_id, e.stream_type, e.stream_id, e.version,
             e.event_type, e.schema_version, e.payload, e.metadata
        FROM unnest(p_stream_types, p_stream_ids, v_actions, v_new, p_event_counts)
             WITH ORDINALITY AS r(st, sid, action, new_version, cnt, ord)
        JOIN events e ON e.tenant_id = v_tenant AND e.stream_type = r.st AND e.stream_id = r.sid
                     AND e.version > r.new_version - r.cnt
       WHERE r.action IN ('insert', 'update')
       ORDER BY e.global_position;
    END IF;
    IF p_notify AND ('insert' = ANY(v_actions) OR 'update' = ANY(v_actions)) THEN
      PERFORM pg_notify(left(current_schema(), 56) || '_events', '1');
    END IF;

    RETURN QUERY
      SELECT r.ord::integer,
             CASE WHEN r.action IN ('insert', 'update') THEN 'ok' ELSE r.action END,
             CASE WHEN r.action IN ('insert', 'update') THEN r.new_version ELSE r.actual END,
             CASE WHEN r.action IN ('insert', 'update') THEN pg_current_xact_id() END,
             r.last, NULL::uuid
        FROM unnest(v_actions, v_new, v_actual, v_last) WITH ORDINALITY AS r(action, new_version, actual, last, ord)
       ORDER BY r.ord;
    RETURN;
  END IF;

  FOR i IN 1 .. v_n LOOP
    v_end := v_start + p_event_counts[i] - 1;
    -- Each append runs in its own tenant's scope, as it would in a transaction of its own (enter_tenant refuses a
    -- second tenant in one transaction). A transaction that was scoped on entry keeps its scope, and enter_tenant
    -- refuses the appends of other tenants, as for single appends.
    IF v_scope = '' THEN
      PERFORM set_config('eventfold.tenant', p_tenant_ids[i], true);
    END IF;
    -- append_events takes the same locks again (a no-op now) and does the rest, as for a single append.
    IF v_busy[i] THEN
      RETURN QUERY SELECT i, 'busy'::text, NULL::integer, NULL::xid8, NULL::bigint, NULL::uuid;
      v_start := v_end + 1;
      CONTINUE;
    END IF;
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
