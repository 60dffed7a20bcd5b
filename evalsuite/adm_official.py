"""The official path of the ADM tasks: guided-diffusion's own `evaluations/evaluator.py`, the user's copy, run as
it is in its own TensorFlow environment on a sample batch written by evalsuite (`adm_npz.write_sample_batch`) and the
user's reference batch, with the user's `classify_image_graph_def.pb` (never downloaded: the evaluator fetches it into
its working directory when absent, so a temporary working directory holding a link to the user's file is used).

One shim, which changes no number: evaluator.py's `evaluate_pr` uses `np.bool`, removed in numpy 1.24, which every
TensorFlow that installs today requires; the launcher sets `np.bool = bool` before running the file unchanged
(`runpy.run_path`). Its printed lines (`Inception Score:`, `FID:`, `sFID:`, `Precision:`, `Recall:`) are the numbers.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from evalsuite.errors import InputError, TaskSkipped

GRAPH_NAME = "classify_image_graph_def.pb"  # evaluator.py INCEPTION_V3_PATH (L21): read from its working directory
_LAUNCHER = r"""
import runpy, sys
import numpy as np
if not hasattr(np, "bool"):
    np.bool = bool  # evaluator.py evaluate_pr L343-344 (np.bool, removed in numpy 1.24); same dtype
sys.argv = [sys.argv[1], sys.argv[2], sys.argv[3]]
runpy.run_path(sys.argv[0], run_name="__main__")
"""
_LINES = {"is": "Inception Score", "fid": "FID", "sfid": "sFID", "precision": "Precision", "recall": "Recall"}
SETUP_FIX = ("create a TensorFlow environment for the evaluator (`python -m venv adm-env && adm-env/bin/pip "
             "install tensorflow-cpu scipy requests tqdm`), clone openai/guided-diffusion, download "
             "classify_image_graph_def.pb (evaluations/README.md) and pass -o features=tf -o "
             "tf_python=adm-env/bin/python -o evaluator=PATH/evaluations/evaluator.py -o "
             "graph=PATH/classify_image_graph_def.pb")


@dataclass(frozen=True)
class OfficialSetup:
    """Where the user's evaluator, its environment's interpreter and the Inception graph are."""

    python: str
    evaluator: str
    graph: str

    def check(self) -> None:
        """Skip (with the setup) when a part is not given; an InputError when a given path does not exist."""
        missing = [name for name, value in (("tf_python", self.python), ("evaluator", self.evaluator),
                                            ("graph", self.graph)) if not value]
        if missing:
            raise TaskSkipped(f"the official ADM evaluator path needs {', '.join(missing)}", SETUP_FIX)
        for name, value in (("tf_python", self.python), ("evaluator", self.evaluator), ("graph", self.graph)):
            if not Path(value).exists():
                raise InputError(f"-o {name}={value} does not exist", SETUP_FIX)


def parse_output(text: str) -> dict[str, float]:
    """The five numbers evaluator.py prints (main, L55-60), by metric name; a missing line is an error naming it."""
    out: dict[str, float] = {}
    for key, label in _LINES.items():
        match = re.search(rf"^{re.escape(label)}: *([-+0-9.eE]+|nan|inf)\s*$", text, re.MULTILINE)
        if match is None:
            raise InputError(f"the ADM evaluator printed no '{label}:' line", "run it by hand to see why: "
                                                                               + text.strip()[-400:])
        out[key] = float(match.group(1))
    return out


def run_evaluator(setup: OfficialSetup, ref_batch: str | Path, sample_batch: str | Path,
                  timeout: float | None = None) -> tuple[dict[str, float], str]:
    """Run the user's evaluator.py on (reference batch, sample batch); returns the five numbers and its output."""
    setup.check()
    with tempfile.TemporaryDirectory(prefix="adm-evaluator-") as work:
        os.symlink(Path(setup.graph).resolve(), Path(work) / GRAPH_NAME)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        cmd = [setup.python, "-c", _LAUNCHER, str(Path(setup.evaluator).resolve()), str(Path(ref_batch).resolve()),
               str(Path(sample_batch).resolve())]
        try:
            proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise InputError(f"the ADM evaluator ran past {timeout} s", "raise the timeout") from exc
    text = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise InputError(f"the ADM evaluator failed (exit {proc.returncode}): {text.strip()[-600:]}", SETUP_FIX)
    return parse_output(proc.stdout), text
