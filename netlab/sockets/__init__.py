"""The parts of ``netlab sockets`` (its entry module is netlab/sockwatch.py).

- ``config``: what was asked (``SocketsConfig``), the TCP state names, one socket (``Conn``).
- ``kernel``: Linux's socket tables, over netlink sock_diag and from /proc/net.
- ``sources``: which table serves (kernel or psutil), owners by inode, process names.
- ``rows``: one snapshot as rows with the JSON keys, nicknames paired onto both ends, the summary.
- ``explain``: each row said in words, for ``--explain``.
- ``view``: the table fitted to the terminal, and the ``--watch`` live view.
"""
