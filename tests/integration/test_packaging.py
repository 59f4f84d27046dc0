"""The installed product is one import package, ``htap_sync``, whose CLI runs from a wheel."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel ``pip install .`` would install, built offline with the test venv's setuptools."""
    out = tmp_path_factory.mktemp("wheel")
    # Built from a copy: setuptools' build/ directory keeps stale modules between builds.
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("common", "producer", "worker", "simulator", "src"):
        shutil.copytree(ROOT / name, source / name, symlinks=True, ignore=IGNORED)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(out),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (found,) = out.glob("taurus_htap_sync-*.whl")
    return found


def test_wheel_holds_one_top_level_name(wheel: Path) -> None:
    """Only ``htap_sync`` and its dist-info: no generic ``common``/``worker`` in site-packages."""
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"htap_sync"}
    for part in ("common/settings.py", "producer/samples/demo.csv", "worker/tasks.py"):
        assert f"htap_sync/{part}" in names
    assert "htap_sync/simulator/cli.py" in names and "htap_sync/cli/__init__.py" in names


def test_wheel_ships_every_lua_script_beside_its_store(wheel: Path) -> None:
    """Each ``.lua`` file of the source folders is in the wheel, next to the module loading it."""
    names = set(zipfile.ZipFile(wheel).namelist())
    scripts = sorted(
        f"htap_sync/{folder}/{path.relative_to(ROOT / folder).as_posix()}"
        for folder in ("common", "producer", "worker", "simulator")
        for path in (ROOT / folder).rglob("*.lua")
    )
    assert len(scripts) >= 10  # bucket, breaker, delayed set, tickets, leases, following
    assert [s for s in scripts if s not in names] == []


def test_installed_wheel_runs_as_a_module(wheel: Path, tmp_path: Path) -> None:
    """Installed into a fresh venv, ``python -m htap_sync --help`` and the public API work."""
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    before = {p.name for p in site.iterdir()}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(site),
            "--upgrade",
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    added = {p.name for p in site.iterdir()} - before
    assert {a for a in added if not a.endswith(".dist-info") and a != "bin"} == {"htap_sync"}
    # Third-party packages come from the test environment's site-packages (no .pth processing
    # there, so its editable htap_sync stays out of the picture).
    env = {"PYTHONPATH": sysconfig.get_paths()["purelib"], "PATH": "/usr/bin:/bin"}
    shown = subprocess.run(
        [python, "-m", "htap_sync", "--help"], env=env, capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0, shown.stderr
    assert "simulator" in shown.stdout and "bulk" in shown.stdout
    api = subprocess.run(
        [
            python,
            "-c",
            "import htap_sync as h; print(h.__file__, h.Producer, h.errors.RequestInvalid)",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert api.returncode == 0, api.stderr
    assert api.stdout.startswith(str(site))
