"""One set of pins, used two ways: environment.yml and requirements.lock agree."""

from __future__ import annotations

import os
import re
import sys
from importlib.metadata import version
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def env_pins() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    return {p.split("==")[0].lower(): p.split("==")[1] for p in pip if "==" in p}


def lock_pins() -> dict[str, str]:
    text = (ROOT / "requirements.lock").read_text()
    return {
        m.group(1).lower(): m.group(2)
        for m in re.finditer(r"^([A-Za-z0-9_.\-]+)==([^\s\\;]+)", text, re.M)
    }


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_environment_yml_and_lock_agree():
    lock = {norm(k): v for k, v in lock_pins().items()}
    for name, ver in env_pins().items():
        got = lock.get(norm(name))
        assert got == ver, f"{name}: environment.yml {ver}, lock {got}"


def test_lock_pins_every_package_with_hashes():
    text = (ROOT / "requirements.lock").read_text()
    entries = re.findall(r"^[A-Za-z0-9_.\-]+==", text, re.M)
    assert len(entries) > 50
    assert text.count("--hash=sha256:") >= len(entries)


def test_python_version_is_3_11_everywhere():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    assert sys.version_info[:2] == (3, 11)
    # repo2docker ignores runtime.txt when environment.yml exists: one source only
    assert not (ROOT / "runtime.txt").exists()


def test_installed_versions_match_the_lock():
    lock = {norm(k): v for k, v in lock_pins().items()}
    for name in env_pins():
        if name == "setuptools":
            continue
        assert version(name) == lock[norm(name)], name


def test_project_kernel_runs_this_interpreter():
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec("kz-civil-society")
    # compare unresolved paths: a venv's python is a symlink to the base interpreter
    assert os.path.abspath(spec.argv[0]) == os.path.abspath(sys.executable)
