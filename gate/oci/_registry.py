"""A thin client of the OCI distribution API on httpx.

Why not a library: oras-py (the maintained Python OCI client on PyPI, 0.2.43
read for this) is built on requests rather than httpx, sets no timeouts,
streams blobs to files without checking their digest or size, caps nothing and
retries with sleeps. An admission path needs the opposite: a deadline per
operation, a cap on every body before it is read, and digest checks on every
byte handed out. So this module speaks the few endpoints gate needs itself.

Every operation has a total time budget (``timeout``; blobs ``blob_timeout``);
each HTTP exchange waits at most the smaller of ``timeout`` and what is left of
that budget. Responses are always streamed: a Content-Length above the cap is
refused before reading, and bodies without one are cut off at the cap.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, replace
from types import TracebackType
from typing import TYPE_CHECKING

import httpx

from gate.oci import _media as media
from gate.oci._auth import TokenCache, is_bearer_token, parse_challenge, token_lifetime
from gate.oci._cosign import referrers_tag
from gate.oci._credentials import Credentials, RegistryAuth
from gate.oci._digest import VerifiedReader, check_digest, digest_of
from gate.oci._errors import (
    ContentNotFound,
    DigestMismatch,
    InvalidReference,
    MalformedContent,
    RegistryAuthError,
    RegistryError,
    RegistryRejected,
    RegistryTimeout,
    SizeLimitExceeded,
    SizeMismatch,
)
from gate.oci._model import (
    Descriptor,
    ImageIndex,
    ImageManifest,
    Platform,
    check_against,
    load_json_object,
    parse_manifest,
)
from gate.oci._reference import ImageRef, registry_key
from gate.oci._source import MAX_MANIFEST_BYTES, ImageSource, read_all, walk_to_image

if TYPE_CHECKING:
    from gate.config import KubernetesSettings, RegistrySettings

_ACCEPT_MANIFESTS = ", ".join(
    [media.OCI_MANIFEST, media.OCI_INDEX, media.DOCKER_MANIFEST, media.DOCKER_MANIFEST_LIST]
)
_MAX_ERROR_BODY = 64 * 1024
_MAX_TOKEN_BODY = 1024 * 1024
_MAX_TAGS_BODY = 4 * 1024 * 1024
_MAX_PAGES = 100
_MAX_TAGS = 100_000
# How many fallback-index members are fetched to learn an artifact type the index entry leaves out.
_MAX_MEMBERS_INSPECTED = 64
DEFAULT_MAX_COPY_BLOB = 512 * 1024 * 1024
# The most digits a Content-Length may have: h11, which parses responses on real connections,
# refuses more, so this cap changes nothing there; it keeps int() off the thousands of digits
# another transport could hand over (past 4,300 int() raises ValueError).
_MAX_LENGTH_DIGITS = 20


class _Operation:
    """The time budget of one client operation and what to call it in errors."""

    def __init__(self, where: str, budget: float, per_request: float, clock: Callable[[], float]) -> None:
        self.where = where
        self._budget = budget
        self._per_request = per_request
        self._clock = clock
        self._end = clock() + budget

    def remaining(self) -> float:
        left = self._end - self._clock()
        if left <= 0:
            raise RegistryTimeout(f"{self.where}: not finished within {self._budget:g} s")
        return left

    def timeout(self) -> httpx.Timeout:
        return httpx.Timeout(min(self._per_request, self.remaining()))


@dataclass(frozen=True)
class _HostAuth:
    """How a registry host asked to be authenticated (learnt from its first 401)."""

    scheme: str
    realm: str = ""
    service: str = ""


@functools.lru_cache(maxsize=16)
def _tls_context(ca_file: str | None) -> ssl.SSLContext:
    # Loading the system CAs takes ~100 ms, so clients share contexts (they are thread-safe);
    # a CA file changed in place is read again by the next process.
    context = ssl.create_default_context()
    if ca_file is not None:
        try:
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise InvalidReference("tls_verify", f"cannot load CA bundle {ca_file}: {exc}") from None
    return context


def _essence(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _netloc(url: httpx.URL) -> str:
    return url.netloc.decode("ascii")


def _same_origin(one: httpx.URL, other: httpx.URL) -> bool:
    # httpx normalises case and default ports, so compare its parsed parts, not the text.
    return (one.scheme, one.host, one.port) == (other.scheme, other.host, other.port)


def _registry_message(body: bytes) -> str:
    """A short, printable summary of a registry's error body (distribution ``errors`` array)."""
    text = ""
    try:
        doc = json.loads(body)
        errors = doc.get("errors") if isinstance(doc, dict) else None
        if isinstance(errors, list):
            parts = [
                f"{e.get('code', '?')}: {e.get('message', '')}".strip(": ")
                for e in errors[:3]
                if isinstance(e, dict)
            ]
            text = "; ".join(parts)
    except (ValueError, UnicodeDecodeError, RecursionError):
        text = body[:200].decode("utf-8", "replace")
    printable = "".join(c if c.isprintable() else " " for c in text).strip()
    return printable[:300]


