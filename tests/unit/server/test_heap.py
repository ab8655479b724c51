"""After start-up, gate serve freezes the heap out of collections and collects young objects less often."""

from __future__ import annotations

import json
import subprocess
import sys

from gate.server._heap import YOUNG_THRESHOLD

# In a process of its own: the settings are process-wide and would change this test run's collector.
_PROBE = """
import gc, json
from gate.server._heap import settle_after_startup
before = gc.get_freeze_count()
settle_after_startup()
print(json.dumps({"before": before, "frozen": gc.get_freeze_count(), "threshold": gc.get_threshold()}))
"""


def test_settling_freezes_the_start_up_objects_and_raises_the_young_threshold() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    found = json.loads(done.stdout)
    assert found["before"] == 0
    assert found["frozen"] > 1000  # every module and object alive at start-up
    assert found["threshold"][0] == YOUNG_THRESHOLD
