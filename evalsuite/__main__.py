"""`python -m evalsuite ...` (and `torchrun -m evalsuite ...`) runs the CLI."""

from evalsuite.cli import main

main()
