"""Orchestration: Prefect flows, settings and the `kitsync` command line. Only this package reads settings."""
