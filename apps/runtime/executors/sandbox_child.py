"""Run one python tool call inside the sandbox: the program the worker starts fresh for every call.

The worker (apps/runtime/executors/sandbox.py) starts `python -I -S -B sandbox_child.py` in a new session,
with an almost empty environment and the call's empty work directory as cwd, and writes one JSON payload
on stdin. This program uses the standard library only and must never import the project.

Two processes:
- the launcher (this process, with the worker's uid) reads the payload, moves into new namespaces (pid,
  mount, and network unless sandbox.network), mounts a size-limited noexec tmpfs on the work directory,
  forks the runner and waits for it. If the runner dies (a signal, the CPU hard limit) it writes a line
  saying how and how much CPU was used, so the worker can explain it.
- the runner (pid 1 of the new pid namespace: when it ends, every process it started is killed by the
  kernel) drops to an unprivileged uid, sets the rlimits, locks itself in with Landlock and seccomp,
  installs the Python guard (an audit hook), runs entrypoint(**arguments) and writes the result.

Protocol on stdout, one JSON object per line: {"protections": {...}} once set-up is done, then either
{"ok": true, "value": ...} or {"ok": false, "kind": ..., "message": ...}. The worker uses the last
complete result line. What the tool's code prints goes to stderr.

Set-up fails closed: a protection the kernel offers but that cannot be applied ends the call with
kind "setup" before any tool code runs. A protection the kernel does not offer is recorded as missing.
"""

import errno
import json
import os
import resource
import signal
import sys

PROGRAM = os.path.abspath(__file__)
TOOL_FILENAME = "<tool>"

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = (
    1,
    2,
    4,
    8,
    32,
    4096,
    16384,
    1 << 18,
)
PR_SET_PDEATHSIG, PR_SET_SECCOMP, PR_SET_NO_NEW_PRIVS = 1, 22, 38

# Landlock (linux/landlock.h): filesystem rights by ABI version, network (ABI 4), scopes (ABI 6).
LL_EXECUTE, LL_WRITE_FILE, LL_READ_FILE, LL_READ_DIR = 1, 2, 4, 8
LL_REFER, LL_TRUNCATE, LL_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
LL_FILE_RIGHTS = LL_EXECUTE | LL_WRITE_FILE | LL_READ_FILE | LL_TRUNCATE | LL_IOCTL_DEV
LL_NET_BIND_TCP, LL_NET_CONNECT_TCP = 1, 2
LL_SCOPE_ABSTRACT_UNIX_SOCKET, LL_SCOPE_SIGNAL = 1, 2
SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_ADD_RULE, SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446

# seccomp (x86_64 only): system calls a tool never needs and that widen the kernel's attack surface.
AUDIT_ARCH_X86_64 = 0xC000003E
SYS_SOCKET, SYS_CLONE, SYS_CLONE3 = 41, 56, 435
DENIED_SYSCALLS_X86_64 = {
    101: "ptrace",
    103: "syslog",
    109: "setpgid",
    112: "setsid",
    134: "uselib",
    155: "pivot_root",
    161: "chroot",
    163: "acct",
    165: "mount",
    166: "umount2",
    167: "swapon",
    168: "swapoff",
    169: "reboot",
    172: "iopl",
    173: "ioperm",
    175: "init_module",
    176: "delete_module",
    179: "quotactl",
    246: "kexec_load",
    248: "add_key",
    249: "request_key",
    250: "keyctl",
    272: "unshare",
    298: "perf_event_open",
    303: "name_to_handle_at",
    304: "open_by_handle_at",
    308: "setns",
    310: "process_vm_readv",
    311: "process_vm_writev",
    313: "finit_module",
    320: "kexec_file_load",
    321: "bpf",
    323: "userfaultfd",
    425: "io_uring_setup",
    426: "io_uring_enter",
    427: "io_uring_register",
    428: "open_tree",
    429: "move_mount",
    430: "fsopen",
    431: "fsconfig",
    432: "fsmount",
    433: "fspick",
    442: "mount_setattr",
}
NAMESPACE_FLAGS = (
    CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET
)

