"""``netlab sockets --explain``: each row said in words, as a teacher would say it."""

from __future__ import annotations

from netlab.sockets.rows import Row
from netlab.tables import visible

MEANINGS = {
    "LISTEN": "the server's door, it accepts and never carries chat",
    "ESTABLISHED": "open, chat flows both ways",
    "SYN_SENT": "this side asked to connect and waits for the answer",
    "SYN_RECV": "half open: the kernel answered a new client and waits for its last ACK",
    "NEW_SYN_RECV": "half open: the kernel answered a new client and waits for its last ACK",
    "FIN_WAIT1": "this side has closed; the other side has not acknowledged it yet",
    "FIN_WAIT2": "this side has closed and the other side knows; it has not closed yet",
    "TIME_WAIT": "this side closed first; the kernel keeps it about 60 s so late packets die",
    "CLOSE": "closed; the socket is on its way out",
    "CLOSE_WAIT": "the other side has closed and this program has not (a leak if it stays)",
    "LAST_ACK": "the other side closed first, then this side; waiting for the last ACK",
    "CLOSING": "both sides closed at the same moment; waiting for the other's ACK",
    "NONE": "UDP has no connections and no states: each datagram goes on its own",
}
ENDED = frozenset({"TIME_WAIT", "CLOSE", "LAST_ACK", "CLOSING"})  # the connection is over
# States in which the program may have closed its socket already, leaving it to the kernel.
ORPHANS = ENDED | {"FIN_WAIT1", "FIN_WAIT2"}


def explain(row: Row) -> str:
    """``127.0.0.1:55555 -> 127.0.0.1:54652: server's end of bob's connection (netlab, pid
    21269). ESTABLISHED: open, chat flows both ways.``"""
    state = row["state"]
    meaning = MEANINGS.get(state, "a state this program does not know, read from the kernel")
    where = row["local"] + (f" -> {row['remote']}" if row["remote"] else "")
    return f"{where}: {_who(row)} ({_owner(row)}). {state}: {meaning}.{_queues(row)}"


def _who(row: Row) -> str:
    if row["state"] == "LISTEN" or not row["remote"]:
        return "the listening socket" if row["state"] == "LISTEN" else "a socket"
    side = row.get("side")
    end = f"{side}'s end" if side else "one end"
    if row["nick"]:
        return f"{end} of {visible(row['nick'])}'s connection"
    if row["state"] in ENDED:
        return f"{end} of a connection that is over"
    return f"{end} of a connection with no nickname known"


def _owner(row: Row) -> str:
    if row["pid"] is not None:
        program = visible(row["process"]) if row["process"] else "a process"
        return f"{program}, pid {row['pid']}"
    if row["state"] in ORPHANS:
        return "no process: the kernel alone holds it"
    return "a process this user may not see"


def _queues(row: Row) -> str:
    said = []
    unread = row["recv_q"] or 0
    if row["state"] == "CLOSE_WAIT" and unread:
        # The other side's FIN takes a sequence number, counted until the program reads the
        # end of the stream (its recv() returns 0 bytes).
        unread -= 1
        said.append("the program has not even read the close yet (Recv-Q counts the FIN as 1)")
    if unread:
        if row["state"] == "LISTEN":
            said.insert(0, f"{unread} new connections wait to be accepted")
        else:
            said.insert(0, f"{unread} bytes arrived that the program has not read yet")
    if row["send_q"]:
        said.append(f"{row['send_q']} bytes sent that the other side has not acknowledged yet")
    return "".join(f" {text[0].upper()}{text[1:]}." for text in said)
