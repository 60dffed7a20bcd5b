"""Test-only models with a deterministic kill point: with `EVALSUITE_TEST_KILL=<method>:<n>` in the environment,
the n-th call of that method in the process kills it with SIGKILL (as the OOM killer or a power cut would), so a
subprocess test can interrupt a run at an exact step."""

from __future__ import annotations

import os
import signal
import sys

from evalsuite.models.autoencoders import DemoAE

_calls: dict[str, int] = {}


def _step(method: str) -> None:
    _calls[method] = _calls.get(method, 0) + 1
    if os.environ.get("EVALSUITE_TEST_TRACE"):
        print(f"kill_models: {method} #{_calls[method]}", file=sys.stderr, flush=True)
    want, _, n = os.environ.get("EVALSUITE_TEST_KILL", "").partition(":")
    if want == method and _calls[method] == int(n):
        os.kill(os.getpid(), signal.SIGKILL)


class KillableAE(DemoAE):
    """The demo autoencoder, killable at its n-th encode or decode."""

    def __init__(self) -> None:
        super().__init__()
        self.model_id = "killable-demo-ae@1"

    def encode(self, x):
        _step("encode")
        return super().encode(x)

    def decode(self, z):
        _step("decode")
        return super().decode(z)


def ae() -> KillableAE:
    return KillableAE()
