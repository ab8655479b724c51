"""A local stand-in for the few Kubernetes API server endpoints gate calls.

It answers with the API server's response shapes: TokenReview (201 with the
review's status), and for Secrets, ServiceAccounts, Roles and RoleBindings
GET 200/404, POST 201/409 AlreadyExists, PUT 200/409 Conflict on a stale
resourceVersion, DELETE 200 (a Status)/404, and 403 Forbidden on request.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from gate.auth import KubernetesTokenReviewer

# The bearer token the fake API server expects from gate itself.
SERVER_TOKEN = "gate-serviceaccount-token"
_OBJECT_PATH = re.compile(
    r"^/(?:api/v1|apis/rbac\.authorization\.k8s\.io/v1)/namespaces/(?P<ns>[^/]+)/"
    r"(?P<plural>secrets|serviceaccounts|roles|rolebindings)(?:/(?P<name>[^/?]+))?(?:\?.*)?$"
)
_GROUP = {
    "secrets": "",
    "serviceaccounts": "",
    "roles": "rbac.authorization.k8s.io",
    "rolebindings": "rbac.authorization.k8s.io",
}


@dataclass
class ReviewedToken:
    """A token the fake API server accepts, for whom and for which audiences."""

    username: str
    audiences: tuple[str, ...] = ("https://kubernetes.default.svc",)


@dataclass
class FakeApiServer:
    """State and fault switches of the fake API server."""

    tokens: dict[str, ReviewedToken] = field(default_factory=dict)
    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    # (HTTP method, plural) pairs answered 403 Forbidden.
    forbidden: set[tuple[str, str]] = field(default_factory=set)
    # PUTs still to answer with 409 Conflict (someone else updated the object first).
    stale_puts: int = 0
    # POSTs that find the object created by someone else just before (409 AlreadyExists).
    racing_creates: int = 0
    # Status code every TokenReview gets instead of an answer (0: answer normally).
    review_failure: int = 0
    url: str = ""
    _version: int = 100
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_version(self) -> str:
        self._version += 1
        return str(self._version)

    def reviews(self) -> int:
        return sum(1 for _, path in self.requests if path.endswith("/tokenreviews"))


def _status(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure" if code >= 400 else "Success",
        "message": message,
        "reason": reason,
        "details": details or {},
        "code": code,
    }


def _handler(state: FakeApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            parsed: dict[str, Any] = json.loads(self.rfile.read(length) or b"{}")
            return parsed

        def _authorized(self) -> bool:
            if self.headers.get("Authorization") != f"Bearer {SERVER_TOKEN}":
                self._send(401, _status(401, "Unauthorized", "Unauthorized"))
                return False
            return True

        def _handle(self, method: str) -> None:
            with state.lock:
                state.requests.append((method, self.path))
            if not self._authorized():
                return
            if self.path.startswith("/apis/authentication.k8s.io/v1/tokenreviews") and method == "POST":
                self._token_review()
                return
            match = _OBJECT_PATH.match(self.path)
            if match is None:
                self._send(404, _status(404, "NotFound", "the server could not find the requested resource"))
                return
            self._object(method, match["ns"], match["plural"], match["name"])

        def _token_review(self) -> None:
            review = self._body()
            if state.review_failure:
                code = state.review_failure
                self._send(code, _status(code, "InternalError", "etcdserver: request timed out"))
                return
            spec = review.get("spec") or {}
            wanted = list(spec.get("audiences") or [])
            known = state.tokens.get(spec.get("token", ""))
            status: dict[str, Any]
            if known is None:
                status = {
                    "user": {},
                    "error": "[invalid bearer token, square/go-jose: error in cryptographic primitive]",
                }
            elif wanted and not set(wanted) & set(known.audiences):
                status = {
                    "user": {},
                    "error": "[invalid bearer token, token audiences "
                    f"{json.dumps(list(known.audiences))} is invalid for the target audiences "
                    f"{json.dumps(wanted)}]",
                }
            else:
                namespace = known.username.split(":")[2] if known.username.count(":") >= 3 else ""
                status = {
                    "authenticated": True,
                    "user": {
                        "username": known.username,
                        "uid": str(uuid.uuid4()),
                        "groups": [
                            "system:serviceaccounts",
                            f"system:serviceaccounts:{namespace}",
                            "system:authenticated",
                        ],
                        "extra": {"authentication.kubernetes.io/credential-id": ["JTI=" + str(uuid.uuid4())]},
                    },
                    "audiences": [a for a in (wanted or known.audiences) if a in known.audiences],
                }
            self._send(
                201,
                {
                    "kind": "TokenReview",
                    "apiVersion": "authentication.k8s.io/v1",
                    "metadata": {"creationTimestamp": None},
                    "spec": spec,
                    "status": status,
                },
            )

        def _object(self, method: str, namespace: str, plural: str, name: str | None) -> None:
            if (method, plural) in state.forbidden:
                user = "system:serviceaccount:gate-system:gate"
                verb = {"GET": "get", "POST": "create", "PUT": "update", "DELETE": "delete"}[method]
                group = _GROUP[plural]
                self._send(
                    403,
                    _status(
                        403,
                        "Forbidden",
                        f'{plural} "{name or ""}" is forbidden: User "{user}" cannot {verb} resource '
                        f'"{plural}" in API group "{group}" in the namespace "{namespace}"',
                        {"name": name or "", "kind": plural},
                    ),
                )
                return
            with state.lock:
                if method == "GET" and name:
                    stored = state.objects.get((plural, namespace, name))
                    if stored is None:
                        self._send(
                            404,
                            _status(
                                404,
                                "NotFound",
                                f'{plural} "{name}" not found',
                                {"name": name, "kind": plural},
                            ),
                        )
                    else:
                        self._send(200, stored)
                    return
                if method == "POST" and not name:
                    body = self._body()
                    name = body["metadata"]["name"]
                    key = (plural, namespace, name)
                    if state.racing_creates:
                        state.racing_creates -= 1
                        state.objects[key] = self._stamp(copy.deepcopy(body), namespace)
                    if key in state.objects:
                        self._send(
                            409,
                            _status(
                                409,
                                "AlreadyExists",
                                f'{plural} "{name}" already exists',
                                {"name": name, "kind": plural},
                            ),
                        )
                        return
                    state.objects[key] = self._stamp(body, namespace)
                    self._send(201, state.objects[key])
                    return
                if method == "PUT" and name:
                    body = self._body()
                    key = (plural, namespace, name)
                    stored = state.objects.get(key)
                    if stored is None:
                        self._send(
                            404,
                            _status(
                                404,
                                "NotFound",
                                f'{plural} "{name}" not found',
                                {"name": name, "kind": plural},
                            ),
                        )
                        return
                    sent = body.get("metadata", {}).get("resourceVersion")
                    if state.stale_puts or sent != stored["metadata"]["resourceVersion"]:
                        if state.stale_puts:
                            state.stale_puts -= 1
                            stored["metadata"]["resourceVersion"] = state.next_version()
                        self._send(
                            409,
                            _status(
                                409,
                                "Conflict",
                                f'Operation cannot be fulfilled on {plural} "{name}": the object has been '
                                "modified; please apply your changes to the latest version and try again",
                                {"name": name, "kind": plural},
                            ),
                        )
                        return
                    body["metadata"]["resourceVersion"] = state.next_version()
                    state.objects[key] = body
                    self._send(200, body)
                    return
                if method == "DELETE" and name:
                    stored = state.objects.pop((plural, namespace, name), None)
                    if stored is None:
                        self._send(
                            404,
                            _status(
                                404,
                                "NotFound",
                                f'{plural} "{name}" not found',
                                {"name": name, "kind": plural},
                            ),
                        )
                    else:
                        details = {"name": name, "kind": plural, "uid": stored["metadata"]["uid"]}
                        self._send(200, _status(200, "", "", details))
                    return
            self._send(405, _status(405, "MethodNotAllowed", "the server does not allow this method"))

        def _stamp(self, body: dict[str, Any], namespace: str) -> dict[str, Any]:
            meta = body.setdefault("metadata", {})
            meta["namespace"] = namespace
            meta["uid"] = str(uuid.uuid4())
            meta["resourceVersion"] = state.next_version()
            meta["creationTimestamp"] = "2026-11-27T10:00:00Z"
            return body

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def do_PUT(self) -> None:
            self._handle("PUT")

        def do_DELETE(self) -> None:
            self._handle("DELETE")

    return Handler


@contextmanager
def fake_api_server() -> Iterator[FakeApiServer]:
    """Serve a :class:`FakeApiServer` on a loopback port for the duration of the block."""
    state = FakeApiServer()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def api_client(state: FakeApiServer) -> Any:
    """A ``kubernetes`` ApiClient pointed at the fake server with gate's bearer token."""
    from kubernetes.client import ApiClient, Configuration

    configuration = Configuration(host=state.url)
    configuration.api_key = {"BearerToken": SERVER_TOKEN}
    configuration.api_key_prefix = {"BearerToken": "Bearer"}
    return ApiClient(configuration)


def kubeconfig(state: FakeApiServer) -> str:
    """A kubeconfig document for the fake server (what ``kubernetes.kubeconfig`` points at)."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": state.url}}],
            "users": [{"name": "gate", "user": {"token": SERVER_TOKEN}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "gate"}}],
            "current-context": "fake",
        }
    )


class _TokenReviewAnswer:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def read(self, size: int) -> bytes:
        return self._data[:size]


class _TokenReviewApi:
    """Stands in for AuthenticationV1Api: answers every TokenReview with the same bytes."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def create_token_review(self, body: object, **kwargs: object) -> _TokenReviewAnswer:
        return _TokenReviewAnswer(self.data)


def token_reviewer_answering(data: bytes) -> KubernetesTokenReviewer:
    """A KubernetesTokenReviewer whose API server answers every TokenReview with ``data``."""
    reviewer = object.__new__(KubernetesTokenReviewer)
    reviewer._api = _TokenReviewApi(data)  # type: ignore[assignment]
    reviewer._timeout = 1.0
    return reviewer
