"""The providers gate knows, and building the ones the configuration names.

Built-ins are listed explicitly in :data:`SCANNER_FOR_NAME`, by import path: a
built-in is imported only when the configuration names it, like a deployment's
own provider (``scanners.<name>.class: package.module:Class``). No code is
loaded that the configuration does not name (and an unused provider's
dependencies, such as httpx for SonarQube, cost nothing at start-up).
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable, Mapping

from gate.config import ScannerProvider as ProviderSettings
from gate.errors import ConfigError
from scanners._provider import ScannerProvider

ProviderClass = Callable[[str, ProviderSettings], ScannerProvider]

SCANNER_FOR_NAME: Mapping[str, str] = {
    "trivy": "scanners._trivy:TrivyProvider",
    "gitleaks": "scanners._gitleaks:GitleaksProvider",
    "snyk": "scanners._snyk:SnykProvider",
    "sonarqube": "scanners._sonarqube:SonarQubeProvider",
}

_CLASS_PATH = re.compile(r"[A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*")
_SOURCE = "configuration"
_BUILT_INS = ", ".join(sorted(SCANNER_FOR_NAME))


def _import_class(path: str, key: str) -> type:
    if not _CLASS_PATH.fullmatch(path):
        raise ConfigError(
            _SOURCE,
            key,
            f"expected a built-in ({_BUILT_INS}) or package.module:Class, got {path!r}",
        )
    module_name, _, attribute = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(_SOURCE, key, f"cannot import module {module_name!r}: {exc}") from None
    except Exception as exc:  # a broken module must not take gate down with a traceback
        raise ConfigError(
            _SOURCE, key, f"importing {module_name!r} failed: {type(exc).__name__}: {exc}"
        ) from None
    found: object = module
    for part in attribute.split("."):
        found = getattr(found, part, None)
        if found is None:
            raise ConfigError(_SOURCE, key, f"module {module_name!r} has no attribute {attribute!r}")
    if not inspect.isclass(found):
        raise ConfigError(_SOURCE, key, f"{path!r} is not a class, got {type(found).__name__}")
    return found


def _check_provider(instance: object, path: str, key: str) -> ScannerProvider:
    missing = [
        name
        for name in ("name", "supported_targets", "report_format", "version", "run")
        if not hasattr(instance, name)
    ]
    if missing or not isinstance(instance, ScannerProvider):
        raise ConfigError(_SOURCE, key, f"{path!r} is not a scanner provider (missing {', '.join(missing)})")
    if not callable(getattr(instance, "run", None)) or not callable(getattr(instance, "version", None)):
        raise ConfigError(
            _SOURCE, key, f"{path!r} is not a scanner provider (run and version must be methods)"
        )
    return instance


def provider_class(name: str, settings: ProviderSettings) -> type:
    """The class that implements ``scanners.<name>``.

    ``class`` may name a built-in (to run a second, differently configured
    instance of it) or ``package.module:Class``; without it, ``name`` must be a
    built-in.

    Raises:
        ConfigError: naming ``scanners.<name>.class`` (or ``scanners.<name>``).
    """
    path = settings.provider_class
    if not path:
        if name not in SCANNER_FOR_NAME:
            raise ConfigError(
                _SOURCE,
                f"scanners.{name}",
                f"not a built-in provider ({_BUILT_INS}); set class: package.module:Class",
            )
        return _import_class(SCANNER_FOR_NAME[name], f"scanners.{name}")
    if path in SCANNER_FOR_NAME:
        return _import_class(SCANNER_FOR_NAME[path], f"scanners.{name}.class")
    return _import_class(path, f"scanners.{name}.class")


def load_providers(config: Mapping[str, ProviderSettings]) -> dict[str, ScannerProvider]:
    """Build the enabled providers the configuration names, in its order.

    Args:
        config: ``Config.scanners``: provider name to settings.

    Raises:
        ConfigError: a class cannot be imported or is not a provider, or an
            option is unknown or malformed; the message names the key.
    """
    providers: dict[str, ScannerProvider] = {}
    for name, settings in config.items():
        if not settings.enabled:
            continue
        cls = provider_class(name, settings)
        key = f"scanners.{name}.class" if settings.provider_class else f"scanners.{name}"
        try:
            instance = cls(name, settings)
        except ConfigError:
            raise
        except Exception as exc:  # a deployment's class failing must name its key, not dump a traceback
            raise ConfigError(
                _SOURCE, key, f"constructing {cls.__name__} failed: {type(exc).__name__}: {exc}"
            ) from None
        providers[name] = _check_provider(instance, settings.provider_class or name, key)
    return providers
