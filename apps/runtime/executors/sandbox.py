"""Run a python tool: call entrypoint(**arguments) in a fresh, locked-down process and return its JSON value.

Every call starts a new interpreter (`sys.executable -I -S -B sandbox_child.py`), never a fork of the
worker, so the tool's code cannot reach the worker's memory, database connections or settings. Its
environment is five variables (PATH; HOME and TMPDIR, its own empty work directory; LANG;
MALLOC_ARENA_MAX): nothing of the worker's (DATABASE_URL, SECRET_KEY, ...) is passed. Code and arguments
go in on stdin as JSON; the result comes back as JSON, at most 1 MiB. The tool can import the standard
library only. A trivial call costs about 35-50 ms (interpreter start-up, mostly).

What is guaranteed where
------------------------
Always, by the worker and the kernel:
- the wall timeout, min(sandbox.timeout_s, time left before the run's deadline): the worker kills the
  child's whole process group;
- rlimits: CPU time (sandbox.cpu_seconds: SIGXCPU, then SIGKILL one second later), address space
  (sandbox.memory_mb on top of the interpreter's own ~15 MB), 10 MiB per file, 128 open files,
  16 processes, no core dumps;
- the environment above; the work directory is deleted after the call.
By the kernel where it offers them; each call records which applied (SandboxResult.protections, the log,
`sandbox_protections()` for this machine). A missing layer is logged as a warning, never replaced by
trusting the code:
- pid namespace: when the call ends every process it started dies, setsid() or not;
- network namespace with no interfaces when sandbox.network is false (not even the worker's
  loopback), plus seccomp refusing socket() and Landlock (ABI 4+) refusing TCP connect and bind;
- the work directory is a 32 MiB noexec tmpfs in a private mount namespace: a total disk quota,
  and no native code can be loaded from files the tool writes;
- as root: a random unprivileged uid per call (2000000-2099999, or 65534 where that range is not
  mapped), no groups, no capabilities; not as root: the worker's uid with every capability dropped;
  no_new_privs either way;
- Landlock: reads only the standard library, system libraries and time zones (plus resolver and CA
  files when sandbox.network is true), writes only the work directory, executes no program; with
  ABI 6+ it cannot signal or reach abstract unix sockets outside the sandbox;
- seccomp (x86_64): no namespaces, mounts, ptrace, bpf, io_uring, keyrings or new sessions.
On this project's reference machine (Linux 6.x, root or not) every layer above applies. Running as root
needs nothing else; not as root, the namespaces and the tmpfs need unprivileged user namespaces (often
refused inside Docker's default seccomp profile), Landlock needs kernel 5.13+ with Landlock enabled.
In Python only (an audit hook: clear errors for ordinary code, but code that gets native code running
or abuses an interpreter bug gets past it, and then meets the kernel layers above):
- opening or listing files outside the work directory, starting processes, signalling other
  processes, importing ctypes, gc introspection, and any socket when sandbox.network is false;
- when sandbox.network is true: connecting to an internal address (loopback, private, link-local,
  ...) unless FLEETDECK_ALLOWED_INTERNAL_HOSTS lists it. The kernel restricts no destination then.
Not guaranteed: the tool can stat() paths outside its directory (existence, size, times: neither
Landlock nor the guard covers metadata) and read the standard library; CPU time is limited per process;
without a user namespace a non-root sandbox shares RLIMIT_NPROC with the worker's own processes.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from .base import ToolCallContext, ToolError, clip_text

logger = logging.getLogger(__name__)

CHILD_PROGRAM = Path(__file__).with_name("sandbox_child.py")
MAX_OUTPUT_BYTES = 1024 * 1024
MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_DISK_BYTES = 32 * 1024 * 1024
MAX_OPEN_FILES = 128
MAX_PROCESSES = 16
SANDBOX_UIDS = range(2_000_000, 2_100_000)
FALLBACK_UID = 65534
STDERR_KEPT_BYTES = 8 * 1024
# Kernel layers a healthy Linux host gives; a missing one is logged as a warning once per process.
EXPECTED_PROTECTIONS = ("processes", "network", "disk", "files", "syscalls")
_warned: set[str] = set()


@dataclass(frozen=True)
class SandboxLimits:
    """What one call may use: the spec's sandbox section."""

    cpu_seconds: int = 10
    memory_mb: int = 256
    timeout_s: float = 30
    network: bool = False

    @classmethod
    def from_spec(cls, sandbox: dict | None) -> SandboxLimits:
        """Return the limits of a tool spec's sandbox section (defaults for what it leaves out)."""
        sandbox = sandbox or {}
        default = cls()
        return cls(
            cpu_seconds=int(sandbox.get("cpu_seconds", default.cpu_seconds)),
            memory_mb=int(sandbox.get("memory_mb", default.memory_mb)),
            timeout_s=float(sandbox.get("timeout_s", default.timeout_s)),
            network=bool(sandbox.get("network", default.network)),
        )


