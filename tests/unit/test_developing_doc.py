"""docs/developing.md's map of plugins/module_utils names every file there once, in an order where each file imports
only files listed before it (foundation, pure logic, BullMQ, domain cores, composites)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
UTILS = REPO / "plugins" / "module_utils"
DOC = (REPO / "docs" / "developing.md").read_text()


def the_map():
    start = DOC.index("### The rooms of `plugins/module_utils`")
    section = DOC[start:DOC.index("### The core shape", start)]
    # Each file's own entry: its first mention (a composite's line names the cores it builds on after it).
    order = []
    for name in re.findall(r"`(_\w+)\.py`", section):
        if name not in order:
            order.append(name)
    return order


def imports(path):
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and "module_utils" in node.module:
            last = node.module.rpartition(".")[2]
            names |= {last} if last.startswith("_") else {alias.name for alias in node.names}
    return {name for name in names if name.startswith("_")}


def test_every_module_utils_file_is_in_the_map_after_what_it_imports():
    order = the_map()
    files = sorted(path.stem for path in UTILS.glob("_*.py"))
    assert sorted(set(files) - set(order)) == [], "files missing from the module_utils map of docs/developing.md"
    assert sorted(set(order) - set(files)) == [], "the map names files that are gone"
    later = []
    for name in files:
        position = order.index(name)
        later += ["{0} imports {1}".format(name, used) for used in sorted(imports(UTILS / (name + ".py")))
                  if used in order and order.index(used) > position]
    assert later == [], "imports of a file listed later in the map:\n" + "\n".join(later)
