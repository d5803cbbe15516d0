"""Storage: the parquet lake (lake.py), the DuckDB load (load.py), the read-only snapshot analysts query."""
