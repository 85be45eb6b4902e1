"""`pip install "climbstream[all]"` resolves on a fresh virtual environment, quickly and
without walking back through releases (issue 23), and keeps the torch already here.

Resolution only: `pip install --dry-run --report` installs nothing. It needs the package
index (PyPI); on this project's machines it takes about a minute, most of it fetching the
wheels whose metadata pip reads (about 330 MB: the index serves no separate metadata
files; torch and the CUDA wheels come from the local disk and are read, not fetched).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RESOLVE_TIMEOUT_S = 600

# Names that `all` bounds so that pip's first choice is consistent: pip walking back through
# the releases of any of them is the regression this test is for.
BOUNDED = ("gcsfs", "fsspec", "google-cloud-storage", "mosaicml-streaming", "transformers",
           "huggingface_hub", "huggingface-hub", "tokenizers")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _copy_project(dst: Path) -> Path:
    """What pip needs to build the metadata, so that the build leaves the checkout alone."""
    dst.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (REPO / name).exists():
            shutil.copy2(REPO / name, dst / name)
    shutil.copytree(REPO / "climbstream", dst / "climbstream",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.nbi", "*.nbc"))
    return dst


@pytest.mark.slow
@pytest.mark.timeout(RESOLVE_TIMEOUT_S + 180)
def test_all_extras_resolve_on_a_fresh_venv_and_keep_the_local_torch(tmp_path):
    project = _copy_project(tmp_path / "project")
    venv = tmp_path / "venv"
    # A fresh environment with the pip that venv brings (no upgrade), as a user would have.
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=180)
    pip = venv / "bin" / "pip"
    report = tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"

    start = time.monotonic()
    try:
        run = subprocess.run(
            [str(pip), "install", "--dry-run", "--ignore-installed", "--report", str(report),
             f"{project}[all]"],
            capture_output=True, text=True, timeout=RESOLVE_TIMEOUT_S, env=env)
    except subprocess.TimeoutExpired as e:
        out = e.stdout or ""
        if isinstance(out, bytes):
            out = out.decode(errors="replace")
        pytest.fail(f"pip did not resolve climbstream[all] within {RESOLVE_TIMEOUT_S} s:\n{out[-4000:]}")
    elapsed = time.monotonic() - start
    output = run.stdout + run.stderr
    assert run.returncode == 0, f"pip install --dry-run '[all]' failed:\n{output[-6000:]}"

    installs = {_canonical(item["metadata"]["name"]): item
                for item in json.loads(report.read_text())["install"]}
    # The torch already installed here (2.14.1 on the project's machines, capped by the
    # machine's pip constraints) is the one `all` keeps: no extra pulls another torch.
    assert "torch" in installs
    assert installs["torch"]["metadata"]["version"] == version("torch").split("+")[0]
    # transformers 4.57 needs huggingface_hub < 1; `datasets` (which wants >= 1) stays out.
    assert "datasets" not in installs
    for name in ("mosaicml-streaming", "gcsfs", "adlfs", "wandb", "transformers",
                 "accelerate", "pytorch-lightning", "ray"):
        assert name in installs, f"{name} is missing from the resolution of [all]"
    fsspec = installs["fsspec"]["metadata"]["version"]
    assert installs["gcsfs"]["metadata"]["version"] == fsspec  # gcsfs pins its own fsspec

    walked_back = [line for line in output.splitlines()
                   if "pip is looking at multiple versions of" in line
                   and any(re.search(rf"versions of {re.escape(n)}(\[|\s)", line, re.I)
                           for n in BOUNDED)]
    assert not walked_back, "pip backtracked over a package that `all` bounds:\n" + "\n".join(walked_back)
    print(f"climbstream[all] resolved in {elapsed:.0f} s, {len(installs)} distributions")
