"""A handout-style chat client with the handout's bugs fixed: netlab check's test corpus.

    python client_fixed.py HOST PORT

The other clients here are this one with ONE classic bug put back (``run(bug=...)``).
"""

import os
import socket
import sys
import threading
import time


def run(bug=None):
    host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 55555
    encoding = "ascii" if bug == "ascii" else "utf-8"  # BUG: ASCII raises on "Привет"
    nickname = input("Choose your nickname: ")
    client = socket.create_connection((host, port))

    def receive():
        while True:
            try:
                data = client.recv(1024)
            except OSError:
                break
            if not data and bug != "spin-on-loss":
                print("The server closed the connection.", flush=True)
                break  # fixed: b"" is the server's FIN (the handout printed it forever)
            message = data.decode(encoding, "strict")
            if message == "NICK":
                client.send(nickname.encode(encoding))
            else:
                print(message, flush=True)
        os._exit(0)  # input() still blocks the other thread: end the process here

    def write():
        for line in sys.stdin:
            message = line.rstrip("\n")
            if message.lower() == "/exit":
                client.send(f"{nickname} has left the chat.".encode(encoding))
                client.shutdown(socket.SHUT_RDWR)  # fixed: wakes the receiving thread
                return
            if bug == "no-stamp":
                text = f"{nickname}: {message}"  # BUG: no date-time on the message
            else:
                text = f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] {nickname}: {message}"
            client.send(text.encode(encoding))

    threading.Thread(target=receive, daemon=True).start()
    write()
    threading.Event().wait(5)  # the receiving thread ends the process


if __name__ == "__main__":
    run()
