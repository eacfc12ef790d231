"""A project's dependencies, wherever it keeps them: what the generated code needs of them, which
of them allow too old a version or none it can run on, and the edits that make them require it.

- `needs`: what the generated code, its tests and the runtime need (read from the runtime's own
  `pyproject.toml`, the one place that says it), and what scaffold lists for them.
- `tables`: every table a project may keep its dependencies in (PEP 621, PEP 735, Poetry, uv,
  PDM), what each lists, and where new ones go.
- `versions`, `pep508`, `poetry`: what a constraint allows, and its minimum raised in the
  project's own syntax.
- `changes`: what to raise, add or refuse, read from TOML as mappings: `scaffold check` uses the
  standard library's `tomllib` alone.
- `edit`: those changes made with tomlkit, keeping the rest of the file byte for byte.
"""
