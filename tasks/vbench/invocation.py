"""Running VBench: the command line (`vbench_command`, see the package docstring for why evalsuite launches
`vbench.launch.evaluate` itself), the subprocess with its log, timeout and process-group kill (`run_vbench`), and
keeping a failed run's log.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Sequence, cast

from evalsuite.errors import InputError
from evalsuite.fsutil import atomic_write_bytes, open_for_writing
from evalsuite.tasks.vbench.environment import SETUP_FIX, _subprocess_env, _tail
from evalsuite.tasks.vbench.scoring import (
    CUSTOM_UNSUPPORTED,
    DIMENSIONS,
    MODES,
    VBenchResults,
    _canonical,
    parse_results,
)

CPU_LAUNCH = Path(__file__).with_name("cpu_launch.py")
DEVICES = ("cuda", "cpu")


def vbench_command(python: str | Path, videos_dir: str | Path, dimensions: Sequence[str], output_dir: str | Path,
                   mode: str = "vbench_standard", *, full_info: str | Path | None = None,
                   prompt_file: str | Path | None = None, ngpus: int = 1, device: str = "cuda") -> list[str]:
    """The command line run_vbench runs (see the package docstring, `evalsuite.tasks.vbench`): on "cuda",
    `vbench.launch.evaluate` under torchrun; on "cpu", the same script's main() through `cpu_launch.py` (one
    process, device cpu), with the same arguments."""
    if device not in DEVICES:
        raise InputError(f"unknown VBench device '{device}'", f"use one of {', '.join(DEVICES)}")
    if device == "cpu":
        cmd = [str(python), str(CPU_LAUNCH)]
    else:
        cmd = [str(python), "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(int(ngpus)),
               "-m", "vbench.launch.evaluate"]
    cmd += ["--videos_path", str(videos_dir), "--output_path", str(output_dir), "--mode", mode]
    if full_info:
        cmd += ["--full_json_dir", str(full_info)]
    if prompt_file:
        cmd += ["--prompt_file", str(prompt_file)]
    return cmd + ["--dimension", *dimensions]


def _check_request(dimensions: Sequence[str], mode: str) -> list[str]:
    if mode not in MODES:
        raise InputError(f"unknown VBench mode '{mode}'", f"use one of {', '.join(MODES)}")
    dims = [_canonical(d) for d in dimensions]
    unknown = [d for d in dims if d not in DIMENSIONS]
    if unknown or not dims:
        raise InputError(f"unknown VBench dimension(s) {', '.join(unknown) or '(none given)'}",
                         f"known: {', '.join(DIMENSIONS)}")
    if mode == "custom_input" and set(dims) & CUSTOM_UNSUPPORTED:
        raise InputError(f"VBench cannot score {', '.join(sorted(set(dims) & CUSTOM_UNSUPPORTED))} in custom_input "
                         "mode (they need its standard prompts' metadata)",
                         "generate with VBench's standard prompts (vbench_standard mode) for these dimensions")
    return list(dict.fromkeys(dims))


def _kill_tree(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except (ProcessLookupError, PermissionError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()


def run_vbench(python: str | Path, videos_dir: str | Path, dimensions: Sequence[str], output_dir: str | Path,
               mode: str = "vbench_standard", timeout: float | None = None, *, full_info: str | Path | None = None,
               prompts: dict[str, str] | None = None, ngpus: int = 1, echo: bool = False,
               device: str = "cuda") -> VBenchResults:
    """Run VBench on a laid-out folder in its own environment and parse what it wrote. `prompts` ({file name:
    prompt}) is passed as `--prompt_file` (custom_input mode only). Output (stdout and stderr) goes to
    `output_dir/vbench.log` (and the terminal with `echo`); a failure, a timeout or missing results raise
    InputError with the log's tail."""
    return _run_vbench(python, videos_dir, dimensions, output_dir, mode, timeout, full_info=full_info,
                       prompts=prompts, ngpus=ngpus, echo=echo, device=device)[0]


def _run_vbench(python: str | Path, videos_dir: str | Path, dimensions: Sequence[str], output_dir: str | Path,
                mode: str, timeout: float | None, *, full_info: str | Path | None, prompts: dict[str, str] | None,
                ngpus: int, echo: bool, device: str = "cuda") -> tuple[VBenchResults, list[str]]:
    python = Path(python)
    dims = _check_request(dimensions, mode)
    if prompts and mode != "custom_input":
        raise InputError("VBench takes a prompt file in custom_input mode only", "pass prompts=None")
    out = Path(output_dir).absolute()
    out.mkdir(parents=True, exist_ok=True)
    before = set(out.glob("*_eval_results.json"))
    prompt_file = None
    if prompts:
        prompt_file = out / "evalsuite_prompts.json"
        atomic_write_bytes(prompt_file, json.dumps(prompts, ensure_ascii=False, indent=1).encode("utf-8"))
    cmd = vbench_command(python, Path(videos_dir).absolute(), dims, out, mode, full_info=full_info,
                         prompt_file=prompt_file, ngpus=ngpus, device=device)
    log_path = out / "vbench.log"
    started = time.monotonic()
    with open_for_writing(log_path) as log:
        log.write(("$ " + " ".join(cmd) + "\n").encode())
        log.flush()
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=_subprocess_env(python), cwd=str(out), start_new_session=True)
        except OSError as exc:
            raise InputError(f"cannot start VBench with {python}: {exc}", SETUP_FIX) from exc

        def pump() -> None:
            assert proc.stdout is not None
            stdout = cast(io.BufferedReader, proc.stdout)  # what Popen makes of a pipe (typeshed: IO[bytes])
            for chunk in iter(lambda: stdout.read1(65536), b""):
                log.write(chunk)
                if echo:
                    sys.stderr.write(chunk.decode("utf-8", "replace"))
                    sys.stderr.flush()

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_tree(proc)
            rc = None
        except BaseException:
            _kill_tree(proc)
            raise
        reader.join(timeout=30)
    text = log_path.read_text(encoding="utf-8", errors="replace")
    if rc is None:
        raise InputError(f"VBench did not finish within {timeout:.0f} s (stopped). Log tail:\n{_tail(text)}",
                         "allow a longer timeout, or run fewer dimensions or videos")
    if rc != 0:
        raise InputError(f"VBench failed (exit {rc}) after {time.monotonic() - started:.0f} s: {' '.join(cmd)}\n"
                         f"log tail:\n{_tail(text)}",
                         "read the log above: missing detectron2 or CUDA, a weights download (needs network into "
                         "~/.cache/vbench), or a broken environment (`evalsuite vbench setup --force`)")
    new = sorted(set(out.glob("*_eval_results.json")) - before)
    if not new:
        raise InputError(f"VBench exited 0 but wrote no *_eval_results.json into {out}. Log tail:\n{_tail(text)}",
                         "check the VBench version of the environment (evalsuite expects 0.1.5)")
    results = parse_results(new)
    absent = [d for d in dims if d not in results.scores]
    if absent:
        raise InputError(f"VBench's results lack the requested dimension(s) {', '.join(absent)}. Log tail:\n"
                         f"{_tail(text)}", "read the log; rerun")
    return results, cmd


def _keep_log(log: Path) -> str | None:
    """A failed run's log, copied outside the store (which gets nothing from a failed run)."""
    if not log.is_file():
        return None
    fd, name = tempfile.mkstemp(prefix="evalsuite-vbench-", suffix=".log")
    with os.fdopen(fd, "wb") as fh:
        fh.write(log.read_bytes())
    return name
