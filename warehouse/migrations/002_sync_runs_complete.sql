-- sync_runs gains whether a run can prove it read everything it set out to (complete) and, when it cannot,
-- why (incomplete_reason). Runs recorded before this migration keep NULL in both: unknown. Those runs ended
-- a Gencove listing on any page shorter than the limit asked, so they cannot be taken as complete.
-- (On a fresh warehouse the table does not exist yet: it is then created from its spec with both columns.)
ALTER TABLE IF EXISTS sync_runs ADD COLUMN IF NOT EXISTS complete BOOLEAN;
ALTER TABLE IF EXISTS sync_runs ADD COLUMN IF NOT EXISTS incomplete_reason VARCHAR;
