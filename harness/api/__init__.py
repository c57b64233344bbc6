"""Layer 1, what a plugin author implements or calls: the component registry and `Param`, the hook
specs, the model contract (Φ and the step derived from it), the algorithm contract and the one update
path (`optimizer`), and the metric, dataset, tracker and executor contracts. Imports nothing of ours
outside this package (tests/test_architecture.py checks every layer's arrows)."""
