"""Layer 4, running: one run in its context (`runner`, `context`), executing work units through an
executor (`execute`), the environment and device (`environment`), progress lines (`progress`) and step
acceleration shared by every run kind (`acceleration`: CUDA graphs, torch.compile). Imports the layers
below."""
