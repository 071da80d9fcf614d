"""netlab sockets as the terminal shows it: escaped text, v4-mapped pairing, the fast path,
a closed stdout, the table fitted to the terminal, --explain; over real sockets."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
from helpers import ROOT
from test_sockwatch import Chat, json_rows, open_chat, run_cli, wait_for

from netlab import net, tables
from netlab.net import format_address
from netlab.sockets import explain, view
from netlab.sockets.config import STATES, SocketsConfig
from netlab.status import write_status


@pytest.fixture
def chat4() -> Iterator[Chat]:
    """A listener of the test's own on 127.0.0.1 with two connections held open."""
    opened = open_chat("127.0.0.1", clients=2)
    yield opened
    opened.close()


# ---- what reaches the terminal --------------------------------------------------------------

PLANTED = "\x1b]0;PWNED\x07\x1b[31mroot_admin"
MAIN = [sys.executable, "-m", "netlab"]  # what users run: the fast path before Typer


def test_a_planted_nickname_is_shown_escaped_never_obeyed(chat4: Chat, tmp_path) -> None:
    env = {"XDG_RUNTIME_DIR": str(tmp_path)}
    listen = format_address(*chat4.listener.getsockname()[:2])
    client = chat4.address(chat4.clients[0])
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
        write_status(
            {
                "pid": os.getpid(),
                "listen": [listen],
                "clients": [{"nick": PLANTED, "local": listen, "remote": client}],
            }
        )
    shown = "\\x1b]0;PWNED\\x07\\x1b[31mroot_admin"
    for args in ([], ["--format", "csv"], ["--explain"]):
        done = run_cli("--port", str(chat4.port), *args, env=env)
        assert "\x1b" not in done.stdout and "\x07" not in done.stdout
        assert done.stdout.count(shown) == 2, done.stdout  # on both ends
    nicks = [row["nick"] for row in json_rows("--port", str(chat4.port), env=env)]
    assert nicks.count(PLANTED) == 2


def test_an_untrusted_runtime_dir_is_said_once_and_no_nick_is_read(chat4: Chat, tmp_path) -> None:
    planted = tmp_path / "netlab"
    planted.mkdir()
    planted.chmod(0o777)  # as another user would leave it in a shared /tmp
    listen = format_address(*chat4.listener.getsockname()[:2])
    client = {"nick": PLANTED, "local": listen, "remote": chat4.address(chat4.clients[0])}
    (planted / "serve-1.json").write_text(json.dumps({"pid": os.getpid(), "clients": [client]}))
    done = run_cli("--port", str(chat4.port), env={"XDG_RUNTIME_DIR": str(tmp_path)})
    assert done.returncode == 0
    assert done.stderr.count("not using") == 1 and "open to other users" in done.stderr
    assert "root_admin" not in done.stdout


def test_v4_mapped_ends_pair_as_one_connection_with_its_nickname(tmp_path) -> None:
    # A dual-stack listener sees an IPv4 client as ::ffff:127.0.0.1 (bound here to the
    # v4-mapped loopback only), while the client's own end says 127.0.0.1.
    listener = socket.socket(socket.AF_INET6)
    try:
        listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        listener.bind(("::ffff:127.0.0.1", 0))
    except OSError as error:
        listener.close()
        pytest.skip(f"no dual-stack sockets here: {error}")
    listener.listen()
    chat = Chat(listener)
    chat.clients.append(socket.create_connection(("127.0.0.1", chat.port), timeout=5))
    chat.server_ends.append(listener.accept()[0])
    try:
        server_end = chat.server_ends[0]
        local = format_address(*server_end.getsockname()[:2])
        remote = format_address(*server_end.getpeername()[:2])
        assert remote.startswith("[::ffff:127.0.0.1]:")
        env = {"XDG_RUNTIME_DIR": str(tmp_path)}
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
            document = {"nick": "alice", "local": local, "remote": remote}
            write_status({"pid": os.getpid(), "listen": [local], "clients": [document]})
        rows = json_rows("--port", str(chat.port), env=env)
        assert [row["nick"] for row in rows if row["remote"]] == ["alice", "alice"]
        summary = run_cli("--port", str(chat.port), env=env).stdout.splitlines()[-1]
        assert summary.endswith("; 1 connection")
    finally:
        chat.close()


