-- eventfold 0004: subscription checkpoints with an ownership lease, and the dead-letter table for parked events.
-- Apply with psql:  psql "$DATABASE_URL" -v schema=eventfold -f migrations/0004_subscriptions.sql
-- The library applies the same text through PgMigrations, substituting :"schema" (psql's quoted-identifier form).
\if :{?schema}
\else
\set schema eventfold
\endif

CREATE SCHEMA IF NOT EXISTS :"schema";
SET search_path TO :"schema", pg_catalog;

-- One row per subscription. The position is the feed pair (transaction_id, global_position) of the last event the
-- subscription handled; it only moves by compare-and-set, so a stale owner can never move it.
-- owner + lease_until: at most one live owner per subscription across processes. The lease needs no session state,
-- so it works behind PgBouncer in transaction mode.
CREATE TABLE IF NOT EXISTS checkpoints (
  subscription_id text PRIMARY KEY CHECK (subscription_id <> ''),
  transaction_id  xid8 NOT NULL,
  global_position bigint NOT NULL,
  owner           text,
  lease_until     timestamptz,
  status          text NOT NULL DEFAULT 'active',
  updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Events a subscription gave up on after its retry schedule, parked so it could continue. Parking and the
-- checkpoint advance past the event commit together.
CREATE TABLE IF NOT EXISTS dead_letters (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  subscription_id text NOT NULL,
  event_id        uuid NOT NULL,
  transaction_id  xid8 NOT NULL,
  global_position bigint NOT NULL,
  stream_type     text NOT NULL,
  stream_id       text NOT NULL,
  event_type      text NOT NULL,
  error           text NOT NULL,
  attempts        integer NOT NULL,
  parked_at       timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT dead_letters_subscription_event_key UNIQUE (subscription_id, event_id)
);
