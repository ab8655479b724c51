"""The policy watch and the worker processes' reloads, against files that change, break or vanish.

Every process must end on the bundle the main process put in force: a worker compiles the bytes
the main process compiled (not the sources again, which may have changed or broken meanwhile),
and a reload that fails in an unexpected way leaves the watch running and the bundle in force.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gate.config import load_config
from gate.core import Gate
from gate.server._metrics import POLICY_RELOAD_ERRORS
from gate.server._policy_watch import PolicyWatch
from gate.server._workers import Workers, _Slot, listen_to_main_process
from policies import PolicyBundle, load_policies
from policies._loader import last_read

POLICY = """\
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: image-tags
spec:
  validationFailureAction: Enforce
  rules:
  - name: forbidden-tag
    match: {{any: [{{resources: {{kinds: [Pod]}}}}]}}
    validate:
      pattern:
        spec:
          containers:
          - image: "!*:{tag}"
"""
BROKEN = POLICY.format(tag="x").replace(
    "validationFailureAction: Enforce", "validationFailureAction: Sometimes"
)


class NoStore:
    """A store port these tests never reach."""

    inline_reads = False

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"store.{name} called")


def core_of(source: Path) -> Gate:
    return Gate(NoStore(), policy_sources=[source])  # type: ignore[arg-type]


def rewrite(path: Path, text: str) -> Callable[[PolicyBundle], None]:
    """A listener of reloads that rewrites ``path`` (as an editor or kubelet would, meanwhile)."""

    def listener(_bundle: PolicyBundle) -> None:
        path.write_text(text)

    return listener


def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds} s"
        time.sleep(0.01)


class _Flaky:
    """A core whose next reload fails with an error no policy file explains (a bug below)."""

    def __init__(self, core: Gate) -> None:
        self.core = core
        self.fail_next = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.core, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("core", "fail_next"):
            object.__setattr__(self, name, value)
        else:
            setattr(self.core, name, value)

    def reload_policies(self) -> PolicyBundle:
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("a bug in the engine")
        return self.core.reload_policies()


def test_an_unexpected_error_in_a_reload_keeps_the_watch_running_and_the_bundle_in_force(
    tmp_path: Path,
) -> None:
    policy = tmp_path / "tags.yaml"
    policy.write_text(POLICY.format(tag="latest"))
    core = core_of(tmp_path)
    first = core.policies.digest
    flaky = _Flaky(core)
    watch = PolicyWatch(flaky, 0.02)  # type: ignore[arg-type]
    loop = asyncio.new_event_loop()
    task = loop.create_task(watch.run())
    ended: list[BaseException | None] = []

    def run() -> None:
        try:
            loop.run_until_complete(task)
            ended.append(None)
        except BaseException as error:  # the cancellation at the end, or what ended the watch
            ended.append(error)

    runner = threading.Thread(target=run, daemon=True)
    errors_before = POLICY_RELOAD_ERRORS._value.get()
    runner.start()
    try:
        time.sleep(0.1)
        policy.write_text(POLICY.format(tag="edge0"))
        wait_for(lambda: core.policy_reload_error is not None)
        assert core.policies.digest == first
        failed = core.policy_reload_error
        assert failed is not None
        assert "unexpected RuntimeError while loading the policy sources: a bug in the engine" in failed[0]
        assert POLICY_RELOAD_ERRORS._value.get() == errors_before + 1
        assert not task.done(), "the watch ended with the failed reload"

        policy.write_text(POLICY.format(tag="edge01"))
        wait_for(lambda: core.policies.digest != first)
        assert core.policy_reload_error is None
    finally:
        loop.call_soon_threadsafe(task.cancel)
        runner.join(10)
        loop.close()
    assert len(ended) == 1
    assert isinstance(ended[0], asyncio.CancelledError), ended


def _worker(tmp_path: Path, source: Path) -> tuple[Workers, Gate, threading.Thread]:
    """A Workers whose one slot is answered, over a real pipe, by a thread with a core of its own."""
    config = load_config(None, {"GATE_DATA_DIR": str(tmp_path / "data"), "GATE_POLICY_SOURCES": str(source)})
    workers = Workers(config, None, None)
    ours, theirs = multiprocessing.Pipe()
    worker_core = core_of(source)
    watch = PolicyWatch(worker_core, 0)

    def reload() -> tuple[bool, str]:
        loaded = watch.reload()
        error = worker_core.policy_reload_error
        return loaded, worker_core.policies.digest if loaded else (error[0] if error else "")

    thread = threading.Thread(target=listen_to_main_process, args=(theirs, lambda: None, reload), daemon=True)
    thread.start()
    workers._slots[1] = _Slot(1, process=None, control=ours, ready_at=time.monotonic())  # type: ignore[arg-type]
    return workers, worker_core, thread


def test_a_worker_ends_on_the_main_process_bundle_though_the_file_broke_before_it_reloaded(
    tmp_path: Path,
) -> None:
    source = tmp_path / "policies"
    source.mkdir()
    policy = source / "tags.yaml"
    policy.write_text(POLICY.format(tag="latest"))
    main_core = core_of(source)
    workers, worker_core, thread = _worker(tmp_path, source)
    # The main process has loaded the new file; before the workers reload it is broken (an
    # editor's half-written save, the next ConfigMap update): they must not keep the old bundle.
    main_core.policy_listeners.append(rewrite(policy, BROKEN))
    main_core.policy_listeners.append(workers.reload)
    policy.write_text(POLICY.format(tag="edge"))

    assert PolicyWatch(main_core, 0).reload() is True
    assert worker_core.policies.digest == main_core.policies.digest
    assert worker_core.policy_reload_error is None

    workers._slots[1].control.send(("stop",))
    thread.join(10)


def test_a_worker_ends_on_the_main_process_bundle_though_the_file_changed_again_before_it_reloaded(
    tmp_path: Path,
) -> None:
    source = tmp_path / "policies"
    source.mkdir()
    policy = source / "tags.yaml"
    policy.write_text(POLICY.format(tag="latest"))
    main_core = core_of(source)
    workers, worker_core, thread = _worker(tmp_path, source)
    main_core.policy_listeners.append(rewrite(policy, POLICY.format(tag="later")))
    main_core.policy_listeners.append(workers.reload)
    policy.write_text(POLICY.format(tag="edge"))

    PolicyWatch(main_core, 0).reload()
    assert worker_core.policies.digest == main_core.policies.digest
    # The files hold "later" by now: the main process's next poll reloads every process to it.
    assert main_core.policies.digest != load_policies([source]).digest

    workers._slots[1].control.send(("stop",))
    thread.join(10)


def test_a_worker_started_after_a_reload_compiles_the_files_the_main_process_compiled(tmp_path: Path) -> None:
    source = tmp_path / "policies"
    source.mkdir()
    (source / "tags.yaml").write_text(POLICY.format(tag="latest"))
    config = load_config(None, {"GATE_DATA_DIR": str(tmp_path / "data"), "GATE_POLICY_SOURCES": str(source)})
    main_core = core_of(source)
    workers = Workers(config, None, None)
    main_core.policy_listeners.append(workers.reload)
    (source / "tags.yaml").write_text(POLICY.format(tag="edge"))
    main_core.reload_policies()
    snapshot = last_read()
    assert snapshot is not None
    # A worker (re)started now is handed those bytes (WorkerRole.policies), not the files' later state.
    role = workers.role(1, None)  # type: ignore[arg-type]
    assert role.policies == snapshot
    assert [content.decode() for _, _, content in snapshot.files] == [POLICY.format(tag="edge")]


def test_a_kubelet_configmap_update_to_a_broken_version_keeps_the_bundle_and_the_next_one_loads(
    tmp_path: Path,
) -> None:
    # kubelet's ConfigMap volume: visible names link through ..data to a timestamped directory,
    # and an update renames a new ..data link over the old one, then removes the old directory.
    mount = tmp_path / "mount"
    mount.mkdir()
    versions = iter(range(1, 100))

    def publish(files: dict[str, str]) -> None:
        version = mount / f"..2026_11_30_00_00_{next(versions):02d}.000000001"
        version.mkdir()
        for name, text in files.items():
            (version / name).write_text(text)
        old = os.readlink(mount / "..data") if (mount / "..data").is_symlink() else None
        os.symlink(version.name, mount / "..data_tmp")
        os.rename(mount / "..data_tmp", mount / "..data")
        for name in files:
            if not (mount / name).is_symlink():
                os.symlink(f"..data/{name}", mount / name)
        for link in mount.iterdir():
            if not link.name.startswith(".") and link.name not in files:
                link.unlink()
        if old is not None:
            for child in (mount / old).iterdir():
                child.unlink()
            (mount / old).rmdir()

    publish({"tags.yaml": POLICY.format(tag="latest")})
    core = core_of(mount)
    first = core.policies.digest
    watch = PolicyWatch(core, 0)

    publish({"tags.yaml": BROKEN, "more.yaml": POLICY.format(tag="x").replace("image-tags", "more")})
    assert watch.reload() is False
    assert core.policies.digest == first
    assert core.policy_reload_error is not None
    assert f"{mount}/tags.yaml:6: spec.validationFailureAction" in core.policy_reload_error[0]

    publish({"more.yaml": POLICY.format(tag="x").replace("image-tags", "more")})
    assert watch.reload() is True
    assert [p.name for p in core.policies.policies] == ["more"]
    assert core.policy_reload_error is None


@pytest.mark.parametrize("how", ["removed", "replaced by a file"])
def test_a_policy_directory_removed_then_recreated_keeps_the_bundle_meanwhile(
    tmp_path: Path, how: str
) -> None:
    source = tmp_path / "policies"
    source.mkdir()
    (source / "tags.yaml").write_text(POLICY.format(tag="latest"))
    core = core_of(source)
    first = core.policies.digest
    watch = PolicyWatch(core, 0)
    (source / "tags.yaml").unlink()
    source.rmdir()
    if how == "replaced by a file":
        source.write_text("not a directory")
    assert watch.reload() is False
    assert core.policies.digest == first
    assert core.policy_reload_error is not None
    if how == "replaced by a file":
        source.unlink()
    source.mkdir()
    (source / "tags.yaml").write_text(POLICY.format(tag="edge"))
    assert watch.reload() is True
    assert core.policies.digest != first