@dataclass
class SandboxResult:
    """What a finished call returned, and how it was contained."""

    value: Any
    protections: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    stderr: str = ""  # what the tool's code printed (the last 8 KiB)


def execute(*, spec: dict, arguments: dict, ctx: ToolCallContext) -> Any:
    """Run the python tool's entrypoint with the arguments in the sandbox; return its JSON-able value."""
    config = spec["config"]
    limits = SandboxLimits.from_spec(spec.get("sandbox"))
    result = sandbox_run(
        code=config["code"],
        entrypoint=config.get("entrypoint") or "main",
        arguments=arguments,
        limits=limits,
        deadline=ctx.deadline,
        allowed_internal_hosts=_allowed_internal_hosts() if limits.network else (),
        log_label=f"run {ctx.run_id} step {ctx.step_index}",
    )
    return result.value


def _allowed_internal_hosts() -> list[str]:
    from django.conf import settings

    return list(getattr(settings, "FLEETDECK_ALLOWED_INTERNAL_HOSTS", []) or [])


def sandbox_run(
    *,
    code: str,
    entrypoint: str = "main",
    arguments: dict,
    limits: SandboxLimits,
    deadline: float | None = None,
    allowed_internal_hosts: Sequence[str] = (),
    python_guard: bool = True,
    log_label: str = "",
) -> SandboxResult:
    """Run entrypoint(**arguments) from code in a new sandboxed process; raise ToolError if it fails.

    deadline is a time.monotonic() value the call must not outlive. python_guard=False leaves out the
    audit hook, so tests can show that the kernel layers hold on their own; nothing else turns it off.
    """
    timeout, cut_by_deadline = _wall_timeout(limits.timeout_s, deadline)
    payload = {
        "code": code,
        "entrypoint": entrypoint,
        "arguments": arguments,
        "network": limits.network,
        "allowed_internal_hosts": list(allowed_internal_hosts),
        "cpu_seconds": limits.cpu_seconds,
        "memory_bytes": limits.memory_mb * 1024 * 1024,
        "max_file_bytes": MAX_FILE_BYTES,
        "max_disk_bytes": MAX_DISK_BYTES,
        "max_open_files": MAX_OPEN_FILES,
        "max_processes": MAX_PROCESSES,
        "max_output_bytes": MAX_OUTPUT_BYTES,
        "uid": SANDBOX_UIDS.start + secrets.randbelow(len(SANDBOX_UIDS)),
        "fallback_uid": FALLBACK_UID,
        "parent_pid": os.getpid(),
        "python_guard": python_guard,
    }
    try:
        data = json.dumps(payload, allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise ToolError(f"The tool's arguments cannot be sent to the sandbox as JSON: {exc}.") from None
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fleetdeck-tool-") as base:
        os.chmod(base, 0o711)  # the sandbox uid crosses it to reach its own work directory
        work = os.path.join(base, "work")
        os.mkdir(work, 0o700)
        out, err, ending, returncode = _spawn_and_collect(data, cwd=work, timeout=timeout)
    seconds = time.monotonic() - started
    protections, final = _parse_lines(out)
    _warn_missing(protections)
    logger.info(
        "python tool call %s ended (%s) in %.0f ms; sandbox: %s",
        log_label or "-",
        "ok" if final and final.get("ok") else (final or {}).get("kind", ending),
        seconds * 1000,
        " ".join(f"{name}={'missing' if text.startswith('missing') else 'on'}" for name, text in protections.items()),
    )
    stderr = err.decode("utf-8", "replace")
    if ending == "timeout":
        if cut_by_deadline:
            raise ToolError(
                f"The tool's code was stopped after {_seconds(timeout)} s, when the run reached its time limit: "
                "the run has no time left for this call.",
                code="sandbox_timeout",
            )
        raise ToolError(
            f"The tool's code was stopped after the wall timeout of {_seconds(timeout)} s (sandbox.timeout_s): "
            "make it faster, or raise sandbox.timeout_s in a new version of the tool.",
            code="sandbox_timeout",
        )
    if ending == "too_large":
        raise _too_large(f"more than {MAX_OUTPUT_BYTES // 1024} KiB")
    if final is None:
        raise ToolError(
            f"The Python sandbox ended (status {returncode}) before the tool's code gave a result: "
            f"{clip_text(stderr.strip()[-1000:], 1000) or 'no message'}.",
            code="sandbox_failed",
            retryable=True,
        )
    if final.get("ok"):
        return SandboxResult(value=final.get("value"), protections=protections, seconds=seconds, stderr=stderr)
    raise _failure_error(final, limits, stderr)


def _wall_timeout(timeout_s: float, deadline: float | None) -> tuple[float, bool]:
    if deadline is None:
        return float(timeout_s), False
    left = deadline - time.monotonic()
    if left <= 0:
        raise ToolError("The run reached its time limit before this tool call could start.", code="sandbox_timeout")
    return (left, True) if left < timeout_s else (float(timeout_s), False)


def _spawn_and_collect(data: bytes, *, cwd: str, timeout: float) -> tuple[bytes, bytes, str, int]:
    """Start the child, feed it data, and collect its output until it ends, times out or says too much."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": cwd,
        "TMPDIR": cwd,
        "LANG": "C.UTF-8",
        "MALLOC_ARENA_MAX": "1",  # one malloc arena: threads would otherwise reserve 64 MB each of the limit
    }
    if not sys.executable:
        raise ToolError(
            "The Python sandbox needs sys.executable, which this worker does not have.", code="sandbox_failed"
        )
    # No preexec_fn (unsafe in a threaded worker): the child program applies every limit to itself.
    try:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-B", str(CHILD_PROGRAM)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
    except OSError as exc:
        raise ToolError(
            f"The Python sandbox could not start a process ({exc.strerror}): the worker's host is short of "
            "processes or memory; the call can be retried.",
            code="sandbox_failed",
            retryable=True,
        ) from None
    try:
        out, err, ending = _collect(proc, data, timeout)
    finally:
        # Kill what is left of the group before reaping the leader, so the group id cannot be reused meanwhile.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # already gone: the usual case
        proc.wait()
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if not pipe.closed:
                pipe.close()
    return bytes(out), bytes(err), ending, proc.returncode


def _collect(proc: subprocess.Popen, data: bytes, timeout: float) -> tuple[bytearray, bytearray, str]:
    ends = time.monotonic() + timeout
    stdin, stdout, stderr = proc.stdin.fileno(), proc.stdout.fileno(), proc.stderr.fileno()
    os.set_blocking(stdin, False)
    pending = memoryview(data)
    out, err = bytearray(), bytearray()
    with selectors.DefaultSelector() as selector:
        selector.register(stdin, selectors.EVENT_WRITE)
        selector.register(stdout, selectors.EVENT_READ)
        selector.register(stderr, selectors.EVENT_READ)
        while selector.get_map():
            left = ends - time.monotonic()
            if left <= 0:
                return out, err, "timeout"
            ready = selector.select(min(left, 0.2))
            if not ready and _has_exited(proc.pid):
                break  # it ended, but a process it left behind still holds the pipes open
            for key, _ in ready:
                if key.fd == stdin:
                    try:
                        pending = pending[os.write(stdin, pending[: 64 * 1024]) :]
                    except BlockingIOError:
                        continue
                    except BrokenPipeError:
                        pending = pending[:0]  # it stopped reading: it died, and stderr says why
                    if not pending:
                        selector.unregister(stdin)
                        proc.stdin.close()
                    continue
                chunk = os.read(key.fd, 64 * 1024)
                if not chunk:
                    selector.unregister(key.fd)
                elif key.fd == stdout:
                    out += chunk
                    if len(out) > MAX_OUTPUT_BYTES + 64 * 1024:
                        return out, err, "too_large"
                else:
                    err += chunk
                    if len(err) > 2 * STDERR_KEPT_BYTES:
                        del err[:-STDERR_KEPT_BYTES]
    return out, err, "exited"


def _has_exited(pid: int) -> bool:
    """Return whether the child has ended, without reaping it."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True  # something else in this process reaped it


def _parse_lines(out: bytes) -> tuple[dict, dict | None]:
    protections: dict[str, str] = {}
    final = None
    for line in out.split(b"\n"):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            continue  # a line cut short by a kill
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("protections"), dict):
            protections.update(item["protections"])
        elif "ok" in item:
            final = item
    return protections, final


