"""netlab sockets over real loopback sockets: rows, filters, formats, queues, nicks, ss."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import psutil
import pytest

from netlab import sockwatch
from netlab.net import format_address
from netlab.sockets import kernel
from netlab.sockwatch import SocketsConfig
from netlab.status import write_status

CLI = [sys.executable, "-c", "from netlab.cli import main; main()", "sockets"]
KEYS = ["proto", "recv_q", "send_q", "local", "remote", "state", "pid", "process", "side", "nick"]


@dataclass
class Chat:
    """A listener of the test's own with clients connected and accepted, all held open."""

    listener: socket.socket
    clients: list[socket.socket] = field(default_factory=list)
    server_ends: list[socket.socket] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.listener.getsockname()[1]

    def address(self, sock: socket.socket) -> str:
        return format_address(*sock.getsockname()[:2])

    def close(self) -> None:
        for sock in [*self.clients, *self.server_ends, self.listener]:
            sock.close()


def open_chat(host: str, clients: int = 3) -> Chat:
    chat = Chat(socket.create_server((host, 0), family=_family(host)))
    for _ in range(clients):
        chat.clients.append(socket.create_connection((host, chat.port), timeout=5))
        chat.server_ends.append(chat.listener.accept()[0])
    return chat


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


@pytest.fixture(params=["127.0.0.1", "::1"])
def chat(request) -> Iterator[Chat]:
    if request.param == "::1" and not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        opened = open_chat(request.param)
    except OSError as error:
        pytest.skip(f"cannot listen on {request.param}: {error}")
    yield opened
    opened.close()


@pytest.fixture
def chat4() -> Iterator[Chat]:
    opened = open_chat("127.0.0.1", clients=2)
    yield opened
    opened.close()


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **(env or {})},
    )


