"""``netlab bench``: fan-out throughput and latency of a chat server, measured from outside.

The bench joins ``clients`` connections, lets the first ``senders`` of them send ``messages``
each, and counts the copies that reach the others. It has to keep up with millions of copies a
second in one Python process, so nothing is decoded per message:

* every message carries a fixed-format payload (``PAYLOAD_FORMAT``) of ``--size`` bytes,
  starting with the marker ``@@@@``; a receiver counts copies with one ``bytes.count`` per
  receive (C speed), whatever the server put around them (a netlab stamp and nick, ncat's
  ``<user#N>`` prefix, the handout server's unframed chunks);
* a sender also counts its own marker (``@@@@<sender id>``), so a server that echoes a message to
  its sender is seen, and those copies are not counted as deliveries;
* latency is sampled, not tracked per copy: a few *probe* receivers parse the send time out of
  the messages marked as timed (every message at default sizes, every k-th one when a run is
  so big that parsing them all would slow the bench down).

The protocols are the ``Dialect``s of the sans-IO ``ClientSession``, which does every join:
``netlab`` answers the ``NICK`` prompt with a line and waits for ``Connected to server!``;
``handout`` answers with a bare nickname, as the handout's client does; ``lines`` is any line
relay with no handshake (``ncat --chat``): a client counts as joined once it has received a
sync line that another bench client sent through the server.

Its parts are in ``netlab/loadgen/``; this module is the command.
"""

from __future__ import annotations

import sys

from netlab import aio, embedded
from netlab.loadgen.config import (  # noqa: F401 (the bench's names, for tests and bench/)
    MARK,
    PAYLOAD_FORMAT,
    TIMED,
    BenchConfig,
    BenchError,
)
from netlab.loadgen.counter import Bench, BenchClient  # noqa: F401
from netlab.loadgen.output import document, render, write_html
from netlab.loadgen.progress import Progress
from netlab.loadgen.run import measure, own_server_options
from netlab.procstat import listening_pid


def _on_a_cluster(config: BenchConfig, progress: Progress):
    """``--servers N``: a redis-server and N servers of one cluster, started for the run."""
    from netlab.cluster.embedded import EmbeddedCluster

    cluster = EmbeddedCluster(config.servers, own_server_options(config.clients)).start()
    try:
        first = cluster.servers[0]
        servers = cluster.addresses
        return aio.run(measure(config, first.host, first.port, first.pid, progress, servers))
    finally:
        cluster.stop()


def run(config: BenchConfig) -> int:
    """``netlab bench``: 0 when every client joined and every copy arrived, 1 when not (or on
    an error, told in one line), 2 for bad arguments."""
    problem = config.problem()
    if problem:
        print(f"netlab bench: {problem}", file=sys.stderr)
        return 2
    if config.compare is not None:
        from netlab.loadgen.compare import compare

        try:
            return compare(config)
        except BenchError as error:
            print(f"netlab bench: {error}", file=sys.stderr)
            return 2
    progress = Progress(config.clients)
    try:
        if config.target is None and config.servers > 1:
            result = _on_a_cluster(config, progress)
        elif config.target is None:
            with embedded.running(own_server_options(config.clients)) as server:
                run = measure(config, server.host, server.port, server.pid, progress)
                result = aio.run(run)
        else:
            servers = config.addresses()
            host, port = servers[0]
            pid = listening_pid(host, port)
            result = aio.run(measure(config, host, port, pid, progress, servers))
    except (BenchError, embedded.ServerStartError) as error:
        print(f"netlab bench: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("netlab bench: interrupted", file=sys.stderr)
        return 130
    print(render(result, config.format), flush=True)
    if config.html and not write_html(config.html, document(result)):
        return 1
    if result.interrupted:
        return 130
    if not result.complete:
        print(
            f"netlab bench: incomplete: {result.joined}/{result.clients} joined,"
            f" {result.delivered}/{result.expected} copies delivered",
            file=sys.stderr,
        )
        return 1
    return 0
