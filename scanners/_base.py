"""What every built-in provider shares: settings, options, the timeout and a cached version."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from gate.config import ScannerProvider as ProviderSettings
from gate.model import ScanTarget, TargetKind
from scanners._options import Option, Options
from scanners._provider import ScanRequest, check_supported


class BaseProvider:
    """Common state of the built-in providers.

    Subclasses set ``tool``, ``supported_targets``, ``report_format`` and
    ``OPTIONS``, and implement ``version`` and ``run``.
    """

    tool: str = ""
    supported_targets: frozenset[TargetKind] = frozenset()
    report_format: str = ""
    OPTIONS: Sequence[Option] = ()

    def __init__(self, name: str, settings: ProviderSettings) -> None:
        """Check the configured options.

        Args:
            name: The configuration key (``scanners.<name>``).
            settings: That key's settings.

        Raises:
            gate.errors.ConfigError: an option is unknown or malformed.
        """
        self.name = name
        self.settings = settings
        self.options = Options.from_config(self.OPTIONS, settings.options, name)
        self._version = ""
        self._version_lock = threading.Lock()

    @property
    def config_key(self) -> str:
        """The configuration prefix of this provider."""
        return f"scanners.{self.name}"

    def request_options(self, request: ScanRequest) -> Options:
        """The configured options overridden by the request's (checked)."""
        return self.options.merged(self.OPTIONS, request.options)

    def check_target(self, target: ScanTarget) -> None:
        """Raise UnsupportedTarget unless this provider scans ``target.kind``."""
        check_supported(self.name, self.supported_targets, target)

    def timeout_for(self, request: ScanRequest) -> float:
        """The run's timeout: the request's, else the configured one."""
        return request.timeout if request.timeout is not None else self.settings.timeout

    def __getstate__(self) -> dict[str, object]:
        """Pickle without the lock, so a provider can be handed to a worker process."""
        state = dict(self.__dict__)
        del state["_version_lock"]
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        """Restore a pickled provider with a fresh lock."""
        self.__dict__.update(state)
        self._version_lock = threading.Lock()

    def version(self) -> str:
        """Return the tool's version, asking it once."""
        with self._version_lock:
            if not self._version:
                self._version = self._ask_version()
            return self._version

    def _ask_version(self) -> str:
        raise NotImplementedError
