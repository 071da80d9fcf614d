"""The netlab chat protocol, with no I/O.

Everything here takes bytes or text and returns events or text, in the manner of h11: the
server, the terminal client, the bots, the bench and ``netlab check`` feed it what their
sockets read and act on what comes back. The wire format is written down in docs/protocol.md.

Two framings share one port (see the handshake in docs/protocol.md):

* a *line client* answers the ``NICK`` prompt with a newline-terminated nickname; every later
  message is a ``\\n`` or ``\\r\\n`` terminated line;
* a *handout client* (the lab handout's ``client.py``) answers with a bare nickname and sends
  one message per ``send()``, with no terminator.

The parts: ``texts`` (every text the server sends, and their parser), ``nicks`` (nickname
rules, cleaning text), ``framing`` (bytes into messages), ``commands`` (``/name args``),
``handshake`` and ``session`` (the two sides' state machines). Their names are re-exported
here, so ``from netlab import protocol as p`` and ``p.chat_line`` keep working.
"""

from netlab.protocol.client_session import *  # noqa: F403
from netlab.protocol.commands import *  # noqa: F403
from netlab.protocol.framing import *  # noqa: F403
from netlab.protocol.handshake import *  # noqa: F403
from netlab.protocol.nicks import *  # noqa: F403
from netlab.protocol.texts import *  # noqa: F403
from netlab.protocol.texts import _names  # noqa: F401 (tests read it)