# Read-only for the runner besides the standard library: the shared libraries extension modules load.
SYSTEM_LIBRARY_DIRS = ["/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/local/lib"]
# Data the standard library reads (zoneinfo): readable for the kernel layer and the Python guard alike.
SYSTEM_DATA_READ = ["/usr/share/zoneinfo", "/etc/localtime"]
SYSTEM_FILES_READ = ["/etc/ld.so.cache", "/etc/localtime", "/dev/urandom", "/dev/random", "/dev/zero"]
SYSTEM_FILES_READ_WRITE = ["/dev/null"]
# With sandbox.network true: what name resolution and TLS certificate checks read (glibc and OpenSSL).
NETWORK_FILES_READ = [
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/nsswitch.conf",
    "/etc/gai.conf",
    "/etc/host.conf",
    "/etc/services",
    "/etc/protocols",
    "/etc/ssl",
    "/etc/pki",
    "/etc/ca-certificates",
    "/usr/share/ca-certificates",
]

PROCESS_EVENTS = {
    "os.fork",
    "os.forkpty",
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "subprocess.Popen",
    "pty.spawn",
}
NETWORK_EVENTS = {
    "socket.__new__",
    "socket.bind",
    "socket.connect",
    "socket.getaddrinfo",
    "socket.gethostbyname",
    "socket.gethostbyaddr",
    "socket.getnameinfo",
    "socket.sendmsg",
    "socket.sendto",
}
FORBIDDEN_MODULES = {"ctypes", "_ctypes"}
INTROSPECTION_EVENTS = {"gc.get_objects", "gc.get_referrers", "gc.get_referents"}
# Events whose first argument (or the listed ones) is a path the tool's code changes.
WRITE_PATH_EVENTS = {
    "os.mkdir": (0,),
    "os.rmdir": (0,),
    "os.remove": (0,),
    "os.rename": (0, 1),
    "os.link": (0, 1),
    "os.symlink": (1,),
    "os.chmod": (0,),
    "os.chown": (0,),
    "os.truncate": (0,),
    "os.utime": (0,),
    "os.mkfifo": (0,),
    "os.mknod": (0,),
}
READ_PATH_EVENTS = {"os.listdir", "os.scandir"}
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class SetupError(Exception):
    """A protection the kernel offers could not be applied: the call ends before the tool's code runs."""


class SandboxViolation(PermissionError):
    """The Python guard refused an operation; the message completes "The tool's code ..."."""

    def __init__(self, rule: str, message: str):
        super().__init__(message)
        self.rule = rule


class CpuTimeExceeded(BaseException):
    """Raised from the SIGXCPU handler; a BaseException so `except Exception` in tool code does not hide it."""


def _libc():
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    # Explicit widths: these are variadic or take unsigned longs, and a bare int leaves the upper bits undefined.
    libc.syscall.restype = ctypes.c_long
    libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
    libc.unshare.argtypes = [ctypes.c_int]
    libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
    return ctypes, libc


def _errno_text(ctypes) -> str:
    code = ctypes.get_errno()
    return f"{errno.errorcode.get(code, code)} ({os.strerror(code)})"


