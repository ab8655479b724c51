"""``gate verify image``, ``gate verify attestation``, ``gate sign`` and ``gate attest``.

Verification runs in this process, as cosign does: it reads the registry with the
configuration's ``registry`` settings (or an OCI layout on disk with ``--local``) and
trusts what the options name, else the configured trusted root, else Sigstore's
public-good root shipped with gate (never fetched). With ``--server`` the running gate
verifies instead, with its own trust material, and records the result as evidence.

Signing always happens here: the private key never leaves this machine.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from gate.cli._input import DOCUMENT_BYTES, KEY_BYTES, read_input, read_text_input
from gate.cli._verify import (
    build_trust,
    check_details,
    identity_options,
    log_details,
    trust_options,
    verify,
)
from gate.errors import EvidenceError, InvalidArgument

MAX_PREDICATE_BYTES = 16 * 1024 * 1024


def _source(state: Any, local: Path | None) -> Any:
    from gate.oci import OciLayout, RegistryClient

    if local is not None:
        return OciLayout(local)
    return RegistryClient.from_settings(state.config.registry, state.config.kubernetes)


def _trust(state: Any, options: dict[str, Any]) -> Any:
    from gate.signatures import TrustRoot
    from gate.verification import embedded_trust_root

    given = build_trust(options)
    if options.get("trusted_root") is not None:
        return given
    configured = state.config.signatures.trusted_root
    if configured is not None:
        base = TrustRoot.from_trusted_root_json(
            read_input(Path(configured), "signatures.trusted_root", DOCUMENT_BYTES)
        )
    else:
        base = embedded_trust_root()
    return base.merged(given)


def _request(options: dict[str, Any], predicate_types: tuple[str, ...], attestations_only: bool) -> Any:
    from gate.signatures import Identity
    from gate.verification import VerifyRequest

    subject = options.get("certificate_identity", "")
    subject_regexp = options.get("certificate_identity_regexp", "")
    issuer = options.get("certificate_oidc_issuer", "")
    issuer_regexp = options.get("certificate_oidc_issuer_regexp", "")
    key_path: Path | None = options.get("key")
    keyless = any((subject, subject_regexp, issuer, issuer_regexp))
    if (key_path is None) == (not keyless):
        raise click.UsageError(
            "give --key, or --certificate-identity[-regexp] with --certificate-oidc-issuer[-regexp]"
        )
    if keyless and not (issuer or issuer_regexp):
        raise click.UsageError("--certificate-oidc-issuer or --certificate-oidc-issuer-regexp is required")
    try:
        keys = (read_text_input(key_path, "--key", KEY_BYTES),) if key_path is not None else ()
        identities = (
            (
                Identity(
                    subject=subject, subject_regexp=subject_regexp, issuer=issuer, issuer_regexp=issuer_regexp
                ),
            )
            if keyless
            else ()
        )
    except (OSError, UnicodeDecodeError) as error:
        raise click.BadParameter(f"cannot read {key_path}: {error}", param_hint="--key") from None
    except InvalidArgument as error:
        raise click.UsageError(error.message) from None
    return VerifyRequest(
        public_keys=keys,
        identities=identities,
        require_tlog=bool(options.get("require_tlog")),
        predicate_types=predicate_types,
        attestations_only=attestations_only,
    )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _log_json(check: Any) -> dict[str, Any]:
    """A check's log entry and times for ``-o json``: null when unknown, times in ISO 8601."""
    return {
        "tlog_index": check.tlog_index,
        "tlog_tree": check.tlog_tree or None,
        "tlog_tree_index": check.tlog_tree_index,
        "integrated_time": _iso(check.integrated_time),
        "timestamp": _iso(check.timestamp),
    }


def _line(what: str, signer: str, details: list[str]) -> str:
    return f"  {what} by {signer}" + (f" ({', '.join(details)})" if details else "")


