"""`gate serve` as a child process with a configuration file: start, wait, kill, and talk gRPC."""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from google.protobuf.message import Message

from tests.integration.test_serve_process import GATE, free_port, wait_serving

ROOT = Path(__file__).resolve().parents[3]
DECISION_ASSETS = ROOT / "tests" / "assets" / "decisions"
POLICIES = DECISION_ASSETS / "policies.yaml"
REVIEW = json.loads((DECISION_ASSETS / "pod_review.json").read_text())


@dataclass
class ServedGate:
    """One `gate serve` process and the addresses it listens on."""

    config_file: Path
    env: dict[str, str]
    grpc_port: int = field(default_factory=free_port)
    webhook_port: int = field(default_factory=free_port)
    process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        """Start the process and wait until the health service says SERVING."""
        env = {
            **self.env,
            "GATE_GRPC_LISTEN": f"127.0.0.1:{self.grpc_port}",
            "GATE_WEBHOOK_LISTEN": f"127.0.0.1:{self.webhook_port}",
            "GATE_METRICS_LISTEN": f"127.0.0.1:{free_port()}",
        }
        # The log goes to a file: a pipe nobody reads fills up and blocks gate's logging.
        with self.log_file.open("a") as log:
            self.process = subprocess.Popen(
                [GATE, "--config", str(self.config_file), "serve"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
                text=True,
            )
        wait_serving(self.grpc_port, self.process, timeout=60)

    @property
    def log_file(self) -> Path:
        """Where every start of this gate appends its log."""
        return self.config_file.with_suffix(".log")

    def kill(self) -> None:
        """SIGKILL the process and reap it."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(30)

    def stop(self) -> None:
        """Kill the process if it still runs (test clean-up)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)

    def channel(self) -> grpc.Channel:
        """A new plaintext channel to the gRPC listener."""
        return grpc.insecure_channel(f"127.0.0.1:{self.grpc_port}")


def gate_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a child gate: ours without GATE_*, the repository importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATE_")}
    env["GATE_DATA_DIR"] = str(data_dir)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env.update(extra)
    return env


def call(
    channel: grpc.Channel,
    method: str,
    request: Message,
    response_class: type[Message],
    timeout: float = 10,
    metadata: tuple[tuple[str, str], ...] = (),
) -> Message:
    """One unary call; ``method`` is ``package.Service/Method``."""
    stub = channel.unary_unary(
        f"/{method}",
        request_serializer=type(request).SerializeToString,
        response_deserializer=response_class.FromString,
    )
    return stub(request, timeout=timeout, metadata=metadata)  # type: ignore[no-any-return]


def review_body(uid: str) -> bytes:
    """The sample Pod review under a new uid."""
    document = json.loads(json.dumps(REVIEW))
    document["request"]["uid"] = uid
    return json.dumps(document).encode()


def until(deadline: float, pause: float = 0.1) -> bool:
    """True while ``deadline`` (a monotonic time) has not passed; sleeps between checks."""
    if time.monotonic() >= deadline:
        return False
    time.sleep(pause)
    return True
