"""The python tool sandbox: what a tool's code gets, what it cannot do, and the errors it sees.

No database: the executor is called directly with a tool spec, as the engine calls it. Tests that turn
the Python guard off (python_guard=False) show that the kernel layers hold on their own; they are skipped
where this machine's kernel does not give that layer (sandbox_protections() says which).
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from apps.runtime.executors.base import ToolCallContext, ToolError
from apps.runtime.executors.sandbox import SandboxLimits, execute, sandbox_protections, sandbox_run

PROJECT_FILE = Path(django_settings.BASE_DIR) / "platform_site" / "settings.py"


def run_tool(code: str, *, arguments=None, cpu=2, memory=64, timeout=5, network=False, deadline=None):
    """Return what execute() returns for a python tool with this code and sandbox."""
    spec = {
        "kind": "python",
        "config": {"code": code, "entrypoint": "main"},
        "sandbox": {"cpu_seconds": cpu, "memory_mb": memory, "timeout_s": timeout, "network": network},
    }
    return execute(spec=spec, arguments=arguments or {}, ctx=ToolCallContext(team_id=1, deadline=deadline))


def refused(code: str, **options) -> ToolError:
    """Return the ToolError the tool's code ends with."""
    with pytest.raises(ToolError) as caught:
        run_tool(code, **options)
    return caught.value


def kernel_layer(name: str) -> None:
    """Skip the test when this machine's kernel does not give the protection name."""
    status = sandbox_protections().get(name, "missing")
    if status.startswith("missing"):
        pytest.skip(f"this kernel does not give the sandbox's {name} protection: {status}")


def unguarded(code: str, **limits) -> ToolError:
    """Return the ToolError the code ends with when only the kernel layers stand in its way."""
    options = {"cpu_seconds": 2, "memory_mb": 64, "timeout_s": 5} | limits
    with pytest.raises(ToolError) as caught:
        sandbox_run(code=code, arguments={}, limits=SandboxLimits(**options), python_guard=False)
    return caught.value


def sandbox_processes(work_dir: str) -> list[int]:
    """Return the pids of processes still alive from the call whose work directory this was."""
    # Its processes carry HOME=<work dir> from their start (their cwd reads "/" from outside their mount namespace).
    home = b"HOME=" + work_dir.encode() + b"\0"
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if home in (entry / "environ").read_bytes() + b"\0":
                    found.append(int(entry.name))
            except OSError:
                continue  # it ended while we looked, or is not ours to inspect
    return found


@pytest.fixture
def tcp_listener():
    """Listen on 127.0.0.1; yield (port, accepted connections)."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.05)
    accepted: list = []
    stop = threading.Event()

    def accept_loop():
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept_loop, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join()
    server.close()
    for connection in accepted:
        connection.close()


@pytest.fixture
def http_server():
    """Serve "hi" over HTTP on 127.0.0.1; yield its URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"hi")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


# ---------------------------------------------------------------- what the tool gets


def test_the_entrypoint_gets_the_arguments_and_its_value_comes_back():
    code = "def main(customer, amounts):\n    return {'customer': customer, 'total': sum(amounts), 'ok': True}\n"
    value = run_tool(code, arguments={"customer": "Zoë", "amounts": [1.5, 2, 3]})
    assert value == {"customer": "Zoë", "total": 6.5, "ok": True}


def test_an_async_entrypoint_is_awaited_and_prints_do_not_spoil_the_result():
    code = "import asyncio\nasync def main(n):\n    print('working')\n    await asyncio.sleep(0)\n    return n * 2\n"
    assert run_tool(code, arguments={"n": 21}) == 42


def test_the_standard_library_works_inside_the_sandbox():
    code = (
        "import datetime, decimal, hashlib, sqlite3, zoneinfo\n"
        "def main():\n"
        "    db = sqlite3.connect('scratch.db')\n"
        "    db.execute('create table t (a)')\n"
        "    db.execute('insert into t values (1)')\n"
        "    paris = datetime.datetime(2024, 7, 1, tzinfo=zoneinfo.ZoneInfo('Europe/Paris'))\n"
        "    return [db.execute('select a from t').fetchone()[0], str(decimal.Decimal('0.1') * 3),\n"
        "            hashlib.sha256(b'a').hexdigest()[:6], paris.utcoffset().seconds]\n"
    )
    assert run_tool(code) == [1, "0.3", "ca9781", 7200]


