"""The parts of ``netlab serve`` (``netlab/server.py`` is the command's entry module)."""
