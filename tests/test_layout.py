"""The package layout's promises: the command line starts without torch, imports run one way, the public API
resolves."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import seggpt_core
import vos

REPO = Path(__file__).resolve().parents[1]


def imported_after(code: str) -> set[str]:
    """Top-level module names imported by a fresh interpreter after running ``code``."""
    probe = code + "\nimport sys\nprint(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


def test_help_imports_no_torch():
    modules = imported_after("from vos.cli.main import main\n"
                             "try:\n    main(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0")
    assert "torch" not in modules and "vos" in modules and "eval" in modules


def test_eval_command_imports_no_torch(shared_data, tmp_path):
    results = tmp_path / "osvos"
    shutil.copytree(shared_data / "davis-mini-osvos", results)
    modules = imported_after(f"from vos.cli.main import main\n"
                             f"assert main(['eval', '--davis-root', {str(shared_data / 'davis-mini')!r}, "
                             f"'--results', {str(results)!r}, '--workers', '1']) == 0")
    assert "torch" not in modules
    assert (results / "global_results-val.csv").is_file()


@pytest.mark.parametrize("module, not_imported", [
    ("seggpt_core.checkpoint", "seggpt_core.model"),  # the model imports its checkpoint code, never the reverse
    ("seggpt_core.tuned_prompt", "seggpt_core.tuning"),  # the file format needs no tuning loop ...
    ("seggpt_core.tuned_prompt", "seggpt_core.predictor"),
    ("seggpt_core.losses", "seggpt_core.training"),  # ... and the loss no trainer
    ("vos.config", "torch"),
    ("seggpt_core.adaptation", "torch"),  # its settings are part of vos.config
    ("vos.frame_folders", "numpy"),
])
def test_imports_run_one_way(module, not_imported):
    probe = f"import sys, {module}\nprint({not_imported!r} in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize("package", [seggpt_core, vos])
def test_public_api_resolves(package):
    for name in package.__all__:
        assert getattr(package, name) is not None, name
    with pytest.raises(AttributeError):
        package.no_such_name