def _write_line(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _emit(fd: int, obj: dict) -> None:
    _write_line(fd, json.dumps(obj, separators=(",", ":")).encode() + b"\n")


# ---------------------------------------------------------------- launcher (worker's uid, outside)


def launcher() -> None:
    """Read the payload, enter new namespaces, fork the runner and report how it ended."""
    payload = json.loads(sys.stdin.buffer.read())
    ctypes, libc = _libc()
    # Die with the worker: a worker killed mid-call must not leave a sandbox running.
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != payload["parent_pid"]:
        os._exit(1)
    protections: dict[str, str] = {}
    try:
        _enter_namespaces(ctypes, libc, payload, protections)
    except (SetupError, OSError) as exc:
        _emit(1, {"ok": False, "kind": "setup", "message": str(exc)})
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    pid = os.fork()
    if pid == 0:
        runner(payload, protections)  # never returns
    _, status, usage = os.wait4(pid, 0)
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        os._exit(0)
    _emit(
        1,
        {
            "ok": False,
            "kind": "died",
            "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
            "exit_code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
        },
    )
    os._exit(0)


def _enter_namespaces(ctypes, libc, payload: dict, protections: dict) -> None:
    root = os.geteuid() == 0
    uid, gid = os.getuid(), os.getgid()  # read before a user namespace hides them
    wanted = {"processes": CLONE_NEWPID, "disk": CLONE_NEWNS}
    if not payload["network"]:
        wanted["network"] = CLONE_NEWNET
    extra = 0 if root else CLONE_NEWUSER
    if libc.unshare(sum(wanted.values()) | extra) == 0:
        entered = set(wanted)
    else:
        reason = _errno_text(ctypes)
        entered = set()
        for name, flag in wanted.items():
            if libc.unshare(flag | (0 if root or entered else CLONE_NEWUSER)) == 0:
                entered.add(name)
        for name in set(wanted) - entered:
            protections[name] = f"missing: the kernel refused a new namespace ({reason})"
    if "processes" in entered:
        protections["processes"] = "pid namespace: every process of the call is killed when it ends (kernel)"
    if "network" in entered:
        protections["network"] = "network namespace without interfaces (kernel)"
    elif payload["network"]:
        protections["network"] = "allowed (sandbox.network is true); internal addresses refused by the Python guard"
    if root:
        payload["uid"] = _usable_uid(payload["uid"], payload["fallback_uid"])
    elif "disk" in entered and not _map_own_ids(uid, gid):
        entered.discard("disk")
    if "disk" in entered:
        _mount_work_dir(ctypes, libc, payload, owner=payload["uid"] if root else uid, protections=protections)
    else:
        protections.setdefault("disk", "missing: files limited one by one (RLIMIT_FSIZE), not in total")
    if root:
        _make_stdlib_reachable(ctypes, libc, payload, mounted="disk" in entered)


def _mount_work_dir(ctypes, libc, payload: dict, *, owner: int, protections: dict) -> None:
    work = os.getcwd()
    if libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        raise SetupError(f"could not make the mount namespace private: {_errno_text(ctypes)}")
    options = f"size={payload['max_disk_bytes']},nr_inodes=4096,mode=0700,uid={owner},gid={owner}"
    flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
    if libc.mount(b"tmpfs", work.encode(), b"tmpfs", flags, options.encode()) != 0:
        raise SetupError(f"could not mount the work directory: {_errno_text(ctypes)}")
    os.chdir(work)  # enter the tmpfs, not the directory underneath it
    protections["disk"] = (
        f"work directory is a {payload['max_disk_bytes'] // 2**20} MiB noexec tmpfs, gone with the call (kernel)"
    )


def _map_own_ids(uid: int, gid: int) -> bool:
    """Map the worker's own uid and gid into the new user namespace, so a tmpfs can be owned by it."""
    try:
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w") as file:
                file.write(text)
    except OSError:
        return False  # the kernel refuses: the work directory stays on the real disk
    return True


def _usable_uid(uid: int, fallback: int) -> int:
    """Return uid when this user namespace maps it, else the fallback (e.g. in a rootless container)."""
    try:
        with open("/proc/self/uid_map") as lines:
            ranges = [tuple(int(part) for part in line.split()) for line in lines if line.strip()]
    except OSError:
        return uid
    return uid if any(inside <= uid < inside + count for inside, _, count in ranges) else fallback


def _make_stdlib_reachable(ctypes, libc, payload: dict, mounted: bool) -> None:
    """Bind the standard library somewhere the sandbox uid can traverse, when its own path is closed.

    A Python under /root (pyenv) sits behind a 0700 directory the dropped uid cannot cross. Inside our
    private mount namespace the library is bound read-only under the call's directory instead.
    """
    entries = [path for path in sys.path if os.path.isdir(path)]
    if all(_world_traversable(path) for path in entries):
        return
    if not mounted:
        raise SetupError(
            "the Python standard library is not readable by other users and no mount namespace is available: "
            "install Python where other users can read it"
        )
    base = os.path.join(os.path.dirname(os.getcwd()), "lib")
    os.mkdir(base, 0o755)
    mapped = []
    for index, path in enumerate(entries):
        target = os.path.join(base, str(index))
        os.mkdir(target, 0o755)
        read_only = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV
        if (
            libc.mount(path.encode(), target.encode(), None, MS_BIND | MS_REC, None) != 0
            or libc.mount(None, target.encode(), None, read_only, None) != 0
        ):
            raise SetupError(f"could not bind the standard library: {_errno_text(ctypes)}")
        mapped.append(target)
    payload["stdlib_mapping"] = [[original, bound] for original, bound in zip(entries, mapped, strict=True)]


def _world_traversable(path: str) -> bool:
    while True:
        if not os.stat(path).st_mode & 0o001:
            return False
        parent = os.path.dirname(path)
        if parent == path:
            return True
        path = parent


# ---------------------------------------------------------------- runner (sandbox uid, inside)


def runner(payload: dict, protections: dict) -> None:
    """Lock this process in, run the tool's entrypoint, write the result line and exit."""
    result_fd = os.dup(1)  # the worker reads results here; print() goes to stderr instead
    os.dup2(2, 1)
    try:
        guard = _lock_in(payload, protections)
    except (SetupError, OSError) as exc:  # fail closed: no tool code runs half locked in
        _emit(result_fd, {"ok": False, "kind": "setup", "message": str(exc)})
        os._exit(0)
    _emit(result_fd, {"protections": protections})
    runner_pid = os.getpid()
    outcome = _call(payload, guard)
    if os.getpid() != runner_pid:
        os._exit(0)  # a process the tool forked (the kernel layers allowed it): only the runner answers
    try:
        sys.stdout.flush()
        _write_line(result_fd, outcome)
    except OSError:
        pass  # the worker stopped reading: it has already given up on this call
    os._exit(0)


def _lock_in(payload: dict, protections: dict):
    ctypes, libc = _libc()
    work = os.getcwd()
    mapping = payload.get("stdlib_mapping", [])
    if mapping:
        _use_bound_stdlib(mapping)
    read_roots = [path for path in sys.path if os.path.exists(path)]
    if os.geteuid() == 0:
        _drop_privileges(payload["uid"], work, protections)
    else:
        # Capabilities held inside our own user namespace: not needed past this point.
        _drop_capabilities(ctypes, libc)
        protections["user"] = "the worker's uid, no capabilities (not root: no other uid to drop to)"
    _set_limits(payload, protections)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise SetupError(f"could not set no_new_privs: {_errno_text(ctypes)}")
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # cleared by the uid change: set it again
    baseline = _address_space_bytes()
    _landlock(ctypes, libc, payload, work, read_roots, protections)
    _seccomp(ctypes, libc, payload, protections)
    # Tool code must not reach ctypes through a module we already imported (see the Python guard).
    for name in [name for name in sys.modules if name == "ctypes" or name.startswith(("ctypes.", "_ctypes"))]:
        del sys.modules[name]
    del ctypes, libc
    memory = baseline + payload["memory_bytes"]
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    signal.signal(signal.SIGXCPU, _on_cpu_limit)
    if payload["python_guard"]:
        guard = _install_guard(
            work=work,
            read_roots=read_roots + [original for original, _ in mapping] + SYSTEM_DATA_READ,
            network=payload["network"],
            allowed_internal=payload["allowed_internal_hosts"],
        )
        protections["python_guard"] = (
            "audit hook: refuses files outside the work directory, processes, ctypes"
            + ("" if payload["network"] else ", sockets")
            + " (Python level: clear errors, not a security boundary on its own)"
        )
    else:
        guard = []
        protections["python_guard"] = "off (kernel layers only)"
    return guard


def _use_bound_stdlib(mapping: list) -> None:
    """Import from the bound copy from now on, packages already imported (encodings, json...) included."""
    sys.path[:] = [bound for _, bound in mapping]
    for module in list(sys.modules.values()):
        paths = getattr(module, "__path__", None)
        if isinstance(paths, list):
            paths[:] = [_moved(path, mapping) for path in paths]
    sys.path_importer_cache.clear()


def _moved(path: str, mapping: list, back: bool = False) -> str:
    for original, bound in sorted(mapping, key=lambda pair: -len(pair[back])):
        old, new = (bound, original) if back else (original, bound)
        if path == old or path.startswith(old + "/"):
            return new + path[len(old) :]
    return path


def _drop_privileges(uid: int, work: str, protections: dict) -> None:
    os.chown(work, uid, uid)
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    if os.getuid() != uid or os.geteuid() != uid:
        raise SetupError("could not drop to the sandbox uid")
    protections["user"] = f"uid {uid}, no groups, no capabilities (kernel)"


def _drop_capabilities(ctypes, libc) -> None:
    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    header, data = Header(0x20080522, 0), (Data * 2)()  # _LINUX_CAPABILITY_VERSION_3, all sets empty
    if libc.capset(ctypes.byref(header), ctypes.byref(data)) != 0:
        raise SetupError(f"could not drop capabilities: {_errno_text(ctypes)}")


def _set_limits(payload: dict, protections: dict) -> None:
    cpu = payload["cpu_seconds"]
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (payload["max_open_files"],) * 2)
    resource.setrlimit(resource.RLIMIT_FSIZE, (payload["max_file_bytes"],) * 2)
    resource.setrlimit(resource.RLIMIT_NPROC, (payload["max_processes"],) * 2)
    # SIGXCPU at the soft limit (a clear error), SIGKILL one second later if the code ignores it.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    protections["limits"] = (
        f"rlimits: CPU {cpu} s, memory {payload['memory_bytes'] // 2**20} MB over the interpreter, "
        f"files {payload['max_file_bytes'] // 2**20} MiB each, {payload['max_open_files']} open files, "
        f"{payload['max_processes']} processes for the uid, no core dumps (kernel)"
    )


