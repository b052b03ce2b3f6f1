"""notifications is a leaf: it may import accounts (the bottom layer), never the apps that
call it (issue 19's layering rule)."""

import ast
from pathlib import Path

import notifications

CALLERS = ("spaces", "voicetweets", "moderation")


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    return modules


def test_the_notifications_app_imports_none_of_the_apps_above_it():
    root = Path(notifications.__file__).parent
    files = [p for p in root.rglob("*.py") if "migrations" not in p.parts]
    assert len(files) > 5
    offending = {
        f"{path.relative_to(root)}: {module}"
        for path in files
        for module in _imported_modules(path)
        if module.split(".")[0] in CALLERS
    }
    assert offending == set()