def _content_length(op: _Operation, response: httpx.Response) -> int | None:
    """The Content-Length, None when absent; RegistryError when it is not a plain decimal number."""
    text = response.headers.get("content-length")
    if text is None:
        return None
    # str.isdigit() alone accepts "²" and other Unicode digits (httpx decodes headers as latin-1).
    if not (text.isascii() and text.isdigit() and len(text) <= _MAX_LENGTH_DIGITS):
        shown = text if len(text) <= 40 else f"{text[:40]}... ({len(text)} characters)"
        raise RegistryError(
            f"{op.where}: invalid Content-Length: expected a decimal number of at most "
            f"{_MAX_LENGTH_DIGITS} digits, got {shown!r}"
        )
    return int(text)


class RegistryClient:
    """An :class:`~gate.oci.ImageSource` over the OCI distribution API, with push, tags and referrers.

    Share one client (it is thread-safe): connections and bearer tokens are cached per client.

    Args:
        credentials: credentials by registry; anonymous when omitted.
        timeout: seconds one operation (resolve, manifest, push...) may take in total, and the
            longest wait for any single connect or read.
        blob_timeout: total seconds for opening and reading one blob.
        tls_verify: True (system CAs), False (no verification: tests of broken setups only),
            or the path of a PEM bundle of CAs trusted in addition to the system ones.
        plain_http_hosts: registries (``host`` or ``host:port``) reached over plain HTTP; a token
            service on plain HTTP is accepted only on one of these hosts.
        max_manifest_bytes: the cap on manifests, indexes and referrer lists.
        transport: an httpx transport (tests pass a fake registry here).
        clock: monotonic seconds, for deadlines and token lifetimes.
    """

    def __init__(
        self,
        credentials: Credentials | None = None,
        *,
        timeout: float = 30.0,
        blob_timeout: float = 300.0,
        tls_verify: bool | str | os.PathLike[str] = True,
        plain_http_hosts: Iterable[str] = (),
        max_manifest_bytes: int = MAX_MANIFEST_BYTES,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.credentials = credentials or Credentials.anonymous()
        self.timeout = timeout
        self.blob_timeout = blob_timeout
        self.max_manifest_bytes = max_manifest_bytes
        self._plain = frozenset(registry_key(h) for h in plain_http_hosts)
        self._clock = clock
        self._tokens = TokenCache(clock)
        self._hosts: dict[str, _HostAuth] = {}
        self._lock = threading.Lock()
        verify: ssl.SSLContext | bool = False
        if tls_verify is True:
            verify = _tls_context(None)
        elif tls_verify is not False:
            verify = _tls_context(os.fspath(tls_verify))
        self._http = httpx.Client(
            verify=verify,
            timeout=timeout,
            transport=transport,
            # Proxies and CA bundles from the environment would change where and to whom
            # gate talks without its configuration saying so.
            trust_env=False,
            follow_redirects=False,
            max_redirects=5,
            # Compressed bodies would be decompressed before the caps apply.
            headers={"User-Agent": "gate", "Accept-Encoding": "identity"},
        )

    @classmethod
    def from_settings(
        cls, settings: RegistrySettings, kubernetes: KubernetesSettings | None = None
    ) -> RegistryClient:
        """A client as gate's ``registry`` configuration section describes it.

        Credentials come from ``registry.docker_config``, else from ``$DOCKER_CONFIG`` or
        ``~/.docker/config.json`` when present; ``registry.ca_file`` is trusted in addition to
        the system CAs; ``registry.insecure`` hosts are reached over plain HTTP.
        ``registry.pull_secrets`` and ``registry.project_pull_secrets`` come first, read from
        the cluster ``kubernetes`` names (in-cluster when None).
        """
        credentials = (
            Credentials.from_docker_config(settings.docker_config)
            if settings.docker_config is not None
            else Credentials.from_environment()
        )
        from gate.oci._pull_secrets import pull_secret_credentials

        live = pull_secret_credentials(settings, kubernetes)
        if live is not None:
            credentials = live.merged(credentials)
        return cls(
            credentials,
            timeout=settings.timeout,
            tls_verify=settings.ca_file if settings.ca_file is not None else True,
            plain_http_hosts=settings.insecure,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- reading -----------------------------------------------------------------------------------

    def resolve(self, ref: ImageRef) -> Descriptor:
        """The descriptor of the manifest ``ref`` names (HEAD; GET when the registry omits headers)."""
        op = self._operation(f"manifest {ref}")
        url = self._url(ref, f"/manifests/{ref.reference}")
        with closing(self._send(op, "HEAD", url, ref, "pull", headers={"Accept": _ACCEPT_MANIFESTS})) as got:
            if got.status_code == 405:
                # A registry (or proxy) without HEAD on manifests: ask with GET instead.
                return self.manifest(ref).descriptor
            if got.status_code != 200:
                self._fail(op, got, "manifest", str(ref))
            digest = got.headers.get("docker-content-digest")
            kind = _essence(got.headers.get("content-type"))
            length = _content_length(op, got)
        if digest and kind in media.MANIFEST_TYPES and length is not None:
            try:
                check_digest(digest, field=f"{op.where}: Docker-Content-Digest")
            except InvalidReference as exc:
                raise MalformedContent(exc.message) from None
            if ref.digest is not None and digest != ref.digest:
                raise DigestMismatch(op.where, ref.digest, digest)
            if length > self.max_manifest_bytes:
                raise SizeLimitExceeded(op.where, self.max_manifest_bytes, length, at_least=False)
            return Descriptor(kind, digest, length)
        return self.manifest(ref).descriptor

    def manifest(self, ref: ImageRef, *, expected: Descriptor | None = None) -> ImageManifest | ImageIndex:
        """The manifest or index ``ref`` (or ``expected``) names, verified and capped."""
        target = ref.with_digest(expected.digest) if expected is not None else ref
        op = self._operation(f"manifest {target}")
        url = self._url(target, f"/manifests/{target.reference}")
        with closing(
            self._send(op, "GET", url, target, "pull", headers={"Accept": _ACCEPT_MANIFESTS})
        ) as got:
            if got.status_code != 200:
                self._fail(op, got, "manifest", str(target))
            raw = self._read_body(op, got, self.max_manifest_bytes)
            served_digest = got.headers.get("docker-content-digest")
            content_type = got.headers.get("content-type")
        digest = target.digest
        if digest is None and served_digest:
            try:
                digest = check_digest(served_digest, field=f"{op.where}: Docker-Content-Digest")
            except InvalidReference as exc:
                raise MalformedContent(exc.message) from None
        found = parse_manifest(raw, where=op.where, digest=digest, content_type=content_type)
        if expected is not None:
            check_against(found, expected, where=op.where)
        return found

    def image_manifest(self, ref: ImageRef, platform: str | Platform = "linux/amd64") -> ImageManifest:
        """The image manifest for ``platform``, walking indexes."""
        return walk_to_image(self, ref, platform)

    def open_blob(self, ref: ImageRef, descriptor: Descriptor, max_bytes: int) -> VerifiedReader:
        """A stream of a blob of ``ref``'s repository, checked as it arrives (close it, or use ``with``)."""
        where = f"blob {descriptor.digest} of {ref.name}"
        if descriptor.size > max_bytes:
            raise SizeLimitExceeded(where, max_bytes, descriptor.size, at_least=False)
        op = self._operation(where, self.blob_timeout)
        url = self._url(ref, f"/blobs/{descriptor.digest}")
        got = self._send(op, "GET", url, ref, "pull", follow_redirects=True)
        try:
            if got.status_code != 200:
                self._fail(op, got, "blob", f"{descriptor.digest} in {ref.name}")
            length = _content_length(op, got)
            if length is not None and length != descriptor.size:
                raise SizeMismatch(where, descriptor.size, length)
            return VerifiedReader(
                self._chunks(op, got),
                where=where,
                digest=descriptor.digest,
                size=descriptor.size,
                max_bytes=max_bytes,
                on_close=got.close,
            )
        except BaseException:
            got.close()
            raise

    def read_blob(self, ref: ImageRef, descriptor: Descriptor, max_bytes: int) -> bytes:
        """A whole blob, verified."""
        return read_all(self, ref, descriptor, max_bytes)

    def has_blob(self, ref: ImageRef, digest: str, *, for_push: bool = False) -> bool:
        """True when ``ref``'s repository holds the blob ``digest``."""
        op = self._operation(f"blob {digest} of {ref.name}")
        actions = "pull,push" if for_push else "pull"
        url = self._url(ref, f"/blobs/{check_digest(digest)}")
        with closing(self._send(op, "HEAD", url, ref, actions, follow_redirects=True)) as got:
            if got.status_code == 200:
                return True
            if got.status_code == 404:
                return False
            self._fail(op, got, "blob", digest)
        raise AssertionError("unreachable")  # pragma: no cover

    def list_tags(self, ref: ImageRef) -> list[str]:
        """The tags of ``ref``'s repository (all pages, at most 100,000)."""
        op = self._operation(f"tags of {ref.name}")
        url: httpx.URL | None = self._url(ref, "/tags/list").copy_merge_params({"n": "1000"})
        tags: list[str] = []
        pages = 0
        while url is not None:
            pages += 1
            if pages > _MAX_PAGES:
                raise RegistryError(f"{op.where}: more than {_MAX_PAGES} pages of tags")
            with closing(self._send(op, "GET", url, ref, "pull")) as got:
                if got.status_code != 200:
                    self._fail(op, got, "repository", ref.name)
                body = self._read_body(op, got, _MAX_TAGS_BODY)
                url = self._next_page(op, got, url)
            page = load_json_object(body, where=op.where).get("tags")
            if page is None:
                page = []
            if not isinstance(page, list) or not all(isinstance(t, str) for t in page):
                raise MalformedContent(f"{op.where}.tags: expected a list of strings")
            tags.extend(page)
            if len(tags) > _MAX_TAGS:
                raise SizeLimitExceeded(op.where, _MAX_TAGS, len(tags))
        return tags

    def referrers(self, ref: ImageRef, artifact_type: str | None = None) -> list[Descriptor]:
        """The manifests whose ``subject`` is ``ref``'s manifest (OCI 1.1), optionally of one artifact type.

        Uses the referrers API; when the registry answers 404 there, reads the
        fallback tag index ``sha256-<hex>`` instead (no such tag: no referrers).
        In the fallback index an entry without an artifact type, or typed as the
        empty config (as cosign 3 writes them), is resolved by fetching its
        manifest, so filtering by artifact type does not miss them.
        """
        digest = ref.digest or self.resolve(ref).digest
        subject = ref.with_digest(digest)
        op = self._operation(f"referrers of {subject}")
        url: httpx.URL | None = self._url(subject, f"/referrers/{digest}")
        if artifact_type is not None:
            assert url is not None
            url = url.copy_merge_params({"artifactType": artifact_type})
        found: list[Descriptor] = []
        pages = 0
        while url is not None:
            pages += 1
            if pages > _MAX_PAGES:
                raise RegistryError(f"{op.where}: more than {_MAX_PAGES} pages of referrers")
            with closing(
                self._send(op, "GET", url, subject, "pull", headers={"Accept": media.OCI_INDEX})
            ) as got:
                if got.status_code == 404 and pages == 1:
                    return self._fallback_referrers(subject, digest, artifact_type)
                if got.status_code != 200:
                    self._fail(op, got, "referrers", str(subject))
                body = self._read_body(op, got, self.max_manifest_bytes)
                content_type = got.headers.get("content-type")
                url = self._next_page(op, got, url)
            index = parse_manifest(body, where=op.where, content_type=content_type)
            if not isinstance(index, ImageIndex):
                raise MalformedContent(
                    f"{op.where}: the referrers API answered with a manifest, not an index"
                )
            found.extend(index.manifests)
        return [d for d in found if artifact_type is None or d.artifact_type == artifact_type]

    def _fallback_referrers(
        self, subject: ImageRef, digest: str, artifact_type: str | None
    ) -> list[Descriptor]:
        tag_ref = ImageRef(subject.registry, subject.repository, tag=referrers_tag(digest))
        try:
            index = self.manifest(tag_ref)
        except ContentNotFound:
            return []
        if not isinstance(index, ImageIndex):
            raise MalformedContent(f"referrers tag {tag_ref}: expected an index, got {index.media_type}")
        result: list[Descriptor] = []
        inspected = 0
        for listed in index.manifests:
            entry = listed
            if artifact_type is not None and entry.artifact_type in (None, media.OCI_EMPTY):
                inspected += 1
                if inspected > _MAX_MEMBERS_INSPECTED:
                    raise SizeLimitExceeded(f"referrers tag {tag_ref}", _MAX_MEMBERS_INSPECTED, inspected)
                member = self.manifest(subject.with_digest(entry.digest), expected=entry)
                kind = member.artifact_type
                if kind is None and isinstance(member, ImageManifest):
                    kind = member.config.media_type
                entry = replace(
                    entry, artifact_type=kind, annotations=entry.annotations or member.annotations
                )
            if artifact_type is None or entry.artifact_type == artifact_type:
                result.append(entry)
        return result

    # -- writing -----------------------------------------------------------------------------------

    def push_blob(
        self, ref: ImageRef, data: bytes, media_type: str = "application/octet-stream"
    ) -> Descriptor:
        """Upload ``data`` to ``ref``'s repository (monolithic POST + PUT) unless it is there already."""
        descriptor = Descriptor(media_type, digest_of(data), len(data))
        if self.has_blob(ref, descriptor.digest, for_push=True):
            return descriptor
        op = self._operation(f"upload of blob {descriptor.digest} to {ref.name}", self.blob_timeout)
        start = self._url(ref, "/blobs/uploads/")
        with closing(self._send(op, "POST", start, ref, "pull,push", content=b"")) as got:
            if got.status_code != 202:
                self._fail(op, got, "repository", ref.name)
            location = got.headers.get("location")
        if not location:
            raise RegistryError(f"{op.where}: the registry started an upload without a Location")
        try:
            target = start.join(location).copy_merge_params({"digest": descriptor.digest})
        except httpx.InvalidURL as exc:
            raise RegistryError(f"{op.where}: invalid upload Location: {exc}") from None
        headers = {"Content-Type": "application/octet-stream"}
        with closing(self._send(op, "PUT", target, ref, "pull,push", headers=headers, content=data)) as got:
            if got.status_code != 201:
                self._fail(op, got, "upload", ref.name)
            stored = got.headers.get("docker-content-digest")
        if stored and stored != descriptor.digest:
            raise RegistryError(f"{op.where}: the registry stored it as {stored}")
        return descriptor

    def push_manifest(self, ref: ImageRef, raw: bytes, media_type: str) -> str:
        """Store a manifest or index under ``ref``'s tag (or digest); returns its digest."""
        digest = digest_of(raw)
        where = f"manifest push to {ref}"
        if ref.digest is not None and ref.digest != digest:
            raise DigestMismatch(where, ref.digest, digest)
        parse_manifest(raw, where=where, content_type=media_type)
        op = self._operation(where)
        url = self._url(ref, f"/manifests/{ref.reference}")
        headers = {"Content-Type": media_type}
        with closing(self._send(op, "PUT", url, ref, "pull,push", headers=headers, content=raw)) as got:
            if got.status_code != 201:
                self._fail(op, got, "repository", ref.name)
            stored = got.headers.get("docker-content-digest")
        if stored and stored != digest:
            raise RegistryError(f"{where}: the registry stored it as {stored}, expected {digest}")
        return digest

    def copy(
        self,
        source: ImageSource,
        source_ref: ImageRef,
        dest_ref: ImageRef,
        *,
        max_blob_bytes: int = DEFAULT_MAX_COPY_BLOB,
    ) -> Descriptor:
        """Copy an image or index with everything it references from ``source`` to ``dest_ref``.

        The top manifest is stored under ``dest_ref``'s tag (or its digest when it has no tag).
        """
        top = source.manifest(source_ref)
        if dest_ref.digest is not None and dest_ref.digest != top.digest:
            raise DigestMismatch(f"copy of {source_ref} to {dest_ref}", dest_ref.digest, top.digest)
        self._copy_children(source, source_ref, top, dest_ref, max_blob_bytes, depth=0)
        target = (
            ImageRef(dest_ref.registry, dest_ref.repository, tag=dest_ref.tag)
            if dest_ref.tag is not None
            else dest_ref.with_digest(top.digest)
        )
        self.push_manifest(target, top.raw, top.media_type)
        return top.descriptor

    def _copy_children(
        self,
        source: ImageSource,
        source_ref: ImageRef,
        found: ImageManifest | ImageIndex,
        dest_ref: ImageRef,
        max_blob_bytes: int,
        depth: int,
    ) -> None:
        if depth > 4:
            raise MalformedContent(f"copy of {source_ref}: indexes nested too deep")
        if isinstance(found, ImageManifest):
            for blob in (found.config, *found.layers):
                if not self.has_blob(dest_ref, blob.digest, for_push=True):
                    data = source.read_blob(source_ref, blob, max_blob_bytes)
                    self.push_blob(dest_ref, data, blob.media_type)
            return
        for entry in found.manifests:
            child = source.manifest(source_ref.with_digest(entry.digest), expected=entry)
            self._copy_children(source, source_ref, child, dest_ref, max_blob_bytes, depth + 1)
            by_digest = ImageRef(dest_ref.registry, dest_ref.repository, digest=child.digest)
            self.push_manifest(by_digest, child.raw, child.media_type)

    # -- HTTP ------------------------------------------------------------------------------------

    def _operation(self, where: str, budget: float | None = None) -> _Operation:
        return _Operation(where, budget or self.timeout, self.timeout, self._clock)

    def _is_plain(self, netloc: str) -> bool:
        host = netloc.rsplit(":", 1)[0] if not netloc.endswith("]") else netloc
        return registry_key(netloc) in self._plain or registry_key(host) in self._plain

    def _url(self, ref: ImageRef, suffix: str) -> httpx.URL:
        scheme = "http" if self._is_plain(ref.endpoint) else "https"
        return httpx.URL(f"{scheme}://{ref.endpoint}/v2/{ref.repository}{suffix}")

    def _send(
        self,
        op: _Operation,
        method: str,
        url: httpx.URL,
        ref: ImageRef,
        actions: str,
        *,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        follow_redirects: bool = False,
    ) -> httpx.Response:
        """Send with the registry's auth, answering one 401 challenge; the response is open (streamed)."""
        scope = f"repository:{ref.repository}:{actions}"
        # Credentials go only to the registry itself, never to an upload or redirect host.
        own_host = _same_origin(url, httpx.URL(f"{url.scheme}://{ref.endpoint}/"))
        fresh = False
        for attempt in range(2):
            sent = dict(headers or {})
            if own_host:
                authorization = self._authorization(op, ref, scope, fresh=fresh)
                if authorization:
                    sent["Authorization"] = authorization
            response = self._exchange(op, method, url, headers=sent, content=content, follow=follow_redirects)
            if response.status_code != 401 or attempt == 1 or not own_host:
                return response
            challenge = parse_challenge(response.headers.get("www-authenticate", ""))
            response.close()
            if challenge is None or challenge.scheme not in ("basic", "bearer"):
                raise RegistryAuthError(f"{op.where}: HTTP 401 without a Basic or Bearer challenge")
            if challenge.scheme == "bearer":
                if not challenge.realm:
                    raise RegistryAuthError(f"{op.where}: Bearer challenge without a realm")
                scope = challenge.params.get("scope") or scope
            with self._lock:
                self._hosts[ref.endpoint] = _HostAuth(
                    challenge.scheme, challenge.realm or "", challenge.params.get("service", "")
                )
            fresh = True
        raise AssertionError("unreachable")  # pragma: no cover

    def _exchange(
        self,
        op: _Operation,
        method: str,
        url: httpx.URL,
        *,
        headers: dict[str, str],
        content: bytes | None,
        follow: bool,
        data: dict[str, str] | None = None,
    ) -> httpx.Response:
        try:
            request = self._http.build_request(
                method, url, headers=headers, content=content, data=data, timeout=op.timeout()
            )
            return self._http.send(request, stream=True, follow_redirects=follow)
        except httpx.TimeoutException:
            raise RegistryTimeout(
                f"{op.where}: {url.host} did not answer within {self.timeout:g} s"
            ) from None
        except (httpx.TransportError, httpx.TooManyRedirects, httpx.InvalidURL) as exc:
            raise RegistryError(f"{op.where}: {url.host}: {type(exc).__name__}: {exc}"[:500]) from None

    def _authorization(self, op: _Operation, ref: ImageRef, scope: str, *, fresh: bool) -> str | None:
        with self._lock:
            host = self._hosts.get(ref.endpoint)
        if host is None:
            return None
        auth = self.credentials.lookup(ref.registry)
        if host.scheme == "basic":
            if auth is None or not auth.has_basic:
                raise RegistryAuthError(
                    f"{op.where}: {ref.registry} asks for a password and gate has none for it"
                )
            secret = base64.b64encode(f"{auth.username}:{auth.password}".encode()).decode("ascii")
            return f"Basic {secret}"
        if auth is not None and auth.registry_token:
            return f"Bearer {auth.registry_token}"
        identity = (
            "" if auth is None else f"{auth.username or ''}\0{hash((auth.password, auth.identity_token))}"
        )
        key = (host.realm, host.service, scope, identity)
        token = None if fresh else self._tokens.get(key)
        if token is None:
            token, lifetime = self._fetch_token(op, host, scope, auth)
            self._tokens.put(key, token, lifetime)
        return f"Bearer {token}"

    def _fetch_token(
        self, op: _Operation, host: _HostAuth, scope: str, auth: RegistryAuth | None
    ) -> tuple[str, float]:
        try:
            realm = httpx.URL(host.realm)
        except httpx.InvalidURL:
            raise RegistryAuthError(f"{op.where}: invalid token realm {host.realm[:200]!r}") from None
        if realm.scheme not in ("https", "http") or (
            realm.scheme == "http" and not self._is_plain(_netloc(realm))
        ):
            raise RegistryAuthError(
                f"{op.where}: token realm {host.realm[:200]} is not HTTPS "
                "(list its host as a plain HTTP registry to allow it)"
            )
        params = {k: v for k, v in (("service", host.service), ("scope", scope)) if v}
        headers: dict[str, str] = {}
        if auth is not None and auth.identity_token:
            form = {"grant_type": "refresh_token", "refresh_token": auth.identity_token, "client_id": "gate"}
            got = self._exchange(
                op, "POST", realm, headers=headers, content=None, follow=False, data={**form, **params}
            )
        else:
            if auth is not None and auth.has_basic:
                secret = base64.b64encode(f"{auth.username}:{auth.password}".encode()).decode("ascii")
                headers["Authorization"] = f"Basic {secret}"
            got = self._exchange(
                op, "GET", realm.copy_merge_params(params), headers=headers, content=None, follow=False
            )
        with closing(got):
            if got.status_code in (401, 403):
                raise RegistryAuthError(
                    f"{op.where}: token service {realm.host} refused the credentials (HTTP {got.status_code})"
                )
            if got.status_code != 200:
                raise RegistryError(f"{op.where}: token service {realm.host} answered HTTP {got.status_code}")
            body = self._read_body(op, got, _MAX_TOKEN_BODY)
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise RegistryError(f"{op.where}: token service {realm.host} answered invalid JSON") from None
        token = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
        if not isinstance(token, str) or not token:
            raise RegistryError(f"{op.where}: token service {realm.host} answered without a token")
        if not is_bearer_token(token):
            # The token is a credential: its length is shown, never its characters.
            raise RegistryError(
                f"{op.where}: token service {realm.host} answered a token that is not an RFC 6750 "
                f"b64token: expected ASCII letters, digits, -._~+/ and a trailing =, "
                f"got {len(token)} characters with others among them"
            )
        return token, token_lifetime(doc.get("expires_in"))

    def _chunks(self, op: _Operation, response: httpx.Response) -> Iterator[bytes]:
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise RegistryError(
                f"{op.where}: answered with Content-Encoding {encoding[:40]} although identity was asked"
            )
        try:
            for chunk in response.iter_raw():
                op.remaining()
                yield chunk
        except httpx.TimeoutException:
            raise RegistryTimeout(f"{op.where}: the body stalled for {self.timeout:g} s") from None
        except httpx.TransportError as exc:
            raise RegistryError(
                f"{op.where}: the body broke off: {type(exc).__name__}: {exc}"[:500]
            ) from None

    def _read_body(self, op: _Operation, response: httpx.Response, cap: int) -> bytes:
        length = _content_length(op, response)
        if length is not None and length > cap:
            raise SizeLimitExceeded(op.where, cap, length, at_least=False)
        body = bytearray()
        for chunk in self._chunks(op, response):
            body += chunk
            if len(body) > cap:
                raise SizeLimitExceeded(op.where, cap, len(body))
        return bytes(body)

    def _next_page(self, op: _Operation, response: httpx.Response, url: httpx.URL) -> httpx.URL | None:
        link = response.links.get("next", {}).get("url")
        if not link:
            return None
        try:
            following = url.join(link)
        except httpx.InvalidURL:
            raise RegistryError(f"{op.where}: invalid Link header") from None
        if not _same_origin(following, url):
            raise RegistryError(f"{op.where}: the next page is on another host ({following.host})")
        return following

    def _fail(self, op: _Operation, response: httpx.Response, what: str, key: str) -> None:
        """Raise the error that an unexpected status means."""
        status = response.status_code
        try:
            detail = _registry_message(self._read_body(op, response, _MAX_ERROR_BODY))
        except (SizeLimitExceeded, RegistryError):
            detail = ""
        suffix = f" ({detail})" if detail else ""
        if status == 404:
            raise ContentNotFound(what, f"{key}{suffix}")
        if status in (401, 403):
            raise RegistryAuthError(f"{op.where}: access denied (HTTP {status}){suffix}")
        if status == 429 or status >= 500:
            raise RegistryError(f"{op.where}: registry answered HTTP {status}{suffix}")
        if 400 <= status < 500:
            raise RegistryRejected(f"{op.where}: registry refused the request (HTTP {status}){suffix}")
        raise RegistryError(f"{op.where}: unexpected HTTP {status}{suffix}")
