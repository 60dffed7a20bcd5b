"""The old home of the `vbench` task, kept as a re-export: the task now lives in the package `evalsuite.tasks.vbench`
(environment, layout, invocation, scoring, task). Stored documentation, result provenance notes and users' scripts
import `evalsuite.tasks.video_vbench` (`from evalsuite.tasks import video_vbench as vb`); every public name of the
old module resolves here to the same object. Patch names where they are looked up (e.g.
`evalsuite.tasks.vbench.invocation.subprocess`), not here.
"""

from __future__ import annotations

from evalsuite.tasks.vbench import *  # noqa: F403  (every public name of the package, as listed in its __all__)
from evalsuite.tasks.vbench import __all__ as __all__
