"""Image signature verification: warm-cache lookups, cold verifications from a loopback registry,
and request coalescing under concurrency.

Starts Debian's ``docker-registry`` on loopback, pushes ``--images`` small images and signs each
with gate (``cosign sign --key`` format), then prints:

* the registry floor: the same HTTP requests a cold verification makes (resolve, signature
  manifest, signature blob, referrers tag), sent with a bare httpx client;
* cold verification (empty cache, a key-signed image by tag): p50/p95 and the ratio to the floor;
* a warm-cache lookup: mean per call;
* 8 threads verifying one uncached image at once: registry requests made, against one
  verification's requests.

Targets (issue "Signatures and attestations"): warm <= 0.1 ms; cold p50 <= 20 ms; 8 concurrent
requests cause exactly one fetch sequence.

    python benchmarks/verify.py [--images 40] [--warm 20000]
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import statistics
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gate.oci import ImageRef, OciLayout, RegistryClient, cosign_tag, referrers_tag
from gate.publish import sign_image
from gate.signatures import SignaturePolicy, TrustRoot, load_private_key, load_public_key
from gate.signatures._image import ImagePolicy
from gate.verification import ImageVerifierService, policy_key
from tests.registry_support import start_registry


class CountingTransport(httpx.HTTPTransport):
    """Counts the HTTP requests a client sends (thread-safe)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.count += 1
        return super().handle_request(request)


def _image(layout: OciLayout, index: int) -> str:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        data = f"image {index}\n".encode()
        info = tarfile.TarInfo(f"srv/{index}.txt")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    config = json.dumps({"os": "linux", "architecture": "amd64", "index": index}).encode()
    return layout.write_image(config, [gzip.compress(buffer.getvalue(), mtime=0)], tag=f"v{index}").digest


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--warm", type=int, default=20_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="gate-verify-bench-") as tmp:
        server = start_registry("plain", Path(tmp) / "registry")
        try:
            return _run(server.host, Path(tmp), args.images, args.warm)
        finally:
            server.stop()


def _run(host: str, tmp: Path, images: int, warm: int) -> int:
    private = ec.generate_private_key(ec.SECP256R1())
    key = load_private_key(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    public = load_public_key(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    layout = OciLayout.create(tmp / "layout")
    pusher = RegistryClient(plain_http_hosts=[host], timeout=10.0)
    refs: list[tuple[ImageRef, str]] = []
    for index in range(images + 1):
        digest = _image(layout, index)
        ref = ImageRef.parse(f"{host}/bench/app:v{index}")
        pusher.copy(layout, ImageRef.parse(f"local/app:v{index}"), ref)
        sign_image(pusher, ref, digest, key)
        refs.append((ref, digest))
    policy = ImagePolicy(signers=SignaturePolicy(keys=(public,)))
    pkey = policy_key("bench", public.fingerprint)

    # The floor: the requests a cold verification sends, from a bare keep-alive httpx client.
    # identity: docker-registry gzips responses for clients that accept it, which costs tens of
    # milliseconds per response on loopback; gate's client asks for identity too.
    bare = httpx.Client(base_url=f"http://{host}", trust_env=False, headers={"Accept-Encoding": "identity"})
    accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"
    floor: list[float] = []
    for ref, digest in refs[:images]:
        started = time.perf_counter()
        bare.head(f"/v2/{ref.repository}/manifests/{ref.tag}", headers={"Accept": accept})
        sig = bare.get(
            f"/v2/{ref.repository}/manifests/{cosign_tag(digest, 'sig')}", headers={"Accept": accept}
        )
        layer = sig.json()["layers"][0]["digest"]
        bare.get(f"/v2/{ref.repository}/blobs/{layer}")
        bare.get(f"/v2/{ref.repository}/manifests/{referrers_tag(digest)}", headers={"Accept": accept})
        floor.append((time.perf_counter() - started) * 1000)

    # Cold: a new cache per image, one shared client (connections kept, as in gate serve).
    transport = CountingTransport()
    client = RegistryClient(plain_http_hosts=[host], timeout=10.0, transport=transport)
    cold: list[float] = []
    for ref, _ in refs[:images]:
        service = ImageVerifierService(client, TrustRoot())
        started = time.perf_counter()
        result = service.verify(ref, policy, pkey)
        cold.append((time.perf_counter() - started) * 1000)
        if not result.verified:
            print(f"verification failed unexpectedly: {result.reason}", file=sys.stderr)
            return 1
    per_verification = transport.count / images

    # Warm: the cached verdict for a digest reference.
    service = ImageVerifierService(client, TrustRoot())
    pinned = refs[0][0].with_digest(refs[0][1])
    service.verify(pinned, policy, pkey)
    started = time.perf_counter()
    for _ in range(warm):
        service.verify(pinned, policy, pkey)
    warm_ms = (time.perf_counter() - started) * 1000 / warm

    # 8 concurrent requests for one uncached image.
    ref, digest = refs[images]
    service = ImageVerifierService(client, TrustRoot())
    before = transport.count
    barrier = threading.Barrier(8)
    verdicts: list[bool] = []

    def ask() -> None:
        barrier.wait()
        verdicts.append(service.verify(ref.with_digest(digest), policy, pkey).verified)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    concurrent_requests = transport.count - before
    stats = service.stats().results

    floor_p50 = statistics.median(floor)
    cold_p50 = statistics.median(cold)
    print(f"date: {time.strftime('%Y-%m-%d')}  images: {images}  registry: docker-registry on {host}")
    floor_p95 = _percentile(floor, 0.95)
    print(f"registry floor (same requests, bare httpx): p50 {floor_p50:.2f} ms  p95 {floor_p95:.2f} ms")
    print(
        f"cold verification (resolve tag, discover, fetch, ECDSA): p50 {cold_p50:.2f} ms  "
        f"p95 {_percentile(cold, 0.95):.2f} ms  ratio to floor {cold_p50 / floor_p50:.2f}x  "
        f"[target p50 <= 20 ms]  requests per verification: {per_verification:.1f}"
    )
    print(f"warm-cache lookup: {warm_ms * 1000:.2f} us per call  [target <= 100 us]")
    print(
        f"8 concurrent requests for one image: verdicts {sum(verdicts)}/8 verified, "
        f"{concurrent_requests} registry requests (one verification digest-pinned makes "
        f"{per_verification - 1:.0f}), computations {stats.misses}, waited {stats.shared}  "
        f"[target: exactly one fetch sequence]"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
