"""``python -m netlab``: the same as the ``netlab`` command."""

from netlab.cli import main

main()
