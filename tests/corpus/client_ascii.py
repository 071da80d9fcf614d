"""client_fixed.py with one classic bug put back: ascii (see the BUG lines there)."""

from client_fixed import run

run(bug="ascii")