def _warn_missing(protections: dict) -> None:
    for name in EXPECTED_PROTECTIONS:
        status = protections.get(name)
        if status and status.startswith("missing") and name not in _warned:
            _warned.add(name)
            logger.warning("Python tool sandbox runs without a kernel protection: %s: %s", name, status)


def _seconds(value: float) -> str:
    return f"{value:g}" if value == int(value) else f"{value:.1f}"


def _too_large(size: str) -> ToolError:
    return ToolError(
        f"The tool's code returned {size} of JSON; the limit is {MAX_OUTPUT_BYTES // 1024} KiB (1 MiB): "
        "return less data, e.g. a summary or the first items.",
        code="sandbox_output_too_large",
    )


_VIOLATION_HINTS = {
    "files": "a tool may only read and write files in its own temporary work directory, which starts empty "
    "and is removed after the call",
    "network": "network access is disabled for this tool (sandbox.network is false); publish a version with "
    "sandbox.network set to true if it needs the network",
    "internal_network": "tools may only reach public addresses; a platform admin can allow an internal host "
    "with FLEETDECK_ALLOWED_INTERNAL_HOSTS",
    "processes": "the sandbox does not allow starting processes or signalling others; do the work in Python",
    "modules": "the sandbox does not allow it; use the standard library's Python modules",
}


