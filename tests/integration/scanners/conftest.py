"""Fixtures of the scanner runner tests (defined in runner_support)."""

from tests.integration.scanners.runner_support import asset_tool, sonar_server, trivy_cache, workdir

__all__ = ["asset_tool", "sonar_server", "trivy_cache", "workdir"]
