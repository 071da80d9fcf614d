"""The parts of ``netlab bench`` (its entry module is ``netlab/bench.py``).

* ``config``: what a run is asked to do (``BenchConfig``), what it found (``BenchResult``), and
  the payload format every message carries;
* ``counter``: one bench connection (``BenchClient``): joins through the sans-IO
  ``ClientSession``, then counts copies by their markers, and the run's shared counters;
* ``run``: a whole run: join every client, send, count, sample the server's process;
* ``output``: the result as a table or JSON.
"""
