"""``python -m nnit.cli``: the ``nnit`` command."""

from nnit.cli import main

main()
