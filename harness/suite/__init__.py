"""Layer 2, reading a suite: the resolved run spec and its id (`spec`), loading and merging TOML
(`load`, `merge`), validating it against the registered components (`checks`, `checker`) and showing
the resolved runs (`show`). Imports `harness.api` only."""
