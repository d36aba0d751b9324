-- eventfold 0013: outbox rows are claimed in place. A relay writes each outbox row twice after the append inserts it:
-- the claim sets its lease (claimed_by, claimed_until), then the mark sets it published. The lease columns are in no
-- index, so the claim can update the row in place (a HOT update: no new entry in any of the table's indexes), but
-- only when the row's page has room for the new version. Full pages (fillfactor 100, the default) made every claim
-- write a new entry into the primary key, the event_id key and the unpublished index: about a fifth of the server's
-- work per relayed event. Pages filled to half leave that room; the price is about twice the pages for the outbox,
-- whose published rows are deleted after the relay's retention (7 days by default).
-- Only pages written from now on are filled to half; existing rows are left as they are. The change takes a SHARE
-- UPDATE EXCLUSIVE lock, which appends and relays do not conflict with. To go back: ALTER TABLE outbox RESET
-- (fillfactor).
-- Apply with psql:  psql "$DATABASE_URL" -v schema=eventfold -f migrations/0013_outbox_relay.sql
-- The library applies the same text through PgMigrations, substituting :"schema" (psql's quoted-identifier form).
\if :{?schema}
\else
\set schema eventfold
\endif

CREATE SCHEMA IF NOT EXISTS :"schema";
SET search_path TO :"schema", pg_catalog;

ALTER TABLE outbox SET (fillfactor = 50);
