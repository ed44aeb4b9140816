"""The packages depend one way: hub ← channels ← crm ← {inbox, tickets, campaigns}. A package may
import anything of a package below it; of a package beside or above it, only its `events` (its
public contract). Every import in every module is read, those inside functions too."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYER = {"hub": 0, "channels": 1, "crm": 2, "inbox": 3, "tickets": 3, "campaigns": 3}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            # `from inbox import services` imports the module inbox.services
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def crossings() -> list[str]:
    wrong = []
    for package, layer in LAYER.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            for line, module in imported_modules(path):
                target = module.split(".")[0]
                if target not in LAYER or target == package or LAYER[target] < layer:
                    continue
                parts = module.split(".")
                if len(parts) >= 2 and parts[1] == "events":
                    continue
                if len(parts) == 1:
                    continue  # `from inbox import events` is read as inbox.events below
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return wrong


def test_packages_depend_only_downward_or_on_events() -> None:
    assert crossings() == []


def test_the_reader_sees_imports_inside_functions_too(tmp_path: Path) -> None:
    module = tmp_path / "sample.py"
    module.write_text("def later():\n    from campaigns import sending\n    import tickets.services\n")
    assert imported_modules(module) == [(2, "campaigns"), (2, "campaigns.sending"), (3, "tickets.services")]