def test_the_work_directory_starts_empty_is_home_and_is_removed_afterwards():
    code = (
        "import os\n"
        "def main():\n"
        "    before = os.listdir('.')\n"
        "    with open('notes.txt', 'w') as f:\n"
        "        f.write('x' * 1000)\n"
        "    return {'cwd': os.getcwd(), 'home': os.environ['HOME'], 'tmp': os.environ['TMPDIR'], 'before': before}\n"
    )
    value = run_tool(code)
    assert value["before"] == []
    assert value["home"] == value["tmp"] == value["cwd"]
    assert not os.path.exists(value["cwd"])
    assert not os.path.exists(os.path.dirname(value["cwd"]))


def test_the_tool_does_not_see_the_workers_environment(monkeypatch):
    monkeypatch.setenv("FLEETDECK_FAKE_SECRET", "sk-test-do-not-leak-4242")
    monkeypatch.setenv("DATABASE_URL", "postgres://fleetdeck:hunter2@db/fleetdeck")
    value = run_tool("import os\ndef main():\n    return dict(os.environ)\n")
    assert "FLEETDECK_FAKE_SECRET" not in value and "DATABASE_URL" not in value
    assert "do-not-leak" not in json.dumps(value) and "hunter2" not in json.dumps(value)
    assert set(value) <= {"PATH", "HOME", "TMPDIR", "LANG", "MALLOC_ARENA_MAX"}


def test_a_trivial_call_is_quick():
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        assert run_tool("def main():\n    return 1\n") == 1
        timings.append(time.perf_counter() - started)
    assert statistics.median(timings) < 1.0, f"a trivial call took {statistics.median(timings):.3f} s"


KERNEL_PROBE = """
import ctypes, os, platform, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
user = 0 if os.geteuid() == 0 else 0x10000000
offered = []
if libc.unshare(ctypes.c_int(0x20000000 | 0x40000000 | 0x00020000 | user)) == 0:
    offered += ["processes", "network", "disk"]
if libc.syscall(ctypes.c_long(444), None, ctypes.c_size_t(0), ctypes.c_uint32(1)) > 0:
    offered.append("files")
if platform.machine() == "x86_64":
    offered.append("syscalls")
print(" ".join(offered))
"""


def test_every_protection_the_kernel_offers_is_applied():
    # Without this, a layer that silently stopped applying would only turn its tests into skips.
    probe = subprocess.run([sys.executable, "-I", "-c", KERNEL_PROBE], capture_output=True, text=True, check=True)
    offered = probe.stdout.split()
    protections = sandbox_run(code="def main():\n    return 1\n", arguments={}, limits=SandboxLimits()).protections
    missing = {
        name: protections.get(name, "absent")
        for name in offered
        if protections.get(name, "missing").startswith(("missing", "absent"))
    }
    assert missing == {}
    assert "(kernel)" in protections["limits"] and "(kernel)" in protections["user"]


# ---------------------------------------------------------------- errors the tool's author can act on


def test_an_exception_in_the_tools_code_gives_its_type_message_and_line():
    error = refused("def helper(x):\n    raise ValueError(f'no customer {x}')\n\ndef main():\n    helper(7)\n")
    assert error.code == "sandbox_exception"
    assert error.message.startswith("The tool's code raised ValueError: no customer 7")
    assert 'File "<tool>", line 2, in helper' in error.message
    assert "raise ValueError(f'no customer {x}')" in error.message
    assert "sandbox_child" not in error.message  # the sandbox's own frames are not the author's business


def test_a_missing_entrypoint_is_named():
    error = refused("def run():\n    return 1\n")
    assert error.code == "sandbox_entrypoint"
    assert "defines no function main" in error.message


def test_a_value_that_is_not_json_is_refused():
    error = refused("def main():\n    return {'ids': {1, 2}}\n")
    assert error.code == "sandbox_not_json"
    assert "not JSON-serialisable" in error.message and "set" in error.message


def test_output_over_one_mib_is_refused():
    error = refused("def main():\n    return 'x' * (2 * 1024 * 1024)\n")
    assert error.code == "sandbox_output_too_large"
    assert "1 MiB" in error.message


# ---------------------------------------------------------------- network


