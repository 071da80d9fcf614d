"""server_fixed.py with one classic bug put back: reset-kills (see the BUG lines there)."""

from server_fixed import run

run(bug="reset-kills")
