-- The load ledger: one row per lake file the warehouse has taken in, so every load merges only new files.
-- action = 'merged' (its rows went through the merge) or 'covered' (a compacted file whose inputs were all
-- merged before, recorded without reading it). No PRIMARY KEY: the loader keeps paths unique itself, and
-- DuckDB's key indexes cost far more than they protect here.
CREATE TABLE IF NOT EXISTS loaded_files (
    path VARCHAR NOT NULL,
    table_name VARCHAR NOT NULL,
    row_count BIGINT NOT NULL,
    size_bytes BIGINT NOT NULL,
    content_id VARCHAR NOT NULL,
    action VARCHAR NOT NULL,
    loaded_at TIMESTAMPTZ NOT NULL
);