def test_the_fast_path_serves_netlab_sockets_without_typer(chat4: Chat) -> None:
    code = (
        "import sys; from netlab.__main__ import main\n"
        "try: main()\n"
        "finally: print('typer' in sys.modules, file=sys.stderr)"
    )
    args = ["sockets", "--port", str(chat4.port), "-f", "json"]
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0 and done.stderr.strip() == "False", done.stderr
    assert len(json.loads(done.stdout)) == 5
    bad = subprocess.run(
        [*MAIN, "sockets", "--port", "0"], capture_output=True, text=True, timeout=30
    )
    assert bad.returncode == 2 and "--port 0 is not a TCP port" in bad.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["sockets", "--all"],
        ["sockets", "--all", "-f", "json"],
        ["sockets", "--explain"],
        ["--help"],
        ["serve", "--help"],
        ["--version"],
        ["simulate", str(ROOT / "scenarios" / "demo.yaml"), "--speed", "10"],
    ],
)
def test_a_closed_stdout_ends_quietly(args: list[str], chat4: Chat) -> None:
    reader, writer = os.pipe()
    os.close(reader)  # the reader is gone before the first write, as after `| head -1`
    try:
        done = subprocess.run(
            [*MAIN, *args], stdout=writer, stderr=subprocess.PIPE, text=True, timeout=30
        )
    finally:
        os.close(writer)
    assert (done.returncode, done.stderr) == (0, "")


def test_head_takes_one_line_of_a_long_listing(chat4: Chat) -> None:
    crowd = []  # 800 more rows, 90 KB: more than a pipe holds, so a write meets the closed end
    for _ in range(400):
        crowd.append(socket.create_connection(("127.0.0.1", chat4.port), timeout=5))
        crowd.append(chat4.listener.accept()[0])
    try:
        head_one_line(chat4.port)
    finally:
        for sock in crowd:  # reset: 400 TIME_WAITs would linger into other tests' ports
            net.reset(sock)


