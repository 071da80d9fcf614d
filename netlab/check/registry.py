"""Every case of ``netlab check`` by id, with what it checks and the lesson of a fail or warn.

The ids, and what each checks, are a contract (issue 13): acceptance checks grade known
servers by them. docs/check.md has a section per case, under the anchor ``Case.anchor``.
"""

from __future__ import annotations

from netlab.check import cases_client as cc
from netlab.check import cases_load as cl
from netlab.check import cases_server as cs
from netlab.check.model import Case, Needs
from netlab.protocol.client_session import Dialect

P = (Needs.PROCESS,)
NICKED = (Dialect.handout.value, Dialect.netlab.value)  # a plain line chat has no NICK handshake

SERVER_CASES = [
    Case(
        "connect.prompt",
        "on connect the server asks for a nickname (NICK) within 2 s",
        "the server speaks first: until it sends NICK, a client that waits for it waits forever",
        cs.connect_prompt,
        protocols=NICKED,
    ),
    Case(
        "connect.join",
        "after the nickname, the others are told the newcomer joined",
        "a join notice is one send to every other socket; forgetting it leaves the room blind",
        cs.connect_join,
        protocols=NICKED,
    ),
    Case(
        "chat.broadcast",
        "a message from one of three clients reaches both others",
        "broadcast is a loop of send() over every other client's socket",
        cs.chat_broadcast,
    ),
    Case(
        "chat.no-echo",
        "the sender gets no copy of its own message",
        "leave the sender's socket out of the broadcast loop, or its client shows the line twice",
        cs.chat_no_echo,
    ),
    Case(
        "chat.utf8",
        "Cyrillic, CJK and emoji text arrives byte for byte",
        "TCP carries bytes: decode them as UTF-8 (or not at all), never as ASCII",
        cs.chat_utf8,
    ),
    Case(
        "chat.utf8-split",
        "a multi-byte character split over two TCP segments 100 ms apart arrives intact",
        "a recv() can end in the middle of a character: decode the stream, not each recv()",
        cs.chat_utf8_split,
    ),
    Case(
        "chat.burst",
        "20 messages written back to back all arrive, in order",
        "one recv is not one message: TCP is a byte stream, so frame messages (one per line)",
        cs.chat_burst,
    ),
    Case(
        "chat.long",
        "a 4,000-byte message arrives whole or is refused with a message; the server goes on",
        "a long message comes in several recv()s: buffer up to the end of the line, with a limit",
        cs.chat_long,
    ),
    Case(
        "leave.notice",
        "when a client leaves, the others are told once",
        "a leave is seen once, at the first of: the leaving message, recv() returning b'', a reset",
        cl.leave_notice,
    ),
    Case(
        "leave.abrupt",
        "after a client resets its connection (RST), a new client can still join and chat",
        "a reset makes recv()/send() raise ConnectionResetError: catch it for that client alone",
        cl.leave_abrupt,
    ),
    Case(
        "leave.reset-burst",
        "clients reset during a broadcast; the others keep getting messages, a newcomer joins",
        "send() to a reset socket raises in the sending thread: drop that receiver, not the sender",
        cl.leave_reset_burst,
    ),
    Case(
        "leave.close-wait",
        "2 s after 10 clients closed, none of the server's sockets is in CLOSE_WAIT",
        "recv() returning b'' is the peer's FIN: close the socket, or it stays in CLOSE_WAIT",
        cl.leave_close_wait,
        needs=P,
    ),
    Case(
        "leave.idle-cpu",
        "after clients closed politely (FIN), the server's CPU over 2 s stays under 20 %",
        "recv() returning b'' never blocks again: a loop taking it for a message spins a core",
        cl.leave_idle_cpu,
        needs=P,
    ),
    Case(
        "leave.fd-leak",
        "after 50 clients joined and left, its open files are back within 5",
        "each accepted socket is a file descriptor until close(): leaks end in EMFILE on accept()",
        cl.leave_fd_leak,
        needs=P,
    ),
    Case(
        "nick.reserved",
        "admin and Admin are refused",
        "compare nicknames case-insensitively (casefold), or Admin walks in",
        cs.nick_reserved,
        protocols=NICKED,
    ),
    Case(
        "nick.duplicate",
        "a nickname that is online is refused",
        "check the nickname against those online before admitting, or two clients share a name",
        cs.nick_duplicate,
        protocols=NICKED,
    ),
    Case(
        "limit.refusal",
        "connecting until the server refuses: the refused client gets a line saying why",
        "a full server must still accept(), say why and close: the backlog just leaves it hanging",
        cl.limit_refusal,
    ),
    Case(
        "limit.busy-loop",
        "while full, the server's CPU over 2 s stays under 20 %",
        "'while full: continue' spins a core: block in accept() and refuse the newcomer instead",
        cl.limit_busy_loop,
        needs=P,
    ),
    Case(
        "limit.recovers",
        "once one client leaves a full server, a newcomer is admitted",
        "the count of clients must go down when one leaves (FIN or RST), or the server stays full",
        cl.limit_recovers,
    ),
    Case(
        "slow.reader",
        "a client that stops reading while 8 MB are sent delays the others by at most 1 s",
        "send() blocks once a reader's buffers are full: a stalled reader must not stop the rest",
        cl.slow_reader,
    ),
    Case(
        "security.impersonation",
        "a text shaped like another user's message is not shown as theirs",
        "the server must name the sender itself: text from the client is data, not an identity",
        cs.security_impersonation,
    ),
    Case(
        "admin.kick",
        "the kicked client is told and disconnected, the others are told",
        "a kick is a message to the victim, a close of its socket, and a notice to the rest",
        cs.admin_kick,
        needs=(Needs.KICK,),
    ),
    Case(
        "shutdown.signal",
        "on SIGINT the server closes every client connection within 2 s and exits",
        "on KeyboardInterrupt close every client socket (FIN), or clients hang on a dead server",
        cl.shutdown_signal,
        needs=P,
    ),
]

