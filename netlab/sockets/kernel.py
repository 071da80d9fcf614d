"""Linux's socket tables: TCP over netlink sock_diag (as ss reads them), and /proc/net.

Both give the Recv-Q/Send-Q that psutil leaves out. Rows the filter drops are dropped before
any address is decoded, which keeps a machine with 10,000 sockets fast: sock_diag runs the
state and port filters in the kernel, and /proc/net lines are searched as bytes first.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

from netlab.sockets.config import NO_STATE, TCP_STATES, Address, Conn, SocketsConfig

DIAG_FAMILIES = {"tcp": socket.AF_INET, "tcp6": socket.AF_INET6}
"""The tables sock_diag serves here; UDP is read from /proc/net."""


def read_table(proto: str, config: SocketsConfig) -> list[Conn]:
    """TCP over netlink, as ss reads it; /proc/net where netlink is refused, and for UDP."""
    if proto in DIAG_FAMILIES:
        try:
            return list(sock_diag(proto, config))
        except OSError:
            pass  # no sock_diag here (a container may refuse it): the text table serves
    return list(read_proc_net(proto, config))


# sock_diag (linux/inet_diag.h): a dump of the kernel's TCP sockets in binary, with the states
# filtered in the kernel. It skips the 10,000 lines of text /proc/net/tcp makes the kernel
# format, which was most of the time of `netlab sockets` on a busy machine.
_NETLINK_SOCK_DIAG, _SOCK_DIAG_BY_FAMILY = 4, 20
_NLM_F_REQUEST, _NLM_F_DUMP = 0x1, 0x300
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_NLMSG = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
_DIAG_REQUEST = struct.Struct("=BBBxI48x")  # family, protocol, extensions, states, socket id
_DIAG_PORTS = struct.Struct(">HH")  # source and destination port, network byte order
_DIAG_QUEUES = struct.Struct("=III4xI")  # expires, rqueue, wqueue, (uid), inode


def sock_diag(proto: str, config: SocketsConfig) -> Iterator[Conn]:
    """The TCP sockets of ``proto`` ("tcp" or "tcp6") that ``config`` wants; OSError where
    the kernel refuses the dump."""
    family = DIAG_FAMILIES[proto]
    wanted = [n for n, name in enumerate(TCP_STATES) if name and config.wants_state(name)]
    states = sum(1 << n for n in wanted)
    request = _DIAG_REQUEST.pack(family, socket.IPPROTO_TCP, 0, states)
    if config.port:
        request += _port_filter(config.port)
    header = _NLMSG.pack(
        _NLMSG.size + len(request), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST | _NLM_F_DUMP, 1, 0
    )
    size = 4 if family == socket.AF_INET else 16
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG) as link:
        link.settimeout(5)
        link.sendall(header + request)
        while True:
            data = link.recv(1 << 20)
            at = 0
            while at + _NLMSG.size <= len(data):
                length, kind, _, _, _ = _NLMSG.unpack_from(data, at)
                if kind == _NLMSG_DONE:
                    return
                if kind == _NLMSG_ERROR or length < _NLMSG.size:
                    raise OSError("sock_diag refused the dump")
                body = at + _NLMSG.size  # struct inet_diag_msg
                local_port, remote_port = _DIAG_PORTS.unpack_from(data, body + 4)
                if not config.port or config.port in (local_port, remote_port):
                    state = tcp_state(data[body + 1])
                    _, rqueue, wqueue, inode = _DIAG_QUEUES.unpack_from(data, body + 52)
                    local = socket.inet_ntop(family, data[body + 8 : body + 8 + size])
                    remote = socket.inet_ntop(family, data[body + 24 : body + 24 + size])
                    yield Conn(
                        proto,
                        Address(local, local_port),
                        Address(remote, remote_port) if remote_port else None,
                        state,
                        inode,
                        None,
                        rqueue,
                        # A listener's wqueue is its backlog limit; netstat shows 0 there.
                        0 if state == "LISTEN" else wqueue,
                    )
                at += (length + 3) & ~3


_INET_DIAG_REQ_BYTECODE, _BC_JMP, _BC_S_EQ, _BC_D_EQ = 1, 1, 11, 12
_BC_OP = struct.Struct("=BBH")  # code, bytes to skip when true, bytes to skip when false


def _port_filter(port: int) -> bytes:
    """Kernel-side ``sport == port or dport == port``, built as ss builds it, so that the
    sockets of other ports never leave the kernel. A program accepts by running exactly to its
    end and rejects by jumping 4 bytes past it; a port test is two ops, the second holding the
    port; every jump target must lie on the chain of "true" jumps (the kernel checks)."""
    program = (
        _BC_OP.pack(_BC_S_EQ, 8, 12)  # local port: on to the JMP; else to the remote test
        + _BC_OP.pack(0, 0, port)
        + _BC_OP.pack(_BC_JMP, 4, 12)  # always "false": jump to the end, accepted
        + _BC_OP.pack(_BC_D_EQ, 8, 12)  # remote port: to the end, accepted; else rejected
        + _BC_OP.pack(0, 0, port)
    )
    return struct.pack("=HH", 4 + len(program), _INET_DIAG_REQ_BYTECODE) + program


def read_proc_net(proto: str, config: SocketsConfig) -> Iterator[Conn]:
    """Parse /proc/net/<proto>; lines the port filter drops are never decoded."""
    # Lines read: "sl local_address rem_address st tx_queue:rx_queue tr tm->when retrnsmt uid
    # timeout inode ...", addresses as hex "IP:PORT" with the IP in the host's byte order.
    # ":PORT " with its colon and space can only be the local or the remote port.
    port_hex = f":{config.port:04X} ".encode() if config.port else b""
    try:
        with open(f"/proc/net/{proto}", "rb") as table:
            # One read and a bytes search: with 10,000 sockets, a loop over text lines costs
            # more than the kernel takes to write them.
            lines = table.read().splitlines()[1:]  # without the header
    except FileNotFoundError:  # no IPv6 in this kernel
        return
    for raw_line in lines:
        if port_hex in raw_line:
            line = raw_line.decode("ascii")
            _, local, remote, state, queues, _, _, _, _, inode, *_ = line.split()
            state = tcp_state(int(state, 16)) if proto.startswith("tcp") else NO_STATE
            if not config.wants_state(state):
                continue
            local_address, remote_address = _decode(local), _decode(remote)
            send_q, recv_q = (int(queue, 16) for queue in queues.split(":"))
            yield Conn(
                proto,
                local_address,
                remote_address if remote_address.port else None,
                state,
                int(inode),
                None,
                recv_q,
                send_q,
            )


def tcp_state(number: int) -> str:
    # A state a newer kernel adds is shown by its number rather than ending the listing.
    return TCP_STATES[number] if 0 < number < len(TCP_STATES) else f"STATE_{number}"


def _decode(hex_address: str) -> Address:
    """ "0100007F:D903" -> ("127.0.0.1", 55555); IPv6 is four 32-bit words in host order."""
    hex_ip, hex_port = hex_address.split(":")
    words = [int(hex_ip[i : i + 8], 16) for i in range(0, len(hex_ip), 8)]
    family = socket.AF_INET if len(words) == 1 else socket.AF_INET6
    return Address(
        socket.inet_ntop(family, struct.pack(f"={len(words)}I", *words)), int(hex_port, 16)
    )
