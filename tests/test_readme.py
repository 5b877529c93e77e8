"""Every fenced code block of README.md runs as printed, on the shipped model, so the examples cannot rot.

Blocks are found anew at every run, so a block added to any section is tested without touching this file:

- ```python blocks run in a fresh interpreter, in an empty temporary folder;
- shell blocks (```bash, ```sh, ```shell, ```console or unlabelled) run under ``bash -euo pipefail`` in an empty
  temporary folder that has ``scripts/`` linked in (README commands are typed in the clone's root), with
  ``seggpt-vos`` and ``python`` being this checkout. The README names the data a command needs as shell variables,
  defined here as placeholders: ``$DAVIS`` is a DAVIS 2017 root (a few frames of ``shared/data/davis-mini``);
- a block right after ``<!-- readme-test: skip (reason) -->`` is not run: set-up commands CI runs, syntax synopses
  and fragments, and what needs weights or hours that are not here. The reason is required and such blocks stay few.

A failure names the block's line in README.md.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest


REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
SHELL = {"", "bash", "sh", "shell", "console"}
PYTHON = {"python", "py"}
MARKER = re.compile(r"<!--\s*readme-test:\s*skip\s*\((?P<reason>.*)\)\s*-->")
#: Skipped blocks allowed in the whole README: set-up, synopses, fragments, missing weights, long training.
MAX_SKIPPED = 9
#: Wall-clock limit per block (the shared 2-core machine can be slow).
TIMEOUT_S = 1200


@dataclass(frozen=True)
class Block:
    line: int  #: 1-based line of the opening fence in README.md
    lang: str
    code: str
    skip: str | None  #: the marker's reason, None when the block runs

    @property
    def where(self) -> str:
        return f"README.md line {self.line} (```{self.lang} block)"


def readme_blocks(text: str) -> list[Block]:
    """The fenced blocks of a Markdown text, with the skip marker on the nearest non-blank line above each."""
    lines = text.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        opening = re.match(r"^(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)", lines[i])
        if opening is None:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith(opening["fence"])), None)
        if end is None:
            raise AssertionError(f"README.md line {i + 1}: code block is never closed")
        above = next((lines[k].strip() for k in range(i - 1, -1, -1) if lines[k].strip()), "")
        marker = MARKER.fullmatch(above)
        blocks.append(Block(i + 1, opening["lang"].lower(), "\n".join(lines[i + 1:end]) + "\n",
                            marker["reason"].strip() if marker else None))
        i = end + 1
    return blocks


README_TEXT = README.read_text()  #: read once, so every test sees the same text
BLOCKS = readme_blocks(README_TEXT)
#: Shell variables README blocks may use for data, and how to make each (a pytest fixture name).
PLACEHOLDERS = {"DAVIS": "davis_root"}


def test_readme_has_runnable_blocks_and_few_justified_skips():
    assert any(b.lang in PYTHON and not b.skip for b in BLOCKS) and any(b.lang in SHELL and not b.skip for b in BLOCKS)
    skipped = [b for b in BLOCKS if b.skip]
    assert len(skipped) <= MAX_SKIPPED, [b.where for b in skipped]
    for b in skipped:
        assert len(b.skip) >= 10, f"{b.where}: say why it cannot run, in the marker's parentheses"
    marked = {b.line for b in skipped}
    lines = README_TEXT.splitlines()
    for number, line in enumerate(lines, 1):
        if "readme-test" in line:
            following = next((n for n in range(number + 1, len(lines) + 1) if lines[n - 1].strip()), None)
            assert MARKER.fullmatch(line.strip()) and following in marked, \
                f"README.md line {number}: write '<!-- readme-test: skip (reason) -->' right above a code block"


@pytest.fixture
def davis_root(davis_subset) -> Path:
    return davis_subset("davis-mini", {"blackswan": 6, "dog": 6})


def clone_root(folder: Path) -> dict[str, str]:
    """Make ``folder`` look like the clone's root for README commands; returns the environment to run them in."""
    (folder / "scripts").symlink_to(REPO / "scripts")
    bin_dir = folder.parent / f"{folder.name}-bin"
    bin_dir.mkdir()
    for name, command in (("seggpt-vos", f'"{sys.executable}" -m vos.cli'), ("python", f'"{sys.executable}"')):
        (bin_dir / name).write_text(f'#!/bin/sh\nexec {command} "$@"\n')
        (bin_dir / name).chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}


@pytest.mark.parametrize("block", [b for b in BLOCKS if not b.skip], ids=lambda b: f"line{b.line}")
def test_readme_block_runs_as_printed(block, tmp_path, request):
    work = tmp_path / "clone"
    work.mkdir()
    env = clone_root(work)
    if block.lang in PYTHON:
        (work / "readme_block.py").write_text(block.code)
        command = [sys.executable, "readme_block.py"]
    elif block.lang in SHELL:
        for name, fixture in PLACEHOLDERS.items():
            if re.search(rf"\${{?{name}\b", block.code):
                env[name] = str(request.getfixturevalue(fixture))
        (work / "readme_block.sh").write_text("set -euo pipefail\n" + block.code)
        command = ["bash", "readme_block.sh"]
    else:
        pytest.fail(f"{block.where}: this test cannot run ```{block.lang} blocks; use ```python or ```bash, or mark "
                    "it '<!-- readme-test: skip (reason) -->'", pytrace=False)
    try:
        result = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{block.where}: still running after {TIMEOUT_S} s", pytrace=False)
    if result.returncode != 0:
        pytest.fail(f"{block.where} exited with {result.returncode}:\n{block.code}\n--- output (tail) ---\n"
                    f"{(result.stdout + result.stderr)[-3000:]}", pytrace=False)
