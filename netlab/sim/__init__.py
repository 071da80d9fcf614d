"""The parts of ``netlab simulate``; ``netlab.bots`` is the bot engine's entry module,
``netlab.scenario`` the format's, ``netlab.simulate`` the command's.

* ``ledger``: the accounting (``Ledger``, ``Tally``), pure: no I/O, no clock;
* ``bot``: one bot, its connection and its ``ClientSession``;
* ``steps``: what a bot does, one table keyed by scenario.py's step names;
* ``engine``: ``Simulation``, the clock and the shared books of a run;
* ``observe``: socket snapshots of the chat port;
* ``timeline``: the run over time, as plain data;
* ``results``: what a run leaves behind, as plain data;
* ``values``, ``errors``, ``loading``: the format's value types, its one-line errors, and
  reading files (what is refused unread);
* ``console``: standard output that survives a closed pipe, and the live progress line.
"""
