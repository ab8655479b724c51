"""Scanner runners: one provider per tool behind a common protocol (see gate issue "scanners")."""