def test_network_access_is_refused_when_sandbox_network_is_false(tcp_listener):
    port, accepted = tcp_listener
    code = f"import socket\ndef main():\n    socket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
    error = refused(code)
    assert error.code == "sandbox_network"
    assert "network access is disabled for this tool (sandbox.network is false)" in error.message
    time.sleep(0.1)
    assert accepted == []


def test_without_the_python_guard_the_kernel_still_cuts_the_network(tcp_listener):
    kernel_layer("network")
    port, accepted = tcp_listener
    error = unguarded(
        "import socket\n"
        "def main():\n"
        f"    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 0, fileno=None)\n"
        f"    s.connect(('127.0.0.1', {port}))\n"
    )
    assert error.code == "sandbox_exception"  # refused by seccomp, or unreachable in the empty namespace
    time.sleep(0.1)
    assert accepted == []


def test_with_network_internal_addresses_need_the_admins_allowance(http_server, settings):
    code = "import urllib.request\ndef main(url):\n    return urllib.request.urlopen(url, timeout=2).read().decode()\n"
    settings.FLEETDECK_ALLOWED_INTERNAL_HOSTS = []
    error = refused(code, arguments={"url": http_server}, network=True)
    assert error.code == "sandbox_violation"
    assert "an internal address" in error.message and "FLEETDECK_ALLOWED_INTERNAL_HOSTS" in error.message

    settings.FLEETDECK_ALLOWED_INTERNAL_HOSTS = ["127.0.0.1"]
    assert run_tool(code, arguments={"url": http_server}, network=True) == "hi"


# ---------------------------------------------------------------- processes


@pytest.mark.parametrize(
    "code, event",
    [
        ("import os\ndef main():\n    while True:\n        os.fork()\n", "os.fork"),
        (
            "import subprocess\ndef main():\n    while True:\n        subprocess.Popen(['sleep', '60'])\n",
            "subprocess.Popen",
        ),
        ("import os\ndef main():\n    os.system('id')\n", "os.system"),
    ],
)
def test_starting_processes_is_refused_at_once(code, event):
    started = time.monotonic()
    error = refused(code, timeout=10)
    assert time.monotonic() - started < 3
    assert error.code == "sandbox_violation"
    assert f"tried to start a process ({event})" in error.message


def test_without_the_python_guard_a_fork_bomb_is_contained_by_the_kernel():
    kernel_layer("processes")
    error = unguarded("import os\ndef main():\n    while True:\n        os.fork()\n", timeout_s=10)
    assert "BlockingIOError" in error.message  # RLIMIT_NPROC: fork() fails once the sandbox has 16 processes

    code = (
        "import os, time\n"
        "def main():\n"
        "    runner = os.getpid()\n"
        "    forked = 0\n"
        "    try:\n"
        "        while True:\n"
        "            if os.fork() == 0:\n"
        "                continue\n"
        "            forked += 1\n"
        "    except OSError:\n"
        "        pass\n"
        "    if os.getpid() != runner:\n"
        "        time.sleep(60)  # every forked process waits: the kernel must end them\n"
        "    return [os.getcwd(), forked]\n"
    )
    started = time.monotonic()
    result = sandbox_run(code=code, arguments={}, limits=SandboxLimits(timeout_s=10), python_guard=False)
    work_dir, forked = result.value
    assert time.monotonic() - started < 5
    assert 0 < forked < 16
    assert sandbox_processes(work_dir) == []


def test_processes_left_behind_die_with_the_call_even_in_a_new_session():
    kernel_layer("processes")
    code = (
        "import os, time\n"
        "def main():\n"
        "    if os.fork() == 0:\n"
        "        try:\n"
        "            os.setsid()\n"
        "        except OSError:\n"
        "            pass\n"
        "        time.sleep(60)\n"
        "        os._exit(0)\n"
        "    return os.getcwd()\n"
    )
    result = sandbox_run(code=code, arguments={}, limits=SandboxLimits(timeout_s=5), python_guard=False)
    assert sandbox_processes(result.value) == []


def test_without_the_python_guard_no_program_can_be_executed():
    kernel_layer("files")
    error = unguarded("import subprocess\ndef main():\n    subprocess.run(['/bin/true'])\n")
    assert "PermissionError" in error.message


def test_importing_ctypes_is_refused():
    error = refused("import ctypes\ndef main():\n    return ctypes.CDLL(None).getpid()\n")
    assert error.code == "sandbox_violation"
    assert "tried to import ctypes" in error.message


