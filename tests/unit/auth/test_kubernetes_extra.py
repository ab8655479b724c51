"""Without the ``kubernetes`` extra gate still imports and says which extra to install."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
sys.modules["kubernetes"] = None  # what Python sees when the package is not installed
import gate.server, gate.auth, gate.credentials
from gate._kube import api_client
from gate.config import KubernetesSettings
from gate.errors import Unsupported
try:
    api_client(KubernetesSettings())
except Unsupported as error:
    print(error.message)
"""


def test_a_missing_kubernetes_package_names_the_extra() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == (
        "Kubernetes access is not available in this gate: "
        "install gate's 'kubernetes' extra: pip install 'gate[kubernetes]'"
    )
