"""Imports run down the layers of README's Layout, never up or sideways.

The graph is computed from the code with `ast`: every `import` and `from ... import` in
`notifier/`, including those inside functions and `if TYPE_CHECKING:` blocks (a lazy or
type-only import still ties the two modules together). Each module belongs to one layer;
an edge from a lower layer to a higher one fails, and so does an edge between two layers
of one row (`auth` and `delivery` share a row: neither knows the other). A layer is free
inside itself: `wiring`, `protocol` and `base` are groups of small modules that import
each other. A new module must be given a layer here.
"""

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "notifier"

# Top to bottom: (layer, row, module prefixes). A module belongs to the first layer with a
# prefix matching its dotted name; a smaller row is higher.
LAYERS: list[tuple[str, int, tuple[str, ...]]] = [
    (
        "wiring",
        0,
        (
            "notifier.__main__",
            "notifier.cli",
            "notifier.client",
            "notifier.client_commands",
            "notifier.server",
            "notifier.app",
            "notifier.runtime",
            "notifier.migrate",
            # uvicorn plumbing the app hands to uvicorn: protocols, middleware, signals.
            "notifier.middleware",
            "notifier.shutdown",
            "notifier.gc_tuning",
            "notifier.http_protocol",
            "notifier.ws_protocol",
            "notifier.transport_limits",
        ),
    ),
    ("api", 1, ("notifier.api",)),
    ("auth", 2, ("notifier.auth",)),
    ("delivery", 2, ("notifier.delivery",)),
    # The wire models: built by api/ and the frame builders, never by the store.
    ("schemas", 3, ("notifier.schemas",)),
    ("db", 4, ("notifier.db",)),
    # The shared words of the wire: close codes and reasons, the error catalog.
    (
        "protocol",
        5,
        ("notifier.protocol", "notifier.closes", "notifier.errors", "notifier.scope_extensions"),
    ),
    ("base", 6, ("notifier.settings", "notifier.logs", "notifier.metrics", "notifier")),
]

# (importer, imported) pairs allowed against the layers, each with its reason. Keep it short.
ALLOWED: dict[tuple[str, str], str] = {}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def layer_of(module: str) -> tuple[int, str]:
    """(row, layer) of the layer `module` belongs to; row 0 is the top."""
    for name, rank, prefixes in LAYERS:
        for prefix in prefixes:
            if prefix == "notifier" and module != "notifier":
                continue
            if module == prefix or module.startswith(prefix + "."):
                return rank, name
    raise LookupError(f"{module} has no layer: add it to LAYERS in {Path(__file__).name}")


def imported_modules(path: Path, module: str) -> set[str]:
    """The `notifier` modules `path` imports (a `from pkg import name` counts `pkg.name`
    when that is a module, else `pkg`)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            for alias in node.names:
                candidate = f"{source}.{alias.name}"
                targets.add(candidate if is_module(candidate) else source)
    return {name for name in targets if name == "notifier" or name.startswith("notifier.")}


def is_module(dotted: str) -> bool:
    relative = Path(*dotted.split(".")[1:]) if "." in dotted else Path()
    return (PACKAGE_DIR / relative).with_suffix(".py").is_file() or (
        PACKAGE_DIR / relative / "__init__.py"
    ).is_file()


def import_edges() -> set[tuple[str, str]]:
    return set(EDGES)


def _import_edges() -> set[tuple[str, str]]:
    edges: set[tuple[str, str]] = set()
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        importer = module_name(path)
        edges.update((importer, target) for target in imported_modules(path, importer))
    return edges


def bad_edges(edges: set[tuple[str, str]]) -> list[str]:
    problems = []
    for importer, target in sorted(edges):
        (from_rank, from_layer), (to_rank, to_layer) = layer_of(importer), layer_of(target)
        if (importer, target) in ALLOWED:
            continue
        if to_rank < from_rank:
            problems.append(f"up: {importer} ({from_layer}) -> {target} ({to_layer})")
        elif to_rank == from_rank and to_layer != from_layer:
            problems.append(f"sideways: {importer} ({from_layer}) -> {target} ({to_layer})")
    return problems


# Parsed once, at collection; the tests below share it.
EDGES = frozenset(_import_edges())


def test_every_module_has_a_layer() -> None:
    unplaced = []
    for path in PACKAGE_DIR.rglob("*.py"):
        try:
            layer_of(module_name(path))
        except LookupError as exc:
            unplaced.append(str(exc))
    assert not unplaced, "\n".join(unplaced)


def test_imports_run_down_the_layers() -> None:
    problems = bad_edges(import_edges())
    assert not problems, "imports against the layers (README, Layout):\n" + "\n".join(problems)


def test_allow_list_entries_are_still_needed() -> None:
    edges = import_edges()
    stale = [f"{a} -> {b}" for a, b in ALLOWED if (a, b) not in edges]
    assert not stale, "remove from ALLOWED, the import is gone: " + ", ".join(stale)


@pytest.mark.parametrize(
    ("importer", "target", "expected"),
    [
        ("notifier.db.store", "notifier.schemas", "up:"),
        ("notifier.auth.sessions", "notifier.delivery.closes", "sideways:"),
        ("notifier.delivery.hub", "notifier.auth.tokens", "sideways:"),
        ("notifier.auth.deps", "notifier.runtime", "up:"),
        ("notifier.delivery.hub", "notifier.delivery.broker", None),
        ("notifier.api.ws", "notifier.settings", None),
        ("notifier.settings", "notifier.logs", None),
    ],
)
def test_the_checker_tells_up_from_down(importer: str, target: str, expected: str | None) -> None:
    """The check itself can fail: known-bad edges are reported, good ones are not."""
    problems = bad_edges({(importer, target)})
    if expected is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problems[0].startswith(expected)


def test_relative_and_lazy_imports_are_found() -> None:
    edges = import_edges()
    found = {target for importer, target in edges if importer == "notifier.cli"}
    # cli.py imports these inside its command functions only.
    assert {"notifier.server", "notifier.migrate", "notifier.settings"} <= found