def _print(result: Any, image: str, output: str, predicate_types: tuple[str, ...]) -> None:
    if output == "json":
        document = {
            "image": image,
            "digest": result.digest,
            "verified": result.verified,
            "reason": result.reason,
            "signatures": [
                {"verified": s.verified, "signer": s.signer, **_log_json(s), "reason": s.reason}
                for s in result.signatures
            ],
            "attestations": {
                kind: [
                    {
                        "verified": a.verified,
                        "signer": a.signer,
                        **_log_json(a),
                        "reason": a.reason,
                        "predicate": a.predicate,
                    }
                    for a in checks
                ]
                for kind, checks in result.attestations.items()
            },
        }
        click.echo(json.dumps(document, indent=2, default=str))
    if not result.verified:
        raise EvidenceError(f"{image}: verification failed: {result.reason}")
    if output == "json":
        return
    click.echo(f"Verified OK: {image}@{result.digest}")
    # One line per distinct verified signature (the same one found twice is shown once).
    lines = {_line("signature", s.signer, check_details(s)) for s in result.signatures if s.verified}
    for line in sorted(lines):
        click.echo(line)
    for kind in predicate_types:
        for check in result.attestations.get(kind, ()):
            if check.verified:
                click.echo(_line(f"attestation {kind}", check.signer, check_details(check)))


def _run_verify(
    state: Any,
    image: str,
    options: dict[str, Any],
    predicate_types: tuple[str, ...],
    *,
    attestations_only: bool,
) -> None:
    from gate.oci import ImageRef
    from gate.verification import ImageVerifierService

    local: Path | None = options.get("local")
    request = _request(options, predicate_types, attestations_only)
    if state.server:
        _remote_verify(state, image, request, options, local)
        return
    try:
        policy, key = request.policy()
    except InvalidArgument as error:
        raise click.UsageError(error.message) from None
    ref = ImageRef.parse(image)
    service = ImageVerifierService(_source(state, local), _trust(state, options))
    _print(service.verify(ref, policy, key), image, options.get("output", "text"), predicate_types)


def _remote_verify(state: Any, image: str, request: Any, options: dict[str, Any], local: Path | None) -> None:
    from gate.v1 import signature_pb2

    local_only = [name for name in ("trusted_root", "ca_roots", "ca_intermediates") if options.get(name)]
    if local is not None or local_only or options.get("rekor_keys"):
        raise click.UsageError(
            "--local and trust options apply to verification in this process; "
            "with --server the gate verifies with its own trust material"
        )
    policy = signature_pb2.VerificationPolicy(
        public_keys=list(request.public_keys),
        identities=[
            signature_pb2.KeylessIdentity(issuer=i.issuer, subject=i.subject, subject_regexp=i.subject_regexp)
            for i in request.identities
        ],
        require_tlog=request.require_tlog,
        required_predicate_types=list(request.predicate_types),
        attestations_only=request.attestations_only,
    )
    answer: Any = state.client().call(
        "gate.v1.SignatureService/VerifyImage", signature_pb2.VerifyImageRequest(image=image, policy=policy)
    )
    if options.get("output") == "json":
        from google.protobuf.json_format import MessageToJson

        click.echo(MessageToJson(answer, indent=2))
    if not answer.verified:
        raise EvidenceError(f"{image}: verification failed: {answer.message}")
    if options.get("output") != "json":
        click.echo(f"Verified OK: {image}@{answer.artifact_digest} (recorded as {answer.id})")
        lines = {_line("signature", s.signer, _answer_details(s)) for s in answer.signatures if s.verified}
        for line in sorted(lines):
            click.echo(line)
        for a in answer.attestations:
            if a.verified:
                click.echo(_line(f"attestation {a.predicate_type}", a.signer, _answer_details(a)))


def _answer_details(check: Any) -> list[str]:
    """:func:`log_details` of a SignatureResult (-1: no index) or AttestationResult (unset) message."""
    # AttestationResult's index is an optional field (unset: none), SignatureResult's is -1 when none.
    known = not check.DESCRIPTOR.fields_by_name["tlog_index"].has_presence or check.HasField("tlog_index")
    return log_details(
        check.tlog_index if known and check.tlog_index >= 0 else None,
        check.tlog_tree,
        # Only an entry placed in a named tree has a tree index (and a server older than the
        # field sends 0, with no tree).
        check.tlog_tree_index if check.tlog_tree and check.tlog_tree_index >= 0 else None,
        check.integrated_time.ToDatetime(UTC) if check.HasField("integrated_time") else None,
        check.timestamp.ToDatetime(UTC) if check.HasField("timestamp") else None,
    )


