"""The package layout shows the data flow, and the code keeps to it: no stage imports a later stage
(bank -> indexing -> retrieval -> answering | grading), and no stage reads the Settings object (house style:
only entry points do).  Checked on the import statements themselves (ast), so a new module is covered."""

from __future__ import annotations

import ast
from pathlib import Path

COACH = Path(__file__).resolve().parents[1] / "coach"
STAGES = {"bank": 1, "indexing": 2, "retrieval": 3, "answering": 4, "grading": 4}
SHARED = {"types", "text", "embedders", "llm", "metrics", "logs"}  # below every stage


def imported_modules(path: Path) -> set[str]:
    """Absolute coach module names imported by one file: ``from ..text import x`` in coach/bank/a.py -> coach.text."""
    package = ["coach", *path.relative_to(COACH).parent.parts]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            out.add(".".join(base + ([node.module] if node.module else [])))
        elif isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
    return {m for m in out if m == "coach" or m.startswith("coach.")}


def test_imported_modules_resolves_relative_imports(tmp_path):
    assert imported_modules(COACH / "bank" / "chunking.py") >= {"coach.types", "coach.bank.glossary"}


def test_no_stage_imports_a_later_stage_or_the_settings():
    problems = []
    for stage, rank in STAGES.items():
        for path in sorted((COACH / stage).glob("*.py")):
            for module in imported_modules(path):
                parts = module.split(".")
                head = parts[1] if len(parts) > 1 else ""
                if head in SHARED or head == stage or STAGES.get(head, rank) < rank:
                    continue
                problems.append(f"{path.relative_to(COACH.parent)} imports {module}")
    assert not problems, "imports against the flow:\n" + "\n".join(problems)
