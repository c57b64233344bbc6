"""Layer 3, the results store and what is made from it: run directories and their claims (`store`,
`claims`), tables (`aggregate`, `render`), comparisons (`compare`), reports and figures (`report`,
`figures`). Imports `harness.api`, `harness.suite` and the plugin manager."""
