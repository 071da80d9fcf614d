"""client_fixed.py with one classic bug put back: no-stamp (see the BUG lines there)."""

from client_fixed import run

run(bug="no-stamp")