def _failure_error(final: dict, limits: SandboxLimits, stderr: str) -> ToolError:
    kind = final.get("kind")
    at = f" (at line {final['line']} of the tool's code)" if final.get("line") else ""
    if kind == "violation":
        rule = final.get("rule", "")
        message = f"The tool's code {final.get('message', 'did something the sandbox refuses')}{at}: "
        message += _VIOLATION_HINTS.get(rule, "the sandbox refused it") + "."
        return ToolError(message, code="sandbox_network" if rule == "network" else "sandbox_violation")
    if kind == "cpu" or (kind == "died" and (final.get("cpu_seconds") or 0) >= limits.cpu_seconds * 0.95):
        used = f"; it used {final['cpu_seconds']:.1f} s" if final.get("cpu_seconds") else ""
        return ToolError(
            f"The tool's code ran out of CPU time (limit {limits.cpu_seconds} s){at}{used}: make it faster, "
            "or raise sandbox.cpu_seconds in a new version of the tool.",
            code="sandbox_cpu",
        )
    if kind == "memory":
        return ToolError(
            f"The tool's code used more than {limits.memory_mb} MB of memory{at}: use less (process data in "
            "pieces), or raise sandbox.memory_mb in a new version of the tool.",
            code="sandbox_memory",
        )
    if kind == "file_size":
        return ToolError(
            f"The tool's code tried to write a file larger than {MAX_FILE_BYTES // 2**20} MiB{at}, "
            "the sandbox's limit per file: write smaller files.",
            code="sandbox_file_size",
        )
    if kind == "disk":
        return ToolError(
            f"The tool's code filled its work directory (limit {MAX_DISK_BYTES // 2**20} MiB in all){at}: "
            "write less, or delete files it no longer needs.",
            code="sandbox_disk",
        )
    if kind == "entrypoint":
        return ToolError(
            f"The tool's code {final.get('message')}: define it at the top level of config.code, "
            "or set config.entrypoint to the function to call.",
            code="sandbox_entrypoint",
        )
    if kind == "not_json":
        return ToolError(
            f"The tool's code returned a value that is not JSON-serialisable ({final.get('message')}): "
            "return dicts, lists, strings, numbers, booleans or None.",
            code="sandbox_not_json",
        )
    if kind == "too_large":
        return _too_large(f"{int(final.get('message') or 0) // 1024} KiB")
    if kind == "exception":
        message = f"The tool's code raised {final.get('type', 'an exception')}: {final.get('message', '')}"
        refused = final.get("refused")
        if refused:
            message += f" (before that, it {refused.get('message')}: {_VIOLATION_HINTS.get(refused.get('rule'), '')})"
        return ToolError(
            clip_text(message, 1500) + "\n" + clip_text(final.get("traceback", ""), 3000), code="sandbox_exception"
        )
    if kind == "setup":
        return ToolError(
            f"The Python sandbox could not be set up, so the tool's code did not run: {final.get('message')}.",
            code="sandbox_failed",
        )
    if kind == "died":
        if final.get("signal"):
            name = signal.Signals(final["signal"]).name if final["signal"] in signal.Signals else final["signal"]
            detail = f"was killed by {name}"
            if name in ("SIGSEGV", "SIGBUS", "SIGABRT"):
                detail = f"crashed ({name}), e.g. from recursion too deep or memory running out in native code"
        else:
            detail = f"exited with status {final.get('exit_code')} without giving a result"
        tail = clip_text(stderr.strip()[-500:], 500)
        return ToolError(
            f"The tool's code {detail}." + (f" Its last output: {tail}" if tail else ""), code="sandbox_died"
        )
    return ToolError(f"The Python sandbox answered something unexpected ({clip_text(str(final), 200)}).")


@cache
def sandbox_protections() -> dict[str, str]:
    """Return the protections this machine gives a python tool with sandbox.network false (runs one call)."""
    return sandbox_run(code="def main():\n    return 1\n", arguments={}, limits=SandboxLimits(timeout_s=10)).protections