def json_rows(*args: str, env: dict | None = None) -> list[dict]:
    done = run_cli(*args, "--format", "json", env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def wait_for(condition: Callable[[], object], timeout: float = 10.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def by_local(rows: list[dict]) -> dict[str, dict]:
    return {row["local"]: row for row in rows}


# ---- rows ------------------------------------------------------------------------------------


def test_port_filter_shows_listen_and_both_ends_with_sides(chat: Chat) -> None:
    rows = json_rows("--port", str(chat.port))
    listen = format_address(*chat.listener.getsockname()[:2])
    assert rows[0]["state"] == "LISTEN" and rows[0]["local"] == listen
    assert rows[0]["remote"] is None and rows[0]["side"] == "server"
    rows_by_local = by_local(rows[1:])
    for client, server_end in zip(chat.clients, chat.server_ends, strict=True):
        client_row = rows_by_local[chat.address(client)]
        assert (client_row["remote"], client_row["side"]) == (listen, "client")
        assert client_row["state"] == "ESTABLISHED"
        # Every server-side end has the same local address; find it by its remote.
        server_rows = [r for r in rows if r["remote"] == chat.address(client)]
        assert [r["side"] for r in server_rows] == ["server"]
        assert server_rows[0]["local"] == chat.address(server_end) == listen
    assert len(rows) == 1 + 2 * len(chat.clients)
    me = psutil.Process()
    assert {(row["pid"], row["process"]) for row in rows} == {(me.pid, me.name())}


def test_json_keys_and_value_forms(chat: Chat) -> None:
    rows = json_rows("--port", str(chat.port))
    assert all(list(row) == KEYS for row in rows)
    proto = "tcp6" if chat.listener.family == socket.AF_INET6 else "tcp"
    host = "[::1]" if proto == "tcp6" else "127.0.0.1"
    for row in rows:
        assert row["proto"] == proto
        assert re.fullmatch(re.escape(host) + r":\d+", row["local"])
        assert row["remote"] is None or re.fullmatch(re.escape(host) + r":\d+", row["remote"])
        assert isinstance(row["recv_q"], int) and isinstance(row["send_q"], int)
        assert row["nick"] is None
    # Without --port there is no side.
    assert "side" not in json_rows("--pid", str(os.getpid()))[0]


def test_rows_are_sorted_listen_first_then_by_local_address(chat4: Chat) -> None:
    rows = sockwatch.snapshot(SocketsConfig(port=chat4.port)).rows
    assert [row["state"] for row in rows][:1] == ["LISTEN"]
    ports = [int(row["local"].rsplit(":", 1)[1]) for row in rows[1:]]
    assert ports == sorted(ports)


def test_time_wait_is_held_by_the_side_that_closed_first(chat4: Chat) -> None:
    client, server_end = chat4.clients.pop(), chat4.server_ends.pop()
    client_address = chat4.address(client)
    client.close()  # the client closes first ...
    server_end.close()  # ... so after the server's close, the client's end waits in TIME_WAIT

    def time_wait_rows() -> list[dict]:
        rows = sockwatch.snapshot(SocketsConfig(port=chat4.port, states={"TIME_WAIT"})).rows
        return [row for row in rows if row["local"] == client_address]

    (row,) = wait_for(time_wait_rows)
    assert row["state"] == "TIME_WAIT" and row["side"] == "client"
    assert row["pid"] is None and row["process"] is None  # the kernel holds it, no process
    cli_rows = json_rows("--port", str(chat4.port), "--state", "time_wait")
    assert [r["local"] for r in cli_rows] == [client_address]
    # The default view (LISTEN, ESTABLISHED) no longer shows that connection at all.
    assert client_address not in by_local(json_rows("--port", str(chat4.port)))


def test_pid_filter(chat4: Chat) -> None:
    mine = json_rows("--port", str(chat4.port), "--pid", str(os.getpid()))
    assert len(mine) == 5 and {row["pid"] for row in mine} == {os.getpid()}
    assert json_rows("--port", str(chat4.port), "--pid", "1") == []


def test_recv_q_grows_when_nobody_reads(chat4: Chat) -> None:
    chat4.clients[0].sendall(b"x" * 5000)  # the server end never reads it
    client_address = chat4.address(chat4.clients[0])

    def server_row() -> dict | None:
        rows = sockwatch.snapshot(SocketsConfig(port=chat4.port)).rows
        row = next(r for r in rows if r["remote"] == client_address)
        return row if row["recv_q"] else None

    assert wait_for(server_row)["recv_q"] == 5000


# ---- formats and arguments ------------------------------------------------------------------


def test_table_csv_and_github_formats(chat4: Chat) -> None:
    table = run_cli("--port", str(chat4.port)).stdout.splitlines()
    assert table[0].split()[:3] == ["Proto", "Recv-Q", "Send-Q"]
    assert "Side" in table[0] and "Nick" in table[0]
    assert table[-1] == "5 sockets: 1 LISTEN, 4 ESTABLISHED; 2 connections"
    csv_lines = run_cli("--port", str(chat4.port), "--format", "csv").stdout.splitlines()
    assert csv_lines[0] == ",".join(KEYS) and len(csv_lines) == 6
    github = run_cli("--port", str(chat4.port), "-f", "github").stdout.splitlines()
    assert github[0].startswith("| Proto") and github[1].startswith("|--")


def test_no_match_prints_an_empty_json_list_and_exits_0() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = run_cli("--port", str(port), "--format", "json")
    assert (done.returncode, done.stdout.strip()) == (0, "[]")
    table = run_cli("--port", str(port))
    assert table.returncode == 0 and "no sockets match" in table.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "0"], "--port"),
        (["--port", "70000"], "--port"),
        (["--state", "WAITING"], "unknown --state WAITING"),
        (["--format", "fancy"], "unknown format 'fancy'"),
        (["--kind", "sctp"], "--kind"),
        (["--watch", "--format", "json"], "--watch"),
        (["--explain", "--format", "csv"], "--explain writes sentences"),
        (["--watch", "--interval", "inf"], "--interval"),
        (["--interval", "nan"], "--interval"),
    ],
)
def test_bad_arguments_exit_non_zero_with_a_message(args: list[str], message: str) -> None:
    done = run_cli(*args)
    assert done.returncode == 2
    assert message in " ".join(done.stderr.replace("│", " ").split())
    assert "Traceback" not in done.stderr + done.stdout


def test_every_option_has_help() -> None:
    text = " ".join(run_cli("--help", env={"COLUMNS": "200"}).stdout.split())
    for option in ["--port", "--state", "--all", "--pid", "--kind", "--format", "--watch"]:
        assert re.search(re.escape(option) + r"\b.*?\s[A-Z][a-z]", text), option


def test_state_table_matches_psutil() -> None:
    linux = pytest.importorskip("psutil._pslinux")
    for code, name in linux.TCP_STATUSES.items():
        assert sockwatch.TCP_STATES[int(code, 16)] == name


# ---- agreement with ss -------------------------------------------------------------------


