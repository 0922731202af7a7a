"""``python -m nnit``: the ``nnit`` command line, also as ``torchrun --nproc_per_node=N -m nnit train ...``."""

from nnit.cli import main

if __name__ == "__main__":
    main()
