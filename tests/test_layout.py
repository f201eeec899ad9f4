"""The layout rules of docs/architecture.md, checked on the source.

GIVEN every Python module of the product, THEN shared/ imports nothing of
ours, the two services never import each other, nothing the product runs
(shared/, services/, infra/) imports the CLI, neither the services nor shared
import the Pulumi program; adapters are built only where parts are built
(``build_*`` functions, ``shared/factory.py``, ``cli/local_parts.py``); an
adapter lives beside its port; and only the embedded destination reads the
embedded queue (the CLI asks its ``Destination``).
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = ("shared", "services", "cli", "infra")


def imported(path: Path) -> set[str]:
    """Top two levels of every module ``path`` imports (e.g. ``services.query``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return {".".join(name.split(".")[:2]) for name in names if name.split(".")[0] in OURS}


def violations(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    sources = sorted((ROOT / folder).rglob("*.py"))
    assert sources, f"no sources under {folder}/"
    return [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sources
        for name in sorted(imported(path))
        if name.startswith(forbidden)
    ]


@pytest.mark.parametrize(
    ("folder", "forbidden"),
    [
        ("shared", ("services", "cli", "infra")),
        ("services/query", ("services.indexer", "cli", "infra")),
        ("services/indexer", ("services.query", "cli", "infra")),
        ("infra", ("cli",)),
    ],
)
def test_imports_point_the_documented_way(folder: str, forbidden: tuple[str, ...]) -> None:
    assert violations(folder, forbidden) == []


def test_the_check_sees_an_import_when_there_is_one() -> None:
    assert "cli.local_parts" in imported(ROOT / "cli" / "serve" / "server.py")
    assert "services.query" in imported(ROOT / "cli" / "serve" / "server.py")


# ---- nothing imports cli ------------------------------------------------------
# The exception, stated: bench/ and tests/ drive the CLI's own code as its
# users do (bench.retrieval_sets times ``rag eval``'s runner, bench.indexer
# sends what ``rag ingest`` sends); no artifact ships either of them.
CLI_CLIENTS = ("bench", "tests")


def test_only_the_clients_of_the_cli_import_it() -> None:
    importers = {
        path.relative_to(ROOT).parts[0]
        for path in ROOT.rglob("*.py")
        if ".venv" not in path.parts
        and path.relative_to(ROOT).parts[0] != "cli"
        and any(name == "cli" or name.startswith("cli.") for name in imported(path))
    }
    assert importers <= set(CLI_CLIENTS), importers


# ---- one Destination decides embedded vs stack ---------------------------------
# Only the embedded destination reads the embedded queue (and LocalParts, which
# builds it); every command asks its Destination instead (cli/destination/).
EMBEDDED_QUEUE_READERS = {"cli/local_parts.py", "cli/destination/embedded.py"}


def reads_embedded_queue(path: Path) -> list[int]:
    """Lines where ``path`` reads an ``embedded_queue`` attribute."""
    tree = ast.parse(path.read_text(), str(path))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr == "embedded_queue"
    ]


def test_only_the_embedded_destination_reads_the_embedded_queue() -> None:
    readers = [
        f"{path.relative_to(ROOT)}:{line}"
        for folder in ("cli", "services", "shared", "bench")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if str(path.relative_to(ROOT)) not in EMBEDDED_QUEUE_READERS
        for line in reads_embedded_queue(path)
    ]
    assert readers == []


def test_the_destination_check_sees_a_read_when_there_is_one(tmp_path: Path) -> None:
    source = tmp_path / "x.py"
    source.write_text("def f(parts):\n    if parts.embedded_queue:\n        return 1\n")
    assert reads_embedded_queue(source) == [2]
    assert reads_embedded_queue(ROOT / "cli" / "destination" / "embedded.py") != []


# ---- adapters are built only where parts are built ----------------------------
# An adapter module: one of these packages or modules, less the helpers below.
ADAPTER_HOMES = {
    "shared/ports.py": "shared/adapters",
    "services/query/state/ports.py": "services/query/state",
    "services/query/transports/ports.py": "services/query/transports",
}
ADAPTER_MODULES = (
    "shared.adapters.",
    "services.query.state.conversation",
    "services.query.state.dynamodb",
    "services.query.state.registry",
    "services.query.transports.apigw",
    "services.query.transports.lambda_invoker",
)
# Modules in the adapter folders that are not adapters of a port: shared code
# of several adapters of one backend, pure request builders, scripts. Kept
# apart by name so that "every other module there is an adapter" can be checked.
HELPERS = {
    "shared/adapters/helpers/process_identity.py",
    "shared/adapters/helpers/stop_sequences.py",
    "shared/adapters/aws/client.py",
    "shared/adapters/aws/remote_chat.py",
    "shared/adapters/aws/remote_embedding.py",
    "shared/adapters/aws/secrets.py",
    "shared/adapters/sqlite/common.py",
    "shared/adapters/opensearch/requests.py",
    "shared/adapters/local_models/gguf_copy.py",
    "shared/adapters/local_models/make_copy.py",
}
BUILDERS = {"shared/factory.py", "cli/local_parts.py"}


def _module(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def _is_adapter(module: str) -> bool:
    path = module.replace(".", "/") + ".py"
    return module.startswith(ADAPTER_MODULES) and path not in HELPERS


def adapter_builds(path: Path) -> list[tuple[int, str, str | None]]:
    """(line, what, enclosing function) for each call that makes an adapter:
    an adapter class called, or a function of an adapter module
    (``store.from_settings(...)``)."""
    tree = ast.parse(path.read_text(), str(path))
    classes: dict[str, str] = {}
    modules: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                local, full = alias.asname or alias.name, f"{node.module}.{alias.name}"
                if _is_adapter(node.module) and alias.name[:1].isupper():
                    classes[local] = full
                elif _is_adapter(full) and (ROOT / (full.replace(".", "/") + ".py")).is_file():
                    modules[local] = full
    found: list[tuple[int, str, str | None]] = []

    def visit(node: ast.AST, function: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            inner = function
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                inner = child.name
            if isinstance(child, ast.Call):
                func = child.func
                if isinstance(func, ast.Name) and func.id in classes:
                    found.append((child.lineno, classes[func.id], inner))
                elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                    owner = modules.get(func.value.id) or classes.get(func.value.id)
                    if owner is not None:
                        found.append((child.lineno, f"{owner}.{func.attr}", inner))
            visit(child, inner)

    visit(tree, None)
    return found


def test_adapters_are_built_only_where_parts_are_built() -> None:
    outside = [
        f"{path.relative_to(ROOT)}:{line} builds {what} in {function or 'module scope'}"
        for folder in ("shared", "services", "cli")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if not _is_adapter(_module(path)) and str(path.relative_to(ROOT)) not in BUILDERS | HELPERS
        for line, what, function in adapter_builds(path)
        if not (function or "").startswith("build_")
    ]
    assert outside == []


def test_the_build_check_sees_a_build_when_there_is_one(tmp_path: Path) -> None:
    source = tmp_path / "x.py"
    source.write_text(
        "from shared.adapters.sqlite import store\n"
        "from shared.adapters.aws.sqs import SqsQueue\n"
        "def run(s):\n    return store.from_settings(s), SqsQueue(s)\n"
        "def build_x(s):\n    return SqsQueue(s)\n"
    )
    assert adapter_builds(source) == [
        (4, "shared.adapters.sqlite.store.from_settings", "run"),
        (4, "shared.adapters.aws.sqs.SqsQueue", "run"),
        (6, "shared.adapters.aws.sqs.SqsQueue", "build_x"),
    ]


# ---- an adapter lives beside its port -----------------------------------------


@cache
def ports() -> dict[str, tuple[frozenset[str], str]]:
    """Each port (a Protocol with methods): its method names and its adapters' folder."""
    found: dict[str, tuple[frozenset[str], str]] = {}
    for port_file, home in ADAPTER_HOMES.items():
        for node in ast.parse((ROOT / port_file).read_text()).body:
            if isinstance(node, ast.ClassDef) and _is_protocol(node):
                methods = _methods(node)
                if methods:
                    found[node.name] = (methods, home)
    return found


def _is_protocol(node: ast.ClassDef) -> bool:
    return any(isinstance(base, ast.Name) and base.id == "Protocol" for base in node.bases)


def _methods(node: ast.ClassDef) -> frozenset[str]:
    return frozenset(
        item.name for item in node.body if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
    )


def _classes(path: Path) -> list[ast.ClassDef]:
    tree = ast.parse(path.read_text(), str(path))
    return [node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]


def _bases(node: ast.ClassDef) -> list[str]:
    return [ast.unparse(base).rpartition(".")[2] for base in node.bases]


@cache
def _inherited() -> dict[str, frozenset[str]]:
    """Methods of the adapters' shared base classes (``RemoteChatModel``...),
    which their subclasses (``BedrockChatModel``...) inherit."""
    return {
        node.name: _methods(node)
        for path in sorted(ROOT.glob("shared/adapters/**/*.py"))
        for node in _classes(path)
    }


def implementations(path: Path) -> list[tuple[str, str, ast.ClassDef]]:
    """(class, port) for each class in ``path`` with every method of a port."""
    inherited = _inherited()
    found = []
    for node in _classes(path):
        if _is_protocol(node):
            continue
        methods = _methods(node).union(*(inherited.get(b, frozenset()) for b in _bases(node)))
        found += [
            (node.name, port, node) for port, (wanted, _) in ports().items() if wanted <= methods
        ]
    return found


def test_every_module_in_an_adapter_folder_is_an_adapter_of_a_port_there_or_a_helper() -> None:
    strays = []
    for path in sorted(ROOT.glob("shared/adapters/**/*.py")) + [
        ROOT / (module.replace(".", "/") + ".py") for module in ADAPTER_MODULES[1:]
    ]:
        relative = str(path.relative_to(ROOT))
        if path.name == "__init__.py" or relative in HELPERS:
            continue
        homes = {ports()[port][1] for _, port, _ in implementations(path)}
        if not any(relative.startswith(home) for home in homes):
            strays.append(relative)
    assert strays == []


def _wraps(node: ast.ClassDef, port: str) -> bool:
    """The class takes another implementation of ``port`` (a decorator: batching,
    caching, warming), so it is not an adapter of an outside system."""
    for item in node.body:
        if isinstance(item, ast.FunctionDef) and item.name == "__init__":
            return any(
                arg.annotation is not None and ast.unparse(arg.annotation) == port
                for arg in item.args.args
            )
    return False


# A sink is the end of a transport (a WebSocket, API Gateway's connection,
# the terminal), so it lives with its transport: the one port whose
# implementations are not beside it.
TRANSPORT_ENDS = {"ConnectionSink", "DeadLetters"}


def test_a_port_implemented_away_from_its_adapters_only_wraps_another() -> None:
    away = [
        f"{path.relative_to(ROOT)}: {name} implements {port}"
        for folder in ("shared", "services", "cli")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for name, port, node in implementations(path)
        if port not in TRANSPORT_ENDS
        and not str(path.relative_to(ROOT)).startswith(ports()[port][1])
        and not _wraps(node, port)
    ]
    assert away == []


# ---- settings are read in shared/settings.py, the environment nowhere else ------
# The stated exceptions of docs/architecture.md, each with the variables it reads.
ENVIRONMENT_READERS = {
    "services/query/transports/authorizer.py": "RAG_AUTH__* (its artifact has no pydantic)",
    "shared/adapters/local_models/gguf_copy.py": "RAG_MODEL_CACHE (scripts/bootstrap too)",
    "cli/main.py": "RAG_DEBUG (before settings load)",
    "services/indexer/lambda_handler.py": "AWS_LAMBDA_FUNCTION_NAME (Lambda's own)",
    "cli/eval/evalsets.py": "XDG_CACHE_HOME (where the eval cache goes)",
}


def reads_environment(path: Path) -> list[int]:
    """Lines where ``path`` reads ``os.environ`` or ``os.getenv``."""
    return sorted(
        node.lineno
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.Attribute)
        and node.attr in ("environ", "getenv")
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
    )


def test_the_environment_is_read_only_where_the_architecture_says() -> None:
    readers = {
        str(path.relative_to(ROOT))
        for folder in ("shared", "services", "cli")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if reads_environment(path)
    }
    assert readers == set(ENVIRONMENT_READERS)


def test_the_environment_check_sees_a_read_when_there_is_one(tmp_path: Path) -> None:
    source = tmp_path / "x.py"
    source.write_text("import os\n\nURL = os.environ.get('X')\nY = os.getenv('Y')\n")
    assert reads_environment(source) == [3, 4]
