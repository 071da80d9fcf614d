"""The parts of ``netlab chat`` (its entry module is ``netlab/client.py``).

* ``connection``: one connection to a server through the sans-IO ``ClientSession``;
* ``outbox``: what the user sends, paced under the server's rate limit, shown once accepted.
"""