def _address_space_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _landlock(ctypes, libc, payload: dict, work: str, read_roots: list, protections: dict) -> None:
    create = ctypes.c_long(SYS_LANDLOCK_CREATE_RULESET)
    abi = libc.syscall(create, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    if abi < 0:
        protections["files"] = f"missing: Landlock is not available ({_errno_text(ctypes)}); Python guard only"
        return

    class RulesetAttr(ctypes.Structure):
        _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]

    class PathBeneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]

    handled = (1 << 13) - 1
    if abi >= 2:
        handled |= LL_REFER
    if abi >= 3:
        handled |= LL_TRUNCATE
    if abi >= 5:
        handled |= LL_IOCTL_DEV
    attr = RulesetAttr(fs=handled)
    size = 8
    if abi >= 4 and not payload["network"]:
        attr.net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP  # handled with no rule: every TCP bind/connect denied
    if abi >= 4:
        size = 16
    if abi >= 6:
        attr.scoped = LL_SCOPE_ABSTRACT_UNIX_SOCKET | LL_SCOPE_SIGNAL
        size = 24
    ruleset = libc.syscall(create, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        raise SetupError(f"could not create the Landlock ruleset: {_errno_text(ctypes)}")

    def allow(path: str, rights: int) -> None:
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            return  # not on this system: nothing to allow
        try:
            if not os.path.isdir(path):
                rights &= LL_FILE_RIGHTS
            rule = PathBeneath(allowed=rights & handled, parent_fd=fd)
            add_rule = ctypes.c_long(SYS_LANDLOCK_ADD_RULE)
            if libc.syscall(add_rule, ctypes.c_long(ruleset), ctypes.c_long(1), ctypes.byref(rule), ctypes.c_long(0)):
                raise SetupError(f"could not allow {path} in Landlock: {_errno_text(ctypes)}")
        finally:
            os.close(fd)

    read = LL_READ_FILE | LL_READ_DIR
    for path in read_roots + SYSTEM_LIBRARY_DIRS + SYSTEM_DATA_READ + SYSTEM_FILES_READ:
        allow(path, read)
    if payload["network"]:
        for path in NETWORK_FILES_READ:
            allow(path, read)
    for path in SYSTEM_FILES_READ_WRITE:
        allow(path, LL_READ_FILE | LL_WRITE_FILE | LL_TRUNCATE)
    allow(work, handled & ~(LL_EXECUTE | LL_IOCTL_DEV | 64 | 2048))  # 64, 2048: character and block devices
    if libc.syscall(ctypes.c_long(SYS_LANDLOCK_RESTRICT_SELF), ctypes.c_long(ruleset), ctypes.c_long(0)) != 0:
        raise SetupError(f"could not enforce Landlock: {_errno_text(ctypes)}")
    os.close(ruleset)
    what = "reads only the standard library and system libraries, writes only the work directory, executes nothing"
    if abi >= 4 and not payload["network"]:
        what += ", no TCP connect or bind"
    if abi >= 6:
        what += ", no signals or abstract unix sockets outside the sandbox"
    protections["files"] = f"Landlock ABI {abi}: {what} (kernel)"


def _seccomp(ctypes, libc, payload: dict, protections: dict) -> None:
    if os.uname().machine != "x86_64":
        protections["syscalls"] = f"missing: the seccomp filter is written for x86_64, not {os.uname().machine}"
        return
    denied = set(DENIED_SYSCALLS_X86_64)
    if not payload["network"]:
        denied.add(SYS_SOCKET)  # socketpair() stays allowed: asyncio needs it and it reaches nothing
    ld, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    allow, kill, fail = 0x7FFF0000, 0x80000000, 0x00050000
    program: list[tuple[int, object, object, int]] = [
        (ld, 0, 0, 4),  # seccomp_data.arch
        (jeq, 1, 0, AUDIT_ARCH_X86_64),
        (ret, 0, 0, kill),
        (ld, 0, 0, 0),  # seccomp_data.nr
        (jge, "deny", 0, 0x40000000),  # the x32 ABI: another numbering, refused whole
        (jeq, "enosys", 0, SYS_CLONE3),  # its flags are out of reach: libc falls back to clone()
        (jeq, 0, 3, SYS_CLONE),
        (ld, 0, 0, 16),  # clone flags (low 32 bits of args[0])
        (jset, "deny", 0, NAMESPACE_FLAGS),
        (ret, 0, 0, allow),
    ]
    program += [(jeq, "deny", 0, number) for number in sorted(denied)]
    program.append((ret, 0, 0, allow))
    labels = {"deny": len(program), "enosys": len(program) + 1}
    program += [(ret, 0, 0, fail | errno.EPERM), (ret, 0, 0, fail | errno.ENOSYS)]

    class SockFilter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(SockFilter))]

    def offset(index: int, target) -> int:
        return labels[target] - index - 1 if isinstance(target, str) else target

    filters = (SockFilter * len(program))(
        *[SockFilter(code, offset(i, jt), offset(i, jf), k) for i, (code, jt, jf, k) in enumerate(program)]
    )
    fprog = SockFprog(len(program), filters)
    if libc.prctl(PR_SET_SECCOMP, 2, ctypes.addressof(fprog), 0, 0) != 0:
        raise SetupError(f"could not install the seccomp filter: {_errno_text(ctypes)}")
    what = "no namespaces, mounts, ptrace, bpf, io_uring, keyrings, new sessions"
    if not payload["network"]:
        what += ", no socket()"
    protections["syscalls"] = f"seccomp: {what} (kernel)"


