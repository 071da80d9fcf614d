"""The parts of the bot engine of ``netlab simulate``; ``netlab.bots`` is its entry module.

* ``ledger``: the accounting (``Ledger``, ``Tally``), pure: no I/O, no clock;
* ``bot``: one bot, its connection and its ``ClientSession``;
* ``steps``: what a bot does, one table keyed by scenario.py's step names;
* ``engine``: ``Simulation``, the clock and the shared books of a run;
* ``observe``: socket snapshots of the chat port;
* ``results``: what a run leaves behind, as plain data.
"""
