-- eventfold: row-level security by tenant. NOT a numbered migration: an opt-in file, applied only when row-level
-- security is turned on (PgMigrations.run then applies it, through enableRowLevelSecurity), after the migrations
-- (0007_tenancy.sql at least) and again after each upgrade; every statement is safe to repeat. Turning it off again is by hand (ALTER TABLE ... DISABLE ROW LEVEL
-- SECURITY on each table below).
-- Apply with psql:  psql "$DATABASE_URL" -1 -v schema=eventfold -f migrations/row_level_security.sql
-- (-1: one transaction. Between a policy's DROP and CREATE the table has row-level security and no policy, which
-- hides every row rather than showing any.)
--
-- Each table then shows and accepts only the rows of the transaction's tenant, the setting eventfold.tenant, or
-- every row when it is '*' (cross-tenant admin work). append_events and read_stream set it for their tenant on the
-- first call in a transaction (enter_tenant) and refuse another tenant later in that transaction; other statements
-- need it set first: SELECT set_config('eventfold.tenant', 'acme', true) (transaction-local; never a session-wide SET
-- on a pooled connection). With no setting nothing matches: every table looks empty and every write is refused.
--
-- Who is subject to it: the application role of grants.sql, and every other role without BYPASSRLS that does not own
-- the tables. The tables' owner (the admin role that applied the migrations) bypasses it, as do superusers: row-level
-- security is ENABLEd, not FORCEd, so migrations, the DBA's own work and the owner's scripts see everything.
-- An append that reuses an event id of another tenant cannot see that tenant's row: it fails with unique_violation
-- (the client reports DuplicateEvent) instead of returning the status 'duplicate'.
-- The USING clauses read the setting through a scalar subquery, evaluated once per statement (an InitPlan), and test
-- '*' apart: written as `tenant_id = setting OR setting = '*'` the planner counted the tenant filter twice, estimated
-- a tenant's feed page far too small, and read and sorted the tenant's whole remaining feed instead of stopping after
-- one page (4.7 ms against 0.7 ms at 7,000 events per tenant; bench/README.md, "tenancy").
-- tenant_blocks and tenant_moves get no policy: they are the owner's admin data (moves), and append_events must see
-- its tenant's block whatever the transaction's scope.
\if :{?schema}
\else
\set schema eventfold
\endif

SET search_path TO :"schema", pg_catalog;

ALTER TABLE events ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_isolation ON events;
CREATE POLICY tenant_isolation ON events
  USING (CASE (SELECT current_setting('eventfold.tenant', true)) WHEN '*' THEN true
         ELSE tenant_id = (SELECT current_setting('eventfold.tenant', true)) END)
  WITH CHECK (tenant_id = current_setting('eventfold.tenant', true)
              OR current_setting('eventfold.tenant', true) = '*');

ALTER TABLE streams ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_isolation ON streams;
CREATE POLICY tenant_isolation ON streams
  USING (CASE (SELECT current_setting('eventfold.tenant', true)) WHEN '*' THEN true
         ELSE tenant_id = (SELECT current_setting('eventfold.tenant', true)) END)
  WITH CHECK (tenant_id = current_setting('eventfold.tenant', true)
              OR current_setting('eventfold.tenant', true) = '*');

ALTER TABLE snapshots ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_isolation ON snapshots;
CREATE POLICY tenant_isolation ON snapshots
  USING (CASE (SELECT current_setting('eventfold.tenant', true)) WHEN '*' THEN true
         ELSE tenant_id = (SELECT current_setting('eventfold.tenant', true)) END)
  WITH CHECK (tenant_id = current_setting('eventfold.tenant', true)
              OR current_setting('eventfold.tenant', true) = '*');

ALTER TABLE outbox ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_isolation ON outbox;
CREATE POLICY tenant_isolation ON outbox
  USING (CASE (SELECT current_setting('eventfold.tenant', true)) WHEN '*' THEN true
         ELSE tenant_id = (SELECT current_setting('eventfold.tenant', true)) END)
  WITH CHECK (tenant_id = current_setting('eventfold.tenant', true)
              OR current_setting('eventfold.tenant', true) = '*');

-- Checkpoints and dead letters of a subscription over every tenant have tenant_id '*': only a '*' scope sees them.
ALTER TABLE checkpoints ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_isolation ON checkpoints;
CREATE POLICY tenant_isolation ON checkpoints
  USING (CASE (SELECT current_setting('eventfold.tenant', true)) WHEN '*' THEN true
         ELSE tenant_id = (SELECT current_setting('eventfold.tenant', true)) END)
  WITH CHECK (tenant_id = current_setting('eventfold.tenant', true)
              OR current_setting('eventfold.tenant', true) = '*');

ALTER TABLE dead_letters ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenant_isolation ON dead_letters;
CREATE POLICY tenant_isolation ON dead_letters
  USING (CASE (SELECT current_setting('eventfold.tenant', true)) WHEN '*' THEN true
         ELSE tenant_id = (SELECT current_setting('eventfold.tenant', true)) END)
  WITH CHECK (tenant_id = current_setting('eventfold.tenant', true)
              OR current_setting('eventfold.tenant', true) = '*');

-- The policies' version: PgMigrations.enableRowLevelSecurity applies this file again when a table's policy carries
-- another (an older policy text).
COMMENT ON POLICY tenant_isolation ON events IS 'eventfold row-level security 2';
COMMENT ON POLICY tenant_isolation ON streams IS 'eventfold row-level security 2';
COMMENT ON POLICY tenant_isolation ON snapshots IS 'eventfold row-level security 2';
COMMENT ON POLICY tenant_isolation ON outbox IS 'eventfold row-level security 2';
COMMENT ON POLICY tenant_isolation ON checkpoints IS 'eventfold row-level security 2';
COMMENT ON POLICY tenant_isolation ON dead_letters IS 'eventfold row-level security 2';