def _on_cpu_limit(signum, frame):
    raise CpuTimeExceeded()


# ---------------------------------------------------------------- the Python guard


def _install_guard(*, work: str, read_roots: list, network: bool, allowed_internal: list) -> list:
    """Install the audit hook; return the list where it records what it refused (first one first).

    It holds its state in this closure, not in module globals the tool's code could change.
    """
    work = os.path.realpath(work)
    work_prefix = work.rstrip("/") + "/"
    read_prefixes = tuple(os.path.realpath(root).rstrip("/") + "/" for root in read_roots)
    devices = frozenset(["/dev/null", "/dev/urandom", "/dev/random", "/dev/zero"])
    refused: list = []
    realpath, join, getcwd, fspath = os.path.realpath, os.path.join, os.getcwd, os.fspath
    if network:
        import ipaddress  # imported now: imports inside the hook would run the hook again
        import socket

        check_address = _address_checker(ipaddress, socket, allowed_internal)

    def refuse(rule: str, message: str):
        error = SandboxViolation(rule, message)
        if not refused:
            refused.append({"rule": rule, "message": message})
        raise error

    def resolve(path) -> str | None:
        if path is None or isinstance(path, int):
            return None  # an open file descriptor: it was checked when it was opened
        try:
            path = _exact(fspath(path))
            if isinstance(path, bytes):
                path = path.decode("utf-8", "surrogateescape")
            return realpath(join(getcwd(), path))
        except (TypeError, ValueError, OSError):
            return "?"

    def inside_work(path: str) -> bool:
        return path == work or path.startswith(work_prefix)

    def check_path(path, write: bool, verb: str) -> None:
        full = resolve(path)
        if full is None or inside_work(full) or full in devices:
            return
        if not write and (full + "/").startswith(read_prefixes):
            return
        refuse("files", f"tried to {verb} {full}, outside its working directory")

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = args
            write = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool((flags or 0) & WRITE_FLAGS)
            check_path(path, write, "open")
        elif event in READ_PATH_EVENTS:
            check_path(args[0] if args[0] is not None else ".", False, "list")
        elif event in WRITE_PATH_EVENTS:
            for index in WRITE_PATH_EVENTS[event]:
                check_path(args[index], True, "change")
        elif event in PROCESS_EVENTS:
            refuse("processes", f"tried to start a process ({event})")
        elif event in ("os.kill", "os.killpg") and args[0] != os.getpid():
            refuse("processes", f"tried to send a signal to another process ({event})")
        elif event == "import" and _exact(args[0]) in FORBIDDEN_MODULES:
            refuse("modules", f"tried to import {_exact(args[0])}, which runs native code")
        elif event in INTROSPECTION_EVENTS:
            refuse("modules", f"tried to inspect the interpreter's objects ({event})")
        elif event in NETWORK_EVENTS:
            if not network:
                if event == "socket.__new__" and args[1] == 1:
                    return  # AF_UNIX: socketpair() for asyncio; socket() itself is refused by seccomp
                refuse("network", f"tried to use the network ({event})")
            if event in ("socket.connect", "socket.sendto", "socket.sendmsg") and len(args) > 1:
                problem = check_address(args[1])
                if problem:
                    refuse("internal_network", f"tried to connect to {problem}")

    sys.addaudithook(hook)
    return refused