def head_one_line(port: int) -> None:
    for fmt in ("table", "json"):
        netlab = subprocess.Popen(
            [*MAIN, "sockets", "--port", str(port), "-f", fmt],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        first = netlab.stdout.readline()
        netlab.stdout.close()
        assert netlab.wait(timeout=30) == 0
        assert first and netlab.stderr.read() == b""
        netlab.stderr.close()


# ---- the table fitted to the terminal ---------------------------------------------------------


def readme_rows() -> list[dict]:
    """The rows of the README's sample: a listener, bob's and alice's connections."""
    row = dict.fromkeys(["proto", "recv_q", "send_q", "pid", "process", "side", "nick"])
    listen, rows = "127.0.0.1:55555", []
    rows.append({**row, "proto": "tcp", "recv_q": 0, "send_q": 0, "local": listen})
    for port, nick in ((54652, "bob"), (54666, "alice")):
        client = f"127.0.0.1:{port}"
        for local, remote, side in ((client, listen, "client"), (listen, client, "server")):
            rows.append({**rows[0], "local": local, "remote": remote, "nick": nick, "side": side})
    for one in rows:
        one.update(remote=one.get("remote"), state="ESTABLISHED", pid=21269, process="netlab")
    rows[0]["state"] = "LISTEN"
    return rows


def test_columns_go_in_the_fixed_order_and_nick_and_state_never() -> None:
    rows = readme_rows()
    columns = SocketsConfig(port=55555).columns()
    full = view.fit(rows, columns, None)
    assert list(full.columns) == list(columns) and not full.compact
    order = [key for what, key in view.FIT_STEPS if what == "drop"]
    assert order[0] == "proto"
    for width in range(130, 9, -1):
        layout = view.fit(rows, columns, width)
        text = view.table(rows, columns, "table", width)
        measured = max(tables.cell_width(line) for line in text.splitlines())
        cells = {k: max(view._cells(r.get(k)) for r in rows) for k in layout.columns}
        assert measured == layout.width(cells)  # the estimate is what tabulate draws
        assert {"nick", "state"} <= set(layout.columns)
        assert measured <= width or list(layout.columns) == ["local", "remote", "state", "nick"]
        dropped = {key for key in columns if key not in layout.columns}
        assert dropped == set(order[: len(dropped)])  # always the first ones of the order
    at_80 = view.table(rows, columns, "table", 80).splitlines()
    assert at_80[0].split() == [
        *("Recv-Q", "Send-Q", "Local", "Foreign", "State", "Program", "Side", "Nick")
    ]


def spawn(args: list[str], columns: int, env: dict | None = None):
    pexpect = pytest.importorskip("pexpect")
    return pexpect.spawn(
        sys.executable,
        ["-m", "netlab", "sockets", *args],
        env={**os.environ, **(env or {}), "TERM": "xterm"},
        encoding="utf-8",
        timeout=15,
        dimensions=(40, columns),
    )


@pytest.fixture
def room(server_factory, tmp_path):
    """A real netlab serve with alice and bob in the room, their nicks published."""
    env = {"XDG_RUNTIME_DIR": str(tmp_path)}
    server = server_factory(env=env)
    peers = [server.connect(nick) for nick in ("alice", "bob")]

    def published() -> bool:
        rows = json_rows("--port", str(server.port), env=env)
        return sum(1 for row in rows if row["nick"]) == 4

    wait_for(published)
    yield server, env, peers
    for peer in peers:
        peer.close()


def test_a_terminal_of_80_columns_gets_the_fitted_table(room) -> None:
    server, env, _ = room
    pexpect = pytest.importorskip("pexpect")
    child = spawn(["--port", str(server.port)], 80, env)
    child.expect(pexpect.EOF)
    lines = child.before.replace("\r", "").splitlines()
    assert lines[0].split() == [
        *("Recv-Q", "Send-Q", "Local", "Foreign", "State", "Program", "Side", "Nick")
    ]
    assert max(len(line) for line in lines[:-1]) <= 80
    assert {"alice", "bob"} <= {line.split()[-1] for line in lines[2:-1]}
    wide = spawn(["--port", str(server.port), "--wide"], 80, env)
    wide.expect(pexpect.EOF)
    assert wide.before.split()[0] == "Proto" and "PID" in wide.before
    piped = run_cli("--port", str(server.port), env={**env, "COLUMNS": "80"}).stdout
    assert piped.split()[:3] == ["Proto", "Recv-Q", "Send-Q"] and "PID" in piped


def test_watch_fits_80_columns_and_keeps_the_nicks(room) -> None:
    server, env, _ = room
    child = spawn(["--port", str(server.port), "--watch", "--interval", "0.2"], 80, env)
    try:
        child.expect(r"State +Program +Side +Nick")
        child.expect(r"server +alice")
        child.sendintr()
        child.expect(r"connections; \d+ new, \d+ gone")
    finally:
        child.close(force=True)


def test_watch_explain_redraws_the_sentences(chat4: Chat) -> None:
    args = ["--port", str(chat4.port), "--watch", "--explain", "--interval", "0.2"]
    child = spawn(args, 200)  # wide enough for a sentence on one line
    try:
        child.expect("LISTEN: the server's door, it accepts and never carries chat")
        with socket.create_connection(("127.0.0.1", chat4.port), timeout=5) as late:
            accepted, _ = chat4.listener.accept()
            with accepted:
                child.expect(r"new +" + chat4.address(late).replace(".", r"\.") + " -> ")
        child.sendintr()
        child.expect(r"\d+ new, \d+ gone")
    finally:
        child.close(force=True)


# ---- --explain --------------------------------------------------------------------------------


def test_every_state_has_its_sentence() -> None:
    assert set(explain.MEANINGS) == set(STATES)


def test_explain_says_each_row_as_a_teacher_would(room) -> None:
    server, env, peers = room
    listen = f"127.0.0.1:{server.port}"
    bob = format_address(*peers[1].sock.getsockname()[:2])
    peers[1].say("/exit")  # the server answers by closing first: its end waits in TIME_WAIT
    peers[1].read_until_closed()
    peers[1].close()

    def explained() -> list[str] | None:
        done = run_cli("--port", str(server.port), "--all", "--explain", env=env)
        lines = done.stdout.splitlines()
        return lines if any("TIME_WAIT" in line for line in lines) else None

    lines = wait_for(explained)
    said = {line.split(": ", 1)[0]: line for line in lines[:-1]}
    assert said[listen].endswith("LISTEN: the server's door, it accepts and never carries chat.")
    assert f"(netlab, pid {server.proc.pid})" in said[listen]
    alice = format_address(*peers[0].sock.getsockname()[:2])
    assert said[f"{listen} -> {alice}"].startswith(
        f"{listen} -> {alice}: server's end of alice's connection (netlab, pid "
    )
    assert "client's end of alice's connection" in said[f"{alice} -> {listen}"]
    assert said[f"{listen} -> {bob}"].endswith(
        "TIME_WAIT: this side closed first; the kernel keeps it about 60 s so late packets die."
    )
    assert "no process" in said[f"{listen} -> {bob}"]
    assert lines[-1].startswith("4 sockets: 1 LISTEN, 2 ESTABLISHED, 1 TIME_WAIT")


def test_explain_names_a_close_wait_as_a_possible_leak(chat4: Chat) -> None:
    client = chat4.clients.pop()
    address = chat4.address(client)
    client.close()  # the server's end never closes: CLOSE_WAIT there, FIN_WAIT2 here

    def explained() -> list[str] | None:
        lines = run_cli("--port", str(chat4.port), "--all", "--explain").stdout.splitlines()
        return lines if any("CLOSE_WAIT" in line for line in lines) else None

    lines = wait_for(explained)
    (server_end,) = [
        line for line in lines if line.endswith(f"-> {address}") or f"-> {address}:" in line
    ]
    assert (
        "CLOSE_WAIT: the other side has closed and this program has not (a leak if it stays)."
        " The program has not even read the close yet (Recv-Q counts the FIN as 1)."
    ) in server_end
    assert "bytes arrived" not in server_end
    (client_end,) = [line for line in lines if line.startswith(f"{address} -> ")]
    assert "FIN_WAIT2: this side has closed" in client_end


def test_watch_into_a_pipe_writes_each_frame_whole_as_it_is_taken(server):
    """A pipe gets every column (no terminal to fit) and each frame at once, so that
    `tail -f` follows it; Ctrl-C ends it with status 0."""
    import signal
    import subprocess

    from helpers import NETLAB

    watch = subprocess.Popen(
        [*NETLAB, "sockets", "--watch", "--interval", "0.2", "--port", str(server.port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        frames = 0
        header = ""
        while frames < 2:  # two frames arrive while the watch still runs
            line = watch.stdout.readline()
            assert line, watch.stderr.read()
            frames += line.startswith("netlab sockets")
            header = line if "Proto" in line else header
        watch.send_signal(signal.SIGINT)
        _, err = watch.communicate(timeout=10)
    finally:
        watch.kill()
    assert watch.returncode == 0 and "Traceback" not in err
    for title in ("Proto", "Recv-Q", "Send-Q", "PID", "Program", "Side", "Nick", "State"):
        assert title in header
