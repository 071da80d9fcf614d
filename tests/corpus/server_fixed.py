"""A handout-style chat server with the handout's bugs fixed: netlab check's test corpus.

    python server_fixed.py HOST PORT [LIMIT]

The other servers here are this one with ONE classic bug put back (``run(bug=...)``); each
``if self.bug == ...`` below is the broken line next to the fixed one, as docs/check.md shows
them. Like the handout's server, it speaks the handout protocol: ``NICK``, a bare nickname,
then each client's messages stamped and signed by the client, with no newline.
"""

import codecs
import contextlib
import queue
import re
import socket
import sys
import threading
import time

STAMP = r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] "
BOUNDARY = re.compile(rf"(?={STAMP})|\n")
SIGNED = re.compile(rf"{STAMP}([^:\s]+): ")
QUIET = 0.2  # seconds without more bytes that make a held piece a whole message
MAX_PENDING = 1 << 20  # bytes queued for one client before it counts as not reading


class Client:
    def __init__(self, server, sock, nick):
        self.server, self.sock, self.nick = server, sock, nick
        self.out = queue.Queue()
        self.pending = 0
        self.gone = False
        threading.Thread(target=self.write, daemon=True).start()

    def put(self, data):
        if self.server.bug == "blocking-broadcast":
            self.sock.sendall(data)  # BUG: blocks the sender's thread while this reader is full
            return
        self.pending += len(data)
        if self.pending > MAX_PENDING:
            self.server.drop(self)  # fixed: a reader that stopped is dropped, nobody waits
        else:
            self.out.put(data)

    def write(self):
        while (data := self.out.get()) is not None:
            try:
                self.sock.sendall(data)
            except OSError:
                self.server.drop(self)
                return
            self.pending -= len(data)


class Server:
    def __init__(self, host, port, limit, bug):
        self.limit, self.bug = limit, bug
        self.clients = []
        self.lock = threading.RLock()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((host, port))
        self.listener.listen(128)

    def broadcast(self, text, exclude=None):
        data = text.encode("utf-8")
        for client in list(self.clients):
            if client is exclude:
                continue
            if self.bug == "reset-kills":
                client.sock.send(data)  # BUG: a reset receiver raises in the sending thread
                continue
            try:
                client.put(data)
            except OSError:
                self.drop(client)  # fixed: that receiver goes, the sender stays

    def serve(self):
        print("Server is listening...", flush=True)
        try:
            while True:
                if self.bug == "busy-full" and len(self.clients) >= self.limit:
                    continue  # BUG: spins a core, and the newcomer waits in the backlog
                sock, _ = self.listener.accept()
                if len(self.clients) >= self.limit:
                    if self.bug != "silent-full":  # BUG when skipped: closed without a word
                        with contextlib.suppress(OSError):
                            sock.sendall(b"Server is full. Try again later.\n")
                    sock.close()
                    continue
                try:
                    self.admit(sock)
                except OSError:
                    if self.bug == "reset-kills":
                        raise  # BUG: a join notice hitting a reset socket ends the accept loop
                    sock.close()  # fixed: a newcomer that went away costs only itself
        except KeyboardInterrupt:
            for client in list(self.clients):
                self.drop(client, quiet=True)  # fixed: every client gets its FIN

    def admit(self, sock):
        sock.settimeout(5)
        sock.sendall(b"NICK")
        nick = sock.recv(1024).decode("utf-8", "replace").strip()
        sock.settimeout(None)
        reserved = nick if self.bug == "reserved-case" else nick.lower()  # BUG: Admin gets in
        taken = any(c.nick.lower() == nick.lower() for c in self.clients)
        if self.bug == "duplicate":
            taken = False  # BUG: two clients share a name
        if not nick or reserved == "admin" or taken:
            why = "Nickname is taken." if taken else "Reserved nickname. Choose a different one."
            sock.sendall(why.encode() + b"\n")
            sock.close()
            return
        client = Client(self, sock, nick)
        self.broadcast(f"{nick} joined the chat!\n")
        with self.lock:
            self.clients.append(client)
        client.put(b"Connected to server!\n")
        threading.Thread(target=self.handle, args=(client,), daemon=True).start()

    def handle(self, client):
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        held = ""
        while True:
            try:
                client.sock.settimeout(QUIET if held else None)
                data = client.sock.recv(4096)
            except TimeoutError:
                data = None  # quiet: the held piece is a whole message
            except OSError:
                break
            if data == b"":
                if self.bug == "no-close":
                    continue  # BUG: an empty receive taken for a message: spins, never closes
                break
            if self.bug == "ascii" and data:
                text = data.decode("ascii")  # BUG: the first non-ASCII byte kills this thread
            else:
                text = decoder.decode(data or b"")
            pieces = [p for p in BOUNDARY.split(held + text) if p]
            held = pieces.pop() if data and pieces else ""
            for message in pieces:
                if message == f"{client.nick} has left the chat.":
                    self.drop(client)
                    return
                self.relay(client, message)
        self.drop(client)

    def relay(self, client, message):
        signed = SIGNED.match(message)
        if not signed or signed.group(1) != client.nick:  # fixed: nobody speaks as another
            message = f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] {client.nick}: {message}"
        self.broadcast(message + "\n", exclude=None if self.bug == "echo" else client)

    def drop(self, client, quiet=False):
        with self.lock:
            if client.gone:
                return
            client.gone = True
            if client in self.clients:
                self.clients.remove(client)
        client.out.put(None)
        with contextlib.suppress(OSError):
            client.sock.shutdown(socket.SHUT_RDWR)
        client.sock.close()
        if not quiet:
            self.broadcast(f"{client.nick} left the chat.\n")
        print(f"{client.nick} disconnected.", flush=True)


def run(bug=None):
    host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 55555
    limit = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    Server(host, port, limit, bug).serve()


if __name__ == "__main__":
    run()
