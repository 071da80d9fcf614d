"""server_fixed.py with one classic bug put back: no-close (see the BUG lines there)."""

from server_fixed import run

run(bug="no-close")
