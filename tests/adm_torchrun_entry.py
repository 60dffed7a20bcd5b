"""`torchrun -m tests.adm_torchrun_entry ARGS`: the evalsuite CLI with the test's TorchScript stand-in accepted as
inception-2015-12-05 (its own sha256 from $ADM_TEST_STANDIN, as tests/conftest.py's install_standin_weights does in
one process; the file is already imported into $EVALSUITE_HOME's weights store by the test). Each rank counts the
images its network calls featurise and writes the count to $ADM_TEST_COUNTS/rank<RANK>.json at exit. For
tests/test_adm_features.py's two-rank run only: the stand-in is never presented as the real weights."""

from __future__ import annotations

import atexit
import dataclasses
import json
import os
import sys
from pathlib import Path


def main() -> None:
    from evalsuite import features, weights
    from evalsuite.cli import main as cli_main
    from evalsuite.hashing import sha256_file

    count = [0]
    run_network = features.run_network

    def counted(extractor, inputs, layout="image"):
        count[0] += len(inputs)
        return run_network(extractor, inputs, layout)

    features.run_network = counted
    out = Path(os.environ["ADM_TEST_COUNTS"]) / f"rank{os.environ.get('RANK', '0')}.json"
    atexit.register(lambda: out.write_text(json.dumps({"images": count[0]})))

    name = "inception-2015-12-05"
    weights.REGISTRY[name] = dataclasses.replace(weights.REGISTRY[name],
                                                 sha256=sha256_file(os.environ["ADM_TEST_STANDIN"]))
    sys.argv = ["evalsuite", *sys.argv[1:]]
    cli_main()


if __name__ == "__main__":
    main()
