"""The Kyverno-compatible policy engine (pure: policies and resources in, results out)."""