def ss_rows(port: int) -> set[tuple[str, str | None, str, int | None]]:
    out = subprocess.run(
        ["ss", "-tanpH", f"( sport = :{port} or dport = :{port} )"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    states = {"ESTAB": "ESTABLISHED", "LISTEN": "LISTEN"}
    rows = set()
    for line in out.splitlines():
        state, _, _, local, remote, *process = line.split()
        if state in states:
            pid = re.search(r"pid=(\d+)", " ".join(process))
            remote_address = None if remote.endswith(":*") else remote
            rows.add((local, remote_address, states[state], int(pid.group(1)) if pid else None))
    return rows


def test_rows_agree_with_ss(chat: Chat) -> None:
    if shutil.which("ss") is None:
        pytest.skip("ss (iproute2) is not installed")
    ours = {
        (row["local"], row["remote"], row["state"], row["pid"])
        for row in json_rows("--port", str(chat.port))
    }
    assert ours == ss_rows(chat.port)


# ---- nicknames ---------------------------------------------------------------------------


def test_nick_from_the_status_file_on_both_ends(chat4: Chat, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    listen = format_address(*chat4.listener.getsockname()[:2])
    alice = chat4.address(chat4.clients[0])
    write_status(
        {
            "pid": os.getpid(),
            "listen": [listen],
            "started": time.time(),
            "clients": [{"nick": "alice", "local": listen, "remote": alice}],
        }
    )
    rows = json_rows("--port", str(chat4.port), env={"XDG_RUNTIME_DIR": str(tmp_path)})
    nicks = {(row["local"], row["remote"]): row["nick"] for row in rows}
    assert nicks[(listen, alice)] == "alice"  # server-side end
    assert nicks[(alice, listen)] == "alice"  # client-side end
    assert sum(1 for nick in nicks.values() if nick) == 2


def test_nicks_of_a_real_netlab_serve(server_factory, tmp_path) -> None:
    env = {"XDG_RUNTIME_DIR": str(tmp_path)}
    server = server_factory(env=env)
    peers = [server.connect(nick) for nick in ("alice", "bob")]
    try:
        addresses = {
            format_address(*peer.sock.getsockname()[:2]): nick
            for peer, nick in zip(peers, ("alice", "bob"), strict=True)
        }

        def named_rows() -> list[dict] | None:
            rows = json_rows("--port", str(server.port), env=env)
            named = [row for row in rows if row["nick"]]
            return rows if len(named) == 4 else None

        rows = wait_for(named_rows)
        for address, nick in addresses.items():
            ends = [row for row in rows if address in (row["local"], row["remote"])]
            assert sorted(row["side"] for row in ends) == ["client", "server"]
            assert {row["nick"] for row in ends} == {nick}
        assert {row["pid"] for row in rows if row["side"] == "server"} == {server.proc.pid}
    finally:
        for peer in peers:
            peer.close()


# ---- --watch -------------------------------------------------------------------------------


def test_watch_marks_new_sockets_and_leaves_on_ctrl_c(chat4: Chat) -> None:
    pexpect = pytest.importorskip("pexpect")
    child = pexpect.spawn(
        CLI[0],
        [*CLI[1:], "--port", str(chat4.port), "--watch", "--interval", "0.2"],
        env={**os.environ, "COLUMNS": "160", "TERM": "xterm"},
        encoding="utf-8",
        timeout=15,
        dimensions=(40, 160),
    )
    try:
        child.expect("2 connections")
        with contextlib.closing(socket.create_connection(("127.0.0.1", chat4.port))) as late:
            accepted, _ = chat4.listener.accept()
            with accepted:
                child.expect(r"new .*" + re.escape(chat4.address(late)))
        child.expect("gone")  # the closed connection shows for one more frame
        child.sendintr()
        child.expect(pexpect.EOF)
        assert "Traceback" not in (child.before or "")
    finally:
        child.close(force=True)
    assert child.exitstatus == 0


@pytest.mark.skipif(not os.path.isdir("/proc/net"), reason="Linux only")
def test_netlink_and_proc_net_agree(chat: Chat) -> None:
    # Both readers of the kernel's table: sock_diag first, /proc/net/tcp where it is refused.
    chat.clients[0].sendall(b"unread")  # a Recv-Q on one server end
    closed = chat.clients.pop()
    closed.close()  # a FIN_WAIT2 / CLOSE_WAIT pair
    config = sockwatch.SocketsConfig(port=chat.port, all_states=True)
    try:
        list(kernel.sock_diag("tcp", config))
    except OSError:
        pytest.skip("sock_diag is refused here")

    def agree() -> bool:  # read again each time: the FIN may still be on its way
        return all(
            set(kernel.sock_diag(proto, config)) == set(kernel.read_proc_net(proto, config))
            for proto in ("tcp", "tcp6")
        )

    wait_for(agree, 5)
    rows = sockwatch.snapshot(config).rows
    assert {row["state"] for row in rows} >= {"LISTEN", "ESTABLISHED", "CLOSE_WAIT"}
    assert 6 in {row["recv_q"] for row in rows}