CLIENT_CASES = [
    Case(
        "client.nick",
        "it answers NICK with the nickname it was given",
        "the client must read the server's first bytes and answer NICK with the nickname",
        cc.client_nick,
        protocols=NICKED,
    ),
    Case(
        "client.send",
        "a line typed on its stdin reaches the server as one message",
        "each typed line is one send(): the server takes one recv() (or one line) as one message",
        cc.client_send,
    ),
    Case(
        "client.timestamp",
        "that message carries a date-time stamp",
        "a stamp is part of the message's bytes: add it before send()",
        cc.client_timestamp,
    ),
    Case(
        "client.receive",
        "a message from the server is printed on its stdout",
        "a receiving thread (or select) must print what recv() returns while input() waits",
        cc.client_receive,
    ),
    Case(
        "client.utf8",
        "Cyrillic and emoji, typed and received, arrive intact both ways",
        "encode and decode UTF-8 on both sides; ASCII raises on the first non-Latin letter",
        cc.client_utf8,
    ),
    Case(
        "client.merged",
        "two messages arriving in one TCP segment are both shown",
        "one recv is not one message: two can come in one segment",
        cc.client_merged,
    ),
    Case(
        "client.exit-command",
        "typing /exit closes its connection and the process ends within 3 s",
        "close() while another thread blocks in recv() sends no FIN: call shutdown() first",
        cc.client_exit_command,
    ),
    Case(
        "client.server-loss",
        "when the server closes, the process ends within 3 s, under 50 % CPU",
        "recv() returning b'' means the server is gone: stop the loop, do not print it forever",
        cc.client_server_loss,
    ),
]

ALL_CASES = SERVER_CASES + CLIENT_CASES
BY_ID = {case.id: case for case in ALL_CASES}