def _verify_options(function: Any) -> Any:
    function = click.option(
        "-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True
    )(function)
    return click.option(
        "--local",
        type=click.Path(path_type=Path, file_okay=False, exists=True),
        help="Read the image and its signatures from this OCI image layout instead of a registry.",
    )(function)


@verify.command("image")
@click.argument("image")
@identity_options
@trust_options
@_verify_options
@click.pass_obj
def verify_image(state: Any, /, image: str, **options: Any) -> None:
    """Verify the cosign signatures of IMAGE (a tag or a digest reference)."""
    _run_verify(state, image, options, (), attestations_only=False)


@verify.command("attestation")
@click.argument("image")
@click.option(
    "--type",
    "kinds",
    multiple=True,
    required=True,
    help="Predicate type: a URI or cosign's short names (cyclonedx, spdxjson, vuln, slsaprovenance, ...).",
)
@identity_options
@trust_options
@_verify_options
@click.pass_obj
def verify_attestation(state: Any, /, image: str, kinds: tuple[str, ...], **options: Any) -> None:
    """Verify in-toto attestations of IMAGE; prints each verified predicate with -o json."""
    from gate.publish import predicate_type

    try:
        uris = tuple(predicate_type(kind) for kind in kinds)
    except InvalidArgument as error:
        raise click.BadParameter(error.problem, param_hint="--type") from None
    _run_verify(state, image, options, uris, attestations_only=True)


def _signing_key(path: Path, password_env: str) -> Any:
    import os

    from gate.signatures import load_private_key

    data = read_input(path, "--key", KEY_BYTES)
    password = os.environ.get(password_env, "").encode() or None
    try:
        return load_private_key(data, password)
    except InvalidArgument as error:
        raise click.BadParameter(error.problem, param_hint="--key") from None


def _pinned(state: Any, image: str) -> tuple[Any, Any, str]:
    from gate.oci import ImageRef, RegistryClient

    ref = ImageRef.parse(image)
    client = RegistryClient.from_settings(state.config.registry, state.config.kubernetes)
    digest = ref.digest or client.resolve(ref).digest
    return client, ref, digest


_KEY_OPTION = click.option(
    "--key",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="ECDSA P-256 private key (PKCS#8 PEM, optionally encrypted).",
)
_PASSWORD_OPTION = click.option(
    "--key-password-env",
    default="COSIGN_PASSWORD",
    show_default=True,
    help="Environment variable holding the key's password, if it is encrypted.",
)


@click.command("sign")
@click.argument("image")
@_KEY_OPTION
@_PASSWORD_OPTION
@click.pass_obj
def sign(state: Any, image: str, key: Path, key_password_env: str) -> None:
    """Sign IMAGE as `cosign sign --key` does and push the signature to its registry."""
    from gate.publish import sign_image

    signing_key = _signing_key(key, key_password_env)
    client, ref, digest = _pinned(state, image)
    attached = sign_image(client, ref, digest, signing_key)
    click.echo(f"Signed {ref.name}@{digest}; signature pushed to {attached.reference}")


@click.command("attest")
@click.argument("image")
@click.option(
    "--predicate",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    required=True,
    help="The predicate (JSON), e.g. a CycloneDX SBOM or a vulnerability report.",
)
@click.option(
    "--type", "kind", default="custom", show_default=True, help="Predicate type: a URI or a short name."
)
@click.option("--replace", is_flag=True, help="Replace existing attestations of the same predicate type.")
@_KEY_OPTION
@_PASSWORD_OPTION
@click.pass_obj
def attest(
    state: Any, image: str, predicate: Path, kind: str, replace: bool, key: Path, key_password_env: str
) -> None:
    """Sign an in-toto attestation about IMAGE and push it as `cosign attest --key` does."""
    from gate.publish import attest_image, parse_predicate, predicate_type

    try:
        uri = predicate_type(kind)
        body = parse_predicate(read_input(predicate, "--predicate", MAX_PREDICATE_BYTES))
    except InvalidArgument as error:
        raise click.BadParameter(error.problem, param_hint=f"--{error.field}") from None
    signing_key = _signing_key(key, key_password_env)
    client, ref, digest = _pinned(state, image)
    _, attached = attest_image(client, ref, digest, uri, body, signing_key, replace=replace)
    click.echo(f"Attested {uri} for {ref.name}@{digest}; pushed to {attached.reference}")


COMMANDS = (sign, attest)
