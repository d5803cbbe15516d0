"""The cohort report: one self-contained HTML page of charts, built only from the warehouse's analysis views.

`report.build.write_report` is the entry point; `report.cli` adds `kitsync report`, `flows/report.py`
publishes the report after syncs. The package reads the published warehouse read-only and never imports
`flows/` (an import-linter contract in pyproject.toml): the command line hands it its default data directory.
Inside: `data` queries the views, `findings` computes what each section says (pure), `charts` draws, `words`
names things, `traits` compares trait groups, `headlines` and `html` assemble the page.
"""
