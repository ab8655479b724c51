"""``gate verify``: check signatures and attestations offline, as a cosign user expects.

The trust and identity options are shared decorators so that the image and attestation
subcommands (which need the registry client) reuse them.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from gate.cli._input import DOCUMENT_BYTES, KEY_BYTES, read_input
from gate.errors import EvidenceError, InvalidArgument

F = TypeVar("F", bound=Callable[..., Any])


def _read(path: Path | None, option: str, limit: int = DOCUMENT_BYTES) -> bytes:
    return read_input(path, option, limit)


def trust_options(function: F) -> F:
    """Options naming trust material: a trusted root, Rekor keys and private-PKI CAs."""
    decorators = [
        click.option(
            "--trusted-root",
            type=click.Path(path_type=Path, dir_okay=False),
            help="Sigstore trusted_root.json (Fulcio CAs, Rekor and CT log keys, TSAs). Never fetched.",
        ),
        click.option(
            "--rekor-key",
            "rekor_keys",
            multiple=True,
            type=click.Path(path_type=Path, dir_okay=False),
            help="PEM public key of a trusted Rekor log (repeatable).",
        ),
        click.option(
            "--ca-roots",
            type=click.Path(path_type=Path, dir_okay=False),
            help="PEM bundle of private-PKI roots.",
        ),
        click.option(
            "--ca-intermediates",
            type=click.Path(path_type=Path, dir_okay=False),
            help="PEM bundle of private-PKI intermediates.",
        ),
    ]
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


def identity_options(function: F) -> F:
    """Options naming who may sign: ``--key`` or a certificate identity and issuer."""
    decorators = [
        click.option("--key", type=click.Path(path_type=Path, dir_okay=False), help="PEM or DER public key."),
        click.option("--certificate-identity", default="", help="Exact SAN (email or URI) of the signer."),
        click.option("--certificate-identity-regexp", default="", help="RE2 regexp matching the whole SAN."),
        click.option("--certificate-oidc-issuer", default="", help="Exact OIDC issuer of the signer."),
        click.option(
            "--certificate-oidc-issuer-regexp", default="", help="RE2 regexp matching the whole issuer."
        ),
        click.option(
            "--hash-algorithm",
            type=click.Choice(["sha256", "sha384", "sha512"]),
            default=None,
            help="Hash the key signed with (default: the key's own, then sha256).",
        ),
        click.option("--require-tlog", is_flag=True, help="Require a transparency-log entry even for keys."),
    ]
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


def build_trust(options: dict[str, Any]) -> Any:
    """The TrustRoot the trust options name (empty when none are given).

    Raises:
        click.UsageError: a trust file does not parse.
    """
    try:
        return _build_trust(options)
    except InvalidArgument as exc:
        raise click.UsageError(f"trust material: {exc.message}") from None


def _build_trust(options: dict[str, Any]) -> Any:
    from gate.signatures import TrustRoot

    trust = TrustRoot.from_pem(
        rekor_keys=tuple(_read(p, "--rekor-key") for p in options.get("rekor_keys", ())),
        ca_roots=_read(options.get("ca_roots"), "--ca-roots"),
        ca_intermediates=_read(options.get("ca_intermediates"), "--ca-intermediates"),
    )
    if options.get("trusted_root") is not None:
        trust = TrustRoot.from_trusted_root_json(_read(options["trusted_root"], "--trusted-root")).merged(
            trust
        )
    return trust


def build_policy(options: dict[str, Any]) -> Any:
    """The SignaturePolicy the identity options name.

    Raises:
        click.UsageError: neither or both of a key and a certificate identity were given, the
            key does not parse or a regexp is invalid.
    """
    try:
        return _build_policy(options)
    except InvalidArgument as exc:
        raise click.UsageError(exc.message) from None


def _build_policy(options: dict[str, Any]) -> Any:
    from gate.signatures import Identity, SignaturePolicy, load_public_key

    subject = options.get("certificate_identity", "")
    subject_regexp = options.get("certificate_identity_regexp", "")
    issuer = options.get("certificate_oidc_issuer", "")
    issuer_regexp = options.get("certificate_oidc_issuer_regexp", "")
    key_path = options.get("key")
    keyless = any((subject, subject_regexp, issuer, issuer_regexp))
    if (key_path is None) == (not keyless):
        raise click.UsageError(
            "give --key, or --certificate-identity[-regexp] with --certificate-oidc-issuer[-regexp]"
        )
    if keyless and not (subject or subject_regexp):
        raise click.UsageError("--certificate-identity or --certificate-identity-regexp is required")
    if keyless and not (issuer or issuer_regexp):
        raise click.UsageError("--certificate-oidc-issuer or --certificate-oidc-issuer-regexp is required")
    keys: tuple[Any, ...] = ()
    identities: tuple[Any, ...] = ()
    if key_path is not None:
        keys = (load_public_key(_read(key_path, "--key", KEY_BYTES)),)
    else:
        identities = (
            Identity(
                subject=subject, subject_regexp=subject_regexp, issuer=issuer, issuer_regexp=issuer_regexp
            ),
        )
    return SignaturePolicy(
        keys=keys,
        identities=identities,
        require_tlog=bool(options.get("require_tlog")),
        hash_algorithm=options.get("hash_algorithm"),
    )


def log_details(
    tlog_index: int | None,
    tlog_tree: str,
    tlog_tree_index: int | None,
    integrated_time: datetime | None,
    timestamp: datetime | None,
) -> list[str]:
    """What a check says of its log entry and times, each only when known.

    E.g. ``tlog index 7``, ``tlog tree rekor.example - 1 index 3``,
    ``integrated 2025-01-02T03:04:05+00:00``, ``timestamp 2025-01-02T03:04:06+00:00``.
    """
    details = []
    if tlog_index is not None:
        details.append(f"tlog index {tlog_index}")
    if tlog_tree_index is not None:
        details.append(
            " ".join(part for part in ("tlog tree", tlog_tree, f"index {tlog_tree_index}") if part)
        )
    if integrated_time is not None:
        details.append(f"integrated {integrated_time.isoformat()}")
    if timestamp is not None:
        details.append(f"timestamp {timestamp.isoformat()}")
    return details


def check_details(result: Any) -> list[str]:
    """:func:`log_details` of a ``gate.signatures.Verification``."""
    return log_details(
        result.tlog_index, result.tlog_tree, result.tlog_tree_index, result.integrated_time, result.timestamp
    )


def report(result: Any, what: str) -> None:
    """Print a successful verification, or raise with its reason (exit status 1)."""
    if not result.verified:
        raise EvidenceError(f"{what}: verification failed: {result.reason}")
    details = [f"signer {result.signer}" if result.signer else ""]
    if result.issuer:
        details.append(f"issuer {result.issuer}")
    details.extend(check_details(result))
    if result.predicate_type:
        details.append(f"predicateType {result.predicate_type}")
    click.echo(f"Verified OK: {what} ({', '.join(d for d in details if d)})")


def _b64_or_raw(data: bytes) -> bytes:
    # cosign sign-blob writes the signature as base64; accept raw DER/Ed25519 bytes too.
    text = data.strip()
    try:
        return base64.b64decode(text.replace(b"\n", b"").replace(b"\r", b""), validate=True)
    except (binascii.Error, ValueError):
        return data


@click.group("verify")
def verify() -> None:
    """Verify cosign signatures, attestations and Sigstore bundles offline (no server needed)."""


@verify.command("blob")
@click.argument("artifact")
@click.option(
    "--bundle",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Sigstore bundle, or cosign's legacy blob bundle (base64Signature, cert, rekorBundle).",
)
@click.option(
    "--signature", type=click.Path(path_type=Path, dir_okay=False), help="Detached signature (base64 or raw)."
)
@click.option(
    "--certificate",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Signing certificate (PEM, or base64 of PEM as cosign writes it).",
)
@click.option(
    "--certificate-chain", type=click.Path(path_type=Path, dir_okay=False), help="PEM intermediates (+ root)."
)
@click.option("--type", "predicate_type", default=None, help="Required predicateType of a DSSE bundle.")
@identity_options
@trust_options
def blob(artifact: str, **options: Any) -> None:
    """Verify a signature over ARTIFACT (a file, or sha256:<hex> to verify without its bytes)."""
    from gate.signatures import SignerEvidence, verify_blob, verify_bundle

    if (options["bundle"] is None) == (options["signature"] is None):
        raise click.UsageError("give exactly one of --bundle and --signature")
    data, digest = _artifact(artifact)
    policy = build_policy(options)
    trust = build_trust(options)
    if options["bundle"] is not None:
        bundle = _read(options["bundle"], "--bundle")
        legacy = _legacy_bundle(bundle)
        if legacy is None:
            result = verify_bundle(
                bundle,
                policy=policy,
                trust=trust,
                artifact=data,
                digest=digest,
                predicate_type=options["predicate_type"],
            )
            report(result, artifact)
            return
        signature, evidence = legacy
    else:
        signature = _b64_or_raw(_read(options["signature"], "--signature"))
        evidence = SignerEvidence(
            certificate=_read(options["certificate"], "--certificate") or None,
            chain=_read(options["certificate_chain"], "--certificate-chain") or None,
        )
    if options["predicate_type"] is not None:
        raise click.UsageError("--type applies to DSSE bundles only")
    report(
        verify_blob(signature, policy=policy, trust=trust, artifact=data, digest=digest, evidence=evidence),
        artifact,
    )


def _artifact(text: str) -> tuple[bytes | None, str | None]:
    if text.startswith("sha256:"):
        from gate.signatures._dsse import split_digest

        try:
            split_digest(text)
        except InvalidArgument as exc:
            raise click.BadParameter(exc.problem, param_hint="ARTIFACT") from None
        return None, text.lower()
    return _read(Path(text), "ARTIFACT"), None


def _legacy_bundle(data: bytes) -> tuple[bytes, Any] | None:
    """cosign's pre-v3 ``--bundle`` for blobs, or None when ``data`` is a Sigstore bundle."""
    from gate import _strict_json
    from gate.signatures import SignerEvidence

    try:
        # Strict, and bounded in depth: 100,000 nested [ was a RecursionError traceback.
        document = _strict_json.loads(data)
    except ValueError:
        return None  # not a legacy bundle: verify_bundle says what is wrong with it
    if not isinstance(document, dict) or "base64Signature" not in document:
        return None
    from gate.signatures._rekor import b64decode_strict

    signature = b64decode_strict(document.get("base64Signature"), "bundle.base64Signature")
    cert = b64decode_strict(document["cert"], "bundle.cert") if document.get("cert") else None
    rekor = document.get("rekorBundle")
    evidence = SignerEvidence(
        # A legacy bundle's "cert" may hold a PEM public key (key-signed blobs); the key option decides then.
        certificate=cert if cert is not None and b"CERTIFICATE" in cert else None,
        rekor_bundle=json.dumps(rekor).encode() if rekor is not None else None,
    )
    return signature, evidence


COMMANDS = (verify,)
