"""`pip install .` installs every package of the source tree (a package missing from
pyproject's list would be absent from a wheel, though an editable install still finds it)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: every folder of edgeagent/ with an __init__.py
NAMES = ["edgeagent"] + sorted(
    "edgeagent." + init.parent.relative_to(ROOT / "edgeagent").as_posix().replace("/", ".")
    for init in (ROOT / "edgeagent").rglob("__init__.py")
    if init.parent != ROOT / "edgeagent"
)


def test_import_names_from_this_environment():
    import importlib

    for name in NAMES:
        assert importlib.import_module(name).__file__


def test_pip_install_dot_gives_the_import_names(tmp_path):
    # Install from a copy of the tracked files, so the build leaves nothing in the checkout.
    source = tmp_path / "src"
    files = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    for name in files:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    code = (
        "import importlib, sys\n"
        f"for n in {NAMES!r}:\n"
        "    m = importlib.import_module(n)\n"
        f"    assert m.__file__.startswith({str(target)!r}), (n, m.__file__)\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={"PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
    )
    assert out.stdout.strip() == "ok", out.stderr
