"""client_fixed.py with one classic bug put back: spin-on-loss (see the BUG lines there)."""

from client_fixed import run

run(bug="spin-on-loss")
