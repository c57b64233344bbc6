# The conformance kit's fixtures (bench_manager, bench_registry) for every test of this package, and
# its --bench-plugin option (`pytest --pyargs harness.conformance.kit --bench-plugin hopfield`).
pytest_plugins = ["harness.conformance.pytest_plugin"]
