-- From this migration on, the loader follows the lake journal (warehouse/journal.py): each ledger row's
-- loaded_at is the time its load began listing the lake, and the next load lists only the journal from the
-- newest of those (less an overlap). Ledger rows from before this migration's applied_at were loaded by a
-- loader that did not follow the journal, so they are no watermark: the first load after it lists the
-- whole lake once. Nothing to change in the schema; the row in schema_migrations is the mark.
SELECT 1;
