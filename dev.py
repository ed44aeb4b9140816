#!/usr/bin/env python3
"""Set up the hub's virtual environment when needed, then run a command in it.

    python3 dev.py serve [hub serve options]   start the hub on its embedded defaults
    python3 dev.py test [pytest options]       install what the tests need and run the suite
    python3 dev.py hub <command> ...           any other `hub` command

Only the standard library is used here, so a fresh machine with Python 3.11+ is enough.
The environment is reinstalled only when pyproject.toml changes, so a second run is quick.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("HUB_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")


def ensure_environment(extras: str) -> None:
    if not (BIN / "python").exists():
        print(f"creating the virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    fingerprint = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    stamp = VENV / f".installed-{extras or 'base'}"
    if stamp.exists() and stamp.read_text() == fingerprint:
        return
    target = f"{ROOT}[{extras}]" if extras else str(ROOT)
    print(f"installing {target} into {VENV}", flush=True)
    quiet = [] if os.environ.get("CI") else ["--quiet"]
    subprocess.run(
        [str(BIN / "python"), "-m", "pip", "install", *quiet, "--disable-pip-version-check", "-e", target],
        check=True,
    )
    stamp.write_text(fingerprint)


def main() -> int:
    command, *rest = sys.argv[1:] or ["serve"]
    if command == "test":
        ensure_environment("test")
        return subprocess.call([str(BIN / "python"), "-m", "pytest", *rest], cwd=ROOT)
    if command == "serve":
        ensure_environment("")
        return subprocess.call([str(BIN / "hub"), "serve", *rest], cwd=ROOT)
    if command == "hub":
        ensure_environment("")
        return subprocess.call([str(BIN / "hub"), *rest], cwd=ROOT)
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