def test_without_the_python_guard_no_native_code_loads_from_files_the_tool_writes():
    kernel_layer("disk")
    code = (
        "import mmap\n"
        "def main():\n"
        "    with open('native.so', 'wb') as f:\n"
        "        f.write(bytes(4096))\n"
        "    with open('native.so', 'rb') as f:\n"
        "        mmap.mmap(f.fileno(), 4096, prot=mmap.PROT_READ | mmap.PROT_EXEC)\n"
    )
    assert "PermissionError" in unguarded(code).message  # the work directory is mounted noexec


# ---------------------------------------------------------------- memory, CPU, time, files


@pytest.mark.parametrize(
    "code",
    [
        "def main():\n    return len('x' * 10**10)\n",
        "def main():\n    chunks = []\n    while True:\n        chunks.append(bytearray(10**6))\n",
    ],
)
def test_a_memory_blow_up_is_contained(code):
    error = refused(code, memory=64)
    assert error.code == "sandbox_memory"
    assert "used more than 64 MB of memory" in error.message


def test_an_infinite_loop_runs_out_of_cpu_time():
    started = time.monotonic()
    error = refused("def main():\n    while True:\n        pass\n", cpu=1, timeout=10)
    assert time.monotonic() - started < 6  # 1 s of CPU, more wall time on a busy machine
    assert error.code == "sandbox_cpu"
    assert error.message.startswith("The tool's code ran out of CPU time (limit 1 s)")


def test_code_that_ignores_the_cpu_signal_is_killed_a_second_later():
    code = (
        "import signal\ndef main():\n    signal.signal(signal.SIGXCPU, signal.SIG_IGN)\n    while True:\n        pass\n"
    )
    started = time.monotonic()
    error = refused(code, cpu=1, timeout=10)
    assert time.monotonic() - started < 9  # well before the wall timeout: the CPU hard limit killed it
    assert error.code == "sandbox_cpu"


def test_sleeping_code_is_stopped_by_the_wall_timeout():
    started = time.monotonic()
    error = refused("import time\ndef main():\n    time.sleep(60)\n", timeout=1)
    assert time.monotonic() - started < 3
    assert error.code == "sandbox_timeout"
    assert "was stopped after the wall timeout of 1 s" in error.message


def test_the_runs_deadline_shortens_the_wall_timeout():
    started = time.monotonic()
    error = refused("import time\ndef main():\n    time.sleep(60)\n", timeout=30, deadline=started + 0.5)
    assert time.monotonic() - started < 2.5
    assert error.code == "sandbox_timeout"
    assert "when the run reached its time limit" in error.message


def test_writing_a_huge_file_hits_the_file_size_limit():
    code = "def main():\n    with open('big.bin', 'wb') as f:\n        f.write(b'x' * 20 * 1024 * 1024)\n"
    error = refused(code, memory=128)
    assert error.code == "sandbox_file_size"
    assert "larger than 10 MiB" in error.message


@pytest.mark.parametrize(
    "path, shown",
    [
        ("/etc/passwd", "/etc/passwd"),
        ("../outside.txt", None),
        (str(PROJECT_FILE), str(PROJECT_FILE)),
    ],
)
def test_reading_outside_the_work_directory_is_refused(path, shown):
    error = refused(f"def main():\n    return open({path!r}).read()\n")
    assert error.code == "sandbox_violation"
    assert "outside its working directory" in error.message
    if shown:
        assert f"tried to open {shown}, outside its working directory" in error.message


def test_writing_outside_the_work_directory_is_refused():
    error = refused("def main():\n    open('../escaped.txt', 'w').write('x')\n")
    assert error.code == "sandbox_violation"
    assert "escaped.txt, outside its working directory" in error.message


@pytest.mark.parametrize(
    "action",
    [
        "open('/etc/passwd').read()",
        f"open({str(PROJECT_FILE)!r}).read()",
        "open('../escaped.txt', 'w').write('x')",
        "os.listdir('..')",
        "os.listdir('/')",
    ],
)
def test_without_the_python_guard_files_outside_stay_out_of_reach(action):
    kernel_layer("files")
    error = unguarded(f"import os\ndef main():\n    return {action}\n")
    assert "PermissionError" in error.message
    assert "root:" not in error.message and "SECRET_KEY" not in error.message
