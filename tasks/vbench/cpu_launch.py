"""VBench's own launch script on the CPU: run in the VBench environment as `PYTHON cpu_launch.py ARGS`, with the
arguments of `vbench.launch.evaluate` (evalsuite's `vbench_command`, device "cpu").

vbench 0.1.5's `vbench/launch/evaluate.py` `main()` parses its arguments, calls `dist_init()` (an NCCL process group
and `torch.cuda.set_device`), builds `VBench(torch.device("cuda"), full_json_dir, output_path)` and calls its
`evaluate(...)` with the parsed arguments. VBench's class takes the device as a parameter ("cuda or cpu", its
`__init__`), and its dimensions run single-process when no process group exists (`vbench.distributed.get_rank()` is
0, `get_world_size()` 1). This script runs that same `main()`, unchanged, with two substitutions in the launch
module only: `dist_init` does nothing (one process, no process group), and the module's `torch.device(...)` gives
the CPU. It refuses to run when the launch module uses `torch` for anything but `torch.device` (another vbench
version), so the substitution cannot silently change more than the device.

This file must not import evalsuite (it runs in VBench's environment), and it removes its own folder from sys.path
(the folder holds evalsuite's modules, which must not shadow anything VBench imports).
"""

from __future__ import annotations

import os
import sys


def _own_folder_off_path() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]


class _CpuTorch:
    """What the launch module sees as `torch`: only `device`, which gives the CPU whatever it is asked for."""

    def __init__(self, torch_module: object) -> None:
        self._torch = torch_module

    def device(self, *_args: object, **_kwargs: object) -> object:
        return self._torch.device("cpu")  # type: ignore[attr-defined]


def main() -> None:
    _own_folder_off_path()
    import inspect
    import re

    import torch
    from vbench.launch import evaluate as launch

    uses = sorted(set(re.findall(r"\btorch\.\w+", inspect.getsource(launch))))
    if uses != ["torch.device"]:
        sys.exit(f"evalsuite cpu_launch: {launch.__file__} uses {uses}, not only torch.device (not vbench 0.1.5's "
                 "launch script); refusing to substitute the CPU")
    launch.dist_init = lambda: None
    launch.torch = _CpuTorch(torch)
    sys.argv[0] = launch.__file__
    print("evalsuite cpu_launch: vbench.launch.evaluate.main() with device cpu, single process (no dist_init)",
          flush=True)
    launch.main()


if __name__ == "__main__":
    main()