def _exact(value):
    """Return a plain str or bytes copy: a subclass could lie to the guard in __eq__, __hash__ or startswith."""
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, bytes):
        return bytes.__bytes__(value)
    return value


def _address_checker(ipaddress, socket, allowed_internal: list):
    """Return a function naming why a socket address is internal (None when public or allowed)."""
    allowed: list[tuple[str, int | None]] = []
    for entry in allowed_internal:
        host, port = entry, None
        try:
            if entry.startswith("["):
                host, _, rest = entry[1:].partition("]")
                port = int(rest[1:]) if rest.startswith(":") else None
            elif entry.count(":") == 1:
                host, port_text = entry.split(":")
                port = int(port_text)
        except ValueError:
            continue  # a malformed entry allows nothing
        allowed.append((host.lower().rstrip("."), port))
    resolved: dict[str, set] = {}

    def internal(ip) -> bool:
        if ip.version == 6 and (ip.ipv4_mapped or ip.sixtofour):
            ip = ip.ipv4_mapped or ip.sixtofour
        return not ip.is_global

    def allowed_ip(ip, port: int) -> bool:
        for host, allowed_port in allowed:
            if allowed_port not in (None, port):
                continue
            if host not in resolved:
                try:
                    resolved[host] = {info[4][0] for info in socket.getaddrinfo(host, None)}
                except OSError:
                    resolved[host] = set()
            if str(ip) in resolved[host]:
                return True
        return False

    def check(address) -> str | None:
        if isinstance(address, (str, bytes)):
            return "a local socket, which tools may not use"
        if not isinstance(address, tuple) or len(address) < 2:
            return None
        host, port = str(_exact(address[0])).split("%")[0], int(address[1])
        try:
            ips = [ipaddress.ip_address(host)]
        except ValueError:
            try:
                ips = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in socket.getaddrinfo(host, port)]
            except OSError:
                return None  # the connect itself will fail to resolve the name
        for ip in ips:
            if internal(ip) and not allowed_ip(ip, port):
                return f"{ip}:{port}, an internal address" if ip.version == 4 else f"[{ip}]:{port}, an internal address"
        return None

    return check


