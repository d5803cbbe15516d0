"""The cohort report: one self-contained HTML page of charts, built only from the warehouse's analysis views.

`report.build.write_report` is the entry point; `report.cli` adds `kitsync report`, `flows/report.py`
publishes the report after syncs. The package reads the published warehouse read-only and never imports
`flows/` except for the command line's default data directory.
"""
