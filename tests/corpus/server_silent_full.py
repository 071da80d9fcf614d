"""server_fixed.py with one classic bug put back: silent-full (see the BUG lines there)."""

from server_fixed import run

run(bug="silent-full")
