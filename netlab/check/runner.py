"""``netlab check``: what to check (a target, a command, a client, many files), running the
cases in order, a fresh program for each case, and the exit status."""

from __future__ import annotations

import fnmatch
import glob
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from netlab import net
from netlab import protocol as p
from netlab.bounds import positive
from netlab.check import process, report, wire
from netlab.check.cases_client import ClientCtx
from netlab.check.ctx import Ctx, Options
from netlab.check.model import (
    AUTO,
    PROTOCOLS,
    Case,
    Failed,
    Needs,
    Outcome,
    Result,
    Skipped,
    SkipReason,
    Verdict,
)
from netlab.check.registry import ALL_CASES, CLIENT_CASES, SERVER_CASES

FORMATS = ("table", "json", "junit")
HOST = "127.0.0.1"
START_WAIT = 15.0
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
EXIT_INTERRUPTED = 130  # as shells report a Ctrl-C


class UsageError(ValueError):
    pass


@dataclass(frozen=True)
class CheckConfig:
    target: str | None = None
    protocol: str = "handout"
    client: bool = False
    each: str | None = None
    cases: tuple[str, ...] = ()
    list_cases: bool = False
    timeout: float = 10.0
    format: str = "table"
    kick_command: str | None = None
    limit_probe: int = 64
    command: tuple[str, ...] = ()
    html: str | None = None
    """Also draw the report as one self-contained HTML file here (netlab/html/check.py)."""
    progress: bool | None = None  # None: when stderr is a terminal

    def validate(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise UsageError(
                f"unknown --protocol {self.protocol!r}; choose one of {', '.join(PROTOCOLS)}"
            )
        if self.format not in FORMATS:
            raise UsageError(
                f"unknown --format {self.format!r}; choose one of {', '.join(FORMATS)}"
            )
        if not positive(self.timeout):
            raise UsageError("--timeout must be a finite number of seconds, more than 0")
        if self.limit_probe < 1:
            raise UsageError("--limit-probe must be at least 1")
        if self.html:
            from netlab import html

            if problem := html.unwritable(self.html):
                raise UsageError(f"--html: {problem}")
        if self.list_cases:
            return
        if self.target and (self.command or self.client or self.each):
            raise UsageError(
                "--target checks a running server: give no -- CMD, --client or --each with it"
            )
        if self.target:
            parse_target(self.target)
        elif not self.command:
            raise UsageError(
                "nothing to check: give --target HOST:PORT or -- CMD ARGS... (see --help)"
            )
        if self.each and not any("{file}" in arg for arg in self.command):
            raise UsageError(
                "--each needs {file} in the command, e.g. -- python {file} {host} {port}"
            )
        if self.cases and not self.selected():
            raise UsageError(f"no case matches --cases {' '.join(self.cases)} (see --list)")

    def selected(self) -> list[Case]:
        pool = CLIENT_CASES if self.client else SERVER_CASES
        if self.list_cases and not self.client:
            pool = ALL_CASES
        if not self.cases:
            return list(pool)
        return [
            case for case in pool if any(fnmatch.fnmatchcase(case.id, pat) for pat in self.cases)
        ]


def parse_target(text: str) -> tuple[str, int]:
    try:
        return net.parse_address(text)
    except ValueError as exc:
        raise UsageError(f"--target: {exc}") from None


def admin_password(config: CheckConfig) -> str:
    """What ``{password}`` in --kick-command stands for: the command's ``--admin-password``
    (as netlab serve takes it), else $NETLAB_ADMIN_PASSWORD."""
    args = list(config.command)
    for i, arg in enumerate(args):
        if arg == "--admin-password" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--admin-password="):
            return arg.split("=", 1)[1]
    return os.environ.get("NETLAB_ADMIN_PASSWORD", "")


# -- running -------------------------------------------------------------------------------


def _skip_reason(case: Case, config: CheckConfig, protocol: str) -> Skipped | None:
    if protocol not in case.protocols and protocol != AUTO:
        return Skipped(SkipReason.PROTOCOL, protocol)
    if Needs.KICK in case.needs and not config.kick_command:
        return Skipped(SkipReason.OPTION, "give --kick-command, e.g. '/login secret;/kick {nick}'")
    if Needs.PROCESS in case.needs and config.target:
        return Skipped(SkipReason.PROCESS)
    return None


def run_case(case: Case, body: Callable[[], tuple[Any, Callable[[], None]]]) -> Result:
    """Run one case: ``body`` sets up (returning the context and its teardown)."""
    began = time.monotonic()
    log: wire.WireLog | None = None
    teardown: Callable[[], None] = lambda: None  # noqa: E731
    try:
        ctx, teardown = body()
        log = ctx.log
        verdict = _judge(case, ctx)
    except process.StartError as exc:
        verdict = Verdict(Outcome.FAIL, f"could not start it for this case: {exc}")
    finally:
        teardown()
    lesson = None
    if verdict.outcome in (Outcome.FAIL, Outcome.WARN):
        lesson = f"{case.lesson} (see {case.anchor})"
    return Result(
        case.id,
        case.section,
        verdict.outcome,
        verdict.expected or case.checks,
        verdict.observed,
        lesson,
        time.monotonic() - began,
        log.export() if log else [],
    )


def _judge(case: Case, ctx: Any) -> Verdict:
    try:
        return case.run(ctx)
    except Failed as exc:
        return Verdict(Outcome.FAIL, str(exc))
    except Skipped as exc:
        return Verdict(Outcome.SKIP, str(exc))
    except OSError as exc:
        died = _died(ctx)
        why = died or f"at step {ctx.step_no} ({ctx.step_label}) the connection failed: {exc}"
        return Verdict(Outcome.FAIL, why)
    except Exception as exc:  # netlab's own failure, never the student's...
        if died := _died(ctx):  # ...unless the server died under it
            return Verdict(Outcome.FAIL, died)
        return Verdict(Outcome.ERROR, f"netlab check failed: {exc!r}")


def _died(ctx: Any) -> str:
    check = getattr(ctx, "check_alive", None)
    if check is None:
        return ""
    try:
        check(0.3)
    except Failed as exc:
        return str(exc)
    return ""


def skipped(case: Case, reason: Skipped) -> Result:
    return Result(case.id, case.section, Outcome.SKIP, case.checks, str(reason), None, 0.0)


class ServerRun:
    """The server cases against one server: a target, or a command started for each case."""

    def __init__(self, config: CheckConfig, file: str = "") -> None:
        self.config, self.file = config, file
        self.protocol = config.protocol
        self.started_once = False

    def options(self) -> Options:
        c = self.config
        return Options(self.protocol, c.timeout, c.kick_command, c.limit_probe, admin_password(c))

    def start(self) -> tuple[process.Program | None, str, int]:
        if self.config.target:
            host, port = parse_target(self.config.target)
            return None, host, port
        program, port = process.start_server(self.config.command, HOST, START_WAIT, self.file)
        self.started_once = True
        return program, HOST, port

    def reachable(self) -> None:
        """Raises StartError when nothing can be checked at all (exit status 3)."""
        if self.config.target:
            host, port = parse_target(self.config.target)
            if not process.server_side(port, "LISTEN") or host not in (
                "127.0.0.1",
                "::1",
                "localhost",
            ):
                probe = wire.Peer.connect(host, port, "probe", "lines", wire.WireLog(), 3.0)
                probe.reset()
        else:
            program, _, _ = self.start()
            assert program is not None
            program.stop()

    def detect(self) -> str:
        program, host, port = self.start()
        try:
            return detect_protocol(host, port)
        finally:
            if program:
                program.stop()

    def cases(self, cases: list[Case]) -> Iterator[Result]:
        for index, case in enumerate(cases):
            if reason := _skip_reason(case, self.config, self.protocol):
                yield skipped(case, reason)
                continue
            suffix = str(index) if self.config.target else ""

            def body(suffix: str = suffix) -> tuple[Ctx, Callable[[], None]]:
                program, host, port = self.start()
                ctx = Ctx(host, port, self.options(), program, suffix)

                def teardown() -> None:
                    ctx.close_all()
                    if program:
                        program.stop()

                return ctx, teardown

            yield run_case(case, body)


def detect_protocol(host: str, port: int) -> str:
    """``auto``: the first bytes tell NICK or not; a welcome that ends in a newline, after a
    nickname with one, tells a netlab server from the handout's."""
    peer = wire.Peer.connect(host, port, "probe", "netlab", wire.WireLog(), 3.0)
    try:
        wire.wait([peer], lambda: len(peer.received) >= len(p.PROMPT) or peer.eof, 2.0)
        if bytes(peer.received[: len(p.PROMPT)]) != p.PROMPT:
            return "lines"
        peer.send(p.encode_line("netlabprobe"))
        connected = p.CONNECTED.encode()
        wire.wait([peer], lambda: connected in peer.received or peer.eof, 2.0)
        at = peer.received.find(connected)
        wire.wait([peer], lambda: b"\n" in peer.received[at:], 0.5)
        return "netlab" if at >= 0 and b"\n" in peer.received[at:] else "handout"
    finally:
        peer.reset()  # the handout's server only lets go of a reset


class ClientRun:
    def __init__(self, config: CheckConfig, file: str = "") -> None:
        self.config, self.file = config, file
        self.protocol = config.protocol

    def cases(self, cases: list[Case]) -> Iterator[Result]:
        for case in cases:
            if reason := _skip_reason(case, self.config, self.protocol):
                yield skipped(case, reason)
                continue

            def body() -> tuple[ClientCtx, Callable[[], None]]:
                ctx = ClientCtx(
                    self.config.command, self.protocol, HOST, self.config.timeout, self.file
                )
                return ctx, lambda: self._done(ctx)

            yield run_case(case, body)

    def reachable(self) -> None:
        """The client's program must at least exist (exit status 3 otherwise)."""
        argv = process.substitute(self.config.command, host=HOST, port="1", file=self.file)
        if shutil.which(argv[0]) is None:
            raise process.StartError(f"cannot run {argv[0]!r}: no such program")

    def _done(self, ctx: ClientCtx) -> None:
        if self.protocol == AUTO and ctx.protocol != AUTO:
            self.protocol = ctx.protocol  # the first handshake told
        ctx.close_all()


# -- the command ---------------------------------------------------------------------------


@dataclass
class Submission:
    file: str
    protocol: str
    results: list[Result] = field(default_factory=list)


def check(config: CheckConfig) -> int:
    """``netlab check``: print the report; the exit status (0, 1, 2 or 3)."""
    try:
        config.validate()
    except UsageError as exc:
        print(f"netlab check: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if config.list_cases:
        print(report.case_list(config.selected(), config.format))
        return EXIT_OK
    files = [""]
    if config.each:
        files = sorted(glob.glob(config.each, recursive=True))
        if not files:
            print(f"netlab check: --each {config.each!r} matches no file", file=sys.stderr)
            return EXIT_USAGE
    submissions: list[Submission] = []
    unreachable = 0
    target = config.target or " ".join(config.command)
    try:
        for file in files:
            try:
                _run_one(config, file, submissions)
            except Unreachable as exc:
                where = config.target or file or ("the client" if config.client else "the server")
                print(
                    f"netlab check: {where}: could not be reached or started: {exc}",
                    file=sys.stderr,
                )
                if not config.each:
                    return EXIT_UNREACHABLE
                unreachable += 1  # the teacher's table still gets its row, every case failed
                submissions.append(_not_started(config, file, str(exc)))
    except KeyboardInterrupt:
        process.stop_all()  # each program runs in a session of its own: Ctrl-C missed them
        if any(s.results for s in submissions):
            print(report.render(target, submissions, config.format, each=bool(config.each)))
        print(
            "netlab check: interrupted (Ctrl-C): the cases shown are those that finished",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    if unreachable == len(files):
        return EXIT_UNREACHABLE
    print(report.render(target, submissions, config.format, each=bool(config.each)))
    if config.html and not _write_html(
        config.html, report.document(target, submissions, bool(config.each))
    ):
        return EXIT_USAGE
    failed = any(r.outcome is Outcome.FAIL for s in submissions for r in s.results)
    return EXIT_FAILED if failed else EXIT_OK


def _write_html(path: str, document: dict) -> bool:
    from netlab import html

    return html.save("check", path, html.check_report(document))


class Unreachable(Exception):
    """Nothing can be checked: the server cannot be reached or started (exit status 3)."""


def _run_one(config: CheckConfig, file: str, out: list[Submission]) -> None:
    """Run the cases against one program; its submission joins ``out`` before the first case,
    so that a Ctrl-C still shows the cases that finished."""
    cases = config.selected()
    run: ServerRun | ClientRun = (
        ClientRun(config, file) if config.client else ServerRun(config, file)
    )
    try:
        run.reachable()
        if run.protocol == AUTO and isinstance(run, ServerRun):
            run.protocol = run.detect()
    except (process.StartError, OSError) as exc:
        raise Unreachable(
            exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        ) from None
    what = file or config.target or config.command[0]
    submission = Submission(file, run.protocol)
    out.append(submission)
    with report.Progress(len(cases), what, config.progress) as progress:
        for result in run.cases(cases):
            submission.results.append(result)
            progress.advance(result)
    submission.protocol = run.protocol


def _not_started(config: CheckConfig, file: str, why: str) -> Submission:
    observed = f"could not be started: {why}"
    results = [
        Result(
            c.id, c.section, Outcome.FAIL, c.checks, observed, f"{c.lesson} (see {c.anchor})", 0.0
        )
        for c in config.selected()
    ]
    return Submission(file, config.protocol, results)
