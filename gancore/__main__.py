"""``python -m gancore`` (and ``torchrun -m gancore``) runs the command line."""

from gancore.cli import main

main()