# ---------------------------------------------------------------- the call


_PAYLOAD: dict = {}


def _call(payload: dict, refused: list) -> bytes:
    """Run entrypoint(**arguments); return the result line to write (never raises)."""
    _PAYLOAD.update(payload)
    code = payload["code"]
    module = type(sys)("__main__")  # `import __main__` in the tool's code finds its own module
    sys.modules["__main__"] = module
    kind = None
    failure = None
    value = None
    try:
        exec(compile(code, TOOL_FILENAME, "exec", dont_inherit=True), module.__dict__)
        entrypoint = module.__dict__.get(payload["entrypoint"])
        if not callable(entrypoint):
            return _failure("entrypoint", f"defines no function {payload['entrypoint']}")
        value = entrypoint(**payload["arguments"])
        if type(value).__name__ == "coroutine":
            import asyncio

            value = asyncio.run(value)
    except CpuTimeExceeded as exc:
        kind, failure = "cpu", _where(exc)
    except MemoryError as exc:
        kind = "memory"
        try:
            failure = _where(exc)
        except MemoryError:
            failure = None  # no room even for the line number: the kind says enough
    except SandboxViolation as exc:
        kind, failure = "violation", {"rule": exc.rule, "message": str(exc), **_where(exc)}
    except OSError as exc:
        kind = {errno.EFBIG: "file_size", errno.ENOSPC: "disk", errno.EDQUOT: "disk"}.get(exc.errno, "exception")
        failure = _describe(exc)
    except BaseException as exc:  # noqa: BLE001 - the tool's code may raise anything; it is reported, not hidden
        kind, failure = "exception", _describe(exc)
    if kind == "exception" and refused and refused[0]["message"] in failure.get("traceback", ""):
        # The refusal surfaced wrapped (urllib's URLError around it): report the refusal itself.
        kind, failure = "violation", {**refused[0], **_line_only(failure)}
    if kind is not None:
        module.__dict__.clear()
        value = None
        result = {"ok": False, "kind": kind, **(failure or {})}
        if refused and kind != "violation":
            result["refused"] = refused[0]
        return (json.dumps(result) + "\n").encode()
    try:
        data = json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8", "surrogatepass")
    except (TypeError, ValueError, RecursionError, UnicodeEncodeError) as exc:
        return _failure("not_json", f"{type(exc).__name__}: {str(exc)[:300]}")
    except MemoryError:
        return _failure("memory", "")
    if len(data) > payload["max_output_bytes"]:
        return _failure("too_large", str(len(data)))
    return b'{"ok":true,"value":' + data + b"}\n"


def _line_only(failure: dict) -> dict:
    return {"line": failure["line"]} if "line" in failure else {}


def _failure(kind: str, message: str) -> bytes:
    return (json.dumps({"ok": False, "kind": kind, "message": message}) + "\n").encode()


def _tool_frames(exc: BaseException):
    import linecache
    import traceback  # only when something failed: it costs a few ms of every call's start-up

    code = _PAYLOAD["code"]
    linecache.cache[TOOL_FILENAME] = (len(code), None, code.splitlines(True), TOOL_FILENAME)
    frames = traceback.StackSummary.extract(traceback.walk_tb(exc.__traceback__), lookup_lines=False)
    return [frame for frame in frames if frame.filename != PROGRAM]


def _where(exc: BaseException) -> dict:
    lines = [frame.lineno for frame in _tool_frames(exc) if frame.filename == TOOL_FILENAME]
    return {"line": lines[-1]} if lines else {}


def _describe(exc: BaseException) -> dict:
    frames = _tool_frames(exc)
    mapping = _PAYLOAD.get("stdlib_mapping", [])
    for frame in frames:
        if mapping and frame.filename != TOOL_FILENAME:
            frame.line  # noqa: B018 - read the source line now, while the filename is the readable one
            frame.filename = _moved(frame.filename, mapping, back=True)  # the real path, not our bind mount
    import traceback

    text = "".join(traceback.format_list(frames)) + "".join(traceback.format_exception_only(type(exc), exc))
    lines = text.rstrip("\n").splitlines()[-20:]
    try:
        message = str(exc)
    except Exception:  # noqa: BLE001 - a tool's exception whose __str__ fails still gets reported
        message = "(the exception's message could not be read)"
    return {
        "type": type(exc).__name__,
        "message": message[:1000] + ("..." if len(message) > 1000 else ""),
        "traceback": "\n".join(lines)[-3000:],
        **_where(exc),
    }


if __name__ == "__main__":
    launcher()
