#!/usr/bin/env python3
"""Portico's side-by-side benchmark: Portico, nginx and HAProxy in front of one nginx origin.

Every proxy runs alone on core 0 (taskset); the origin and the load generator share core 1 (on larger
machines the origin gets core 1 and the load generator the remaining cores). Each proxy gets the same
work: one worker/thread, upstream keepalive, the same four forwarding headers, no access log. Results
are medians of several repetitions after a warm-up long enough for tiered JIT, reported as ratios to
nginx and HAProxy from the same run. See bench/README.md.
"""
import argparse
import datetime
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

BENCH = pathlib.Path(__file__).resolve().parent
WORK = BENCH / "work"
RESULTS = BENCH / "results"
ORIGIN_PORT = 18100
PROXY_PORT = 18200
TLS_PORT = 18250
H2C_PORT = 18300
# Every proxy listens on its own ports, so all of them run at once and the repetitions interleave.
PROXY_KINDS = ["portico", "portico-aot", "nginx", "haproxy", "portico-dispatch", "portico-yarp", "kestrel"]


def proxy_ports(kind):
    i = PROXY_KINDS.index(kind)
    return PROXY_PORT + i, TLS_PORT + i, H2C_PORT + i
SMALL_BODY = "x" * 63 + "\n"  # 64 bytes

CPUS = os.cpu_count() or 2
PROXY_CPU = "0"
ORIGIN_CPU = "1" if CPUS >= 2 else "0"
LOAD_CPU = ("2-%d" % (CPUS - 1)) if CPUS >= 4 else ORIGIN_CPU
TICKS = os.sysconf("SC_CLK_TCK")


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def which(name):
    return shutil.which(name) or (("/usr/sbin/" + name) if os.path.exists("/usr/sbin/" + name) else None)


def wait_port(port, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.02)
    return False


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def tree_cpu_seconds(pids):
    total = 0.0
    for pid in pids:
        try:
            total += cpu_seconds(pid)
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def rss_kib(pid, field="VmRSS"):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def children(pid):
    try:
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
        return [int(x) for x in out.split()]
    except OSError:
        return []


# ---------------------------------------------------------------- configurations

def origin_conf(root):
    return f"""
worker_processes 1;
daemon off;
master_process off;
pid {root}/origin.pid;
error_log {root}/origin-error.log warn;
events {{ worker_connections 15000; }}
http {{
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    server {{
        listen 127.0.0.1:{ORIGIN_PORT} backlog=4096;
        location = /small {{ default_type text/plain; return 200 "{SMALL_BODY.strip()}\\n"; }}
        location /files/ {{ root {root}; sendfile on; }}
        location = /post {{ client_max_body_size 100m; client_body_buffer_size 128k; return 200 "ok\\n"; }}
        location = /stub {{ stub_status; }}
    }}
}}
"""


# The same file serves nginx and Portico: the point of Portico is running nginx's configuration.
def proxy_conf(root, extra_main="", tls=None, return_only=False, legacy_http2=False, name="proxy", port=PROXY_PORT,
               tls_port=TLS_PORT, h2c_port=H2C_PORT):
    tls_server = ""
    if tls:
        # nginx before 1.25 only knows "listen ... http2"; Portico accepts both forms. The second server
        # is HTTP/2 over cleartext with prior knowledge (h2c), what h2load speaks to an http:// URL.
        if legacy_http2:
            listen = f"listen 127.0.0.1:{tls_port} ssl http2;\n        listen 127.0.0.1:{h2c_port} http2;"
        else:
            listen = f"listen 127.0.0.1:{tls_port} ssl;\n        listen 127.0.0.1:{h2c_port};\n        http2 on;"
        tls_server = f"""
    server {{
        {listen}
        ssl_certificate {tls[0]};
        ssl_certificate_key {tls[1]};
        location / {{
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}"""
    upstream = "" if return_only else f"upstream origin {{ server 127.0.0.1:{ORIGIN_PORT}; keepalive 64; }}"
    location = 'return 200 "%s\\n";' % SMALL_BODY.strip() if return_only else """
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            client_max_body_size 100m;"""
    return f"""
worker_processes 1;
pid {root}/{name}.pid;
error_log {root}/{name}-error.log warn;
{extra_main}
events {{ worker_connections 15000; }}
http {{
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    client_body_temp_path {root}/{name}-client-temp;
    proxy_temp_path {root}/{name}-proxy-temp;
    {upstream}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{{location}
        }}
    }}{tls_server}
}}
"""


def haproxy_conf(root, tls_pem=None, port=PROXY_PORT, tls_port=TLS_PORT, h2c_port=H2C_PORT):
    tls = ""
    if tls_pem:
        tls = f"""
frontend fe_tls
    bind 127.0.0.1:{tls_port} ssl crt {tls_pem} alpn h2,http/1.1
    http-request set-header X-Real-IP %[src]
    http-request set-header X-Forwarded-Proto https
    default_backend be
frontend fe_h2c
    bind 127.0.0.1:{h2c_port} proto h2
    http-request set-header X-Real-IP %[src]
    http-request set-header X-Forwarded-Proto http
    default_backend be
"""
    return f"""
global
    nbthread 1
    maxconn 9000
    tune.bufsize 16384
defaults
    mode http
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    option http-keep-alive
    option forwardfor
    http-reuse always
frontend fe
    bind 127.0.0.1:{port} backlog 4096
    http-request set-header X-Real-IP %[src]
    http-request set-header X-Forwarded-Proto http
    default_backend be
{tls}
backend be
    server origin 127.0.0.1:{ORIGIN_PORT}
"""


# ---------------------------------------------------------------- processes

class Proc:
    def __init__(self, name, argv, cpu, env=None, port=PROXY_PORT, cwd=None):
        self.name = name
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.stderr_path = WORK / (name + ".stderr")
        self.p = subprocess.Popen(["taskset", "-c", cpu] + argv, env=full_env, cwd=cwd,
                                  stdout=subprocess.DEVNULL, stderr=open(self.stderr_path, "w"))
        self.started = time.time()
        self.port = port
        self.tls_port = None
        self.h2c_port = None
        if not wait_port(port):
            self.stop()
            raise RuntimeError("%s did not open port %d: %s" % (name, port, self.stderr_path.read_text().strip()[-300:]))
        self.ready = time.time() - self.started

    def pids(self):
        return [self.p.pid] + children(self.p.pid)

    def cpu(self):
        return tree_cpu_seconds(self.pids())

    def peak_rss_kib(self):
        return sum(rss_kib(p, "VmHWM") for p in self.pids())

    def rss_now_kib(self):
        return sum(rss_kib(p, "VmRSS") for p in self.pids())

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def start_proxy(kind, root, tls=None, return_only=False):
    proc = _start_proxy(kind, root, tls, return_only)
    proc.tls_port = proxy_ports(kind)[1] if tls else None
    proc.h2c_port = proxy_ports(kind)[2] if tls else None
    return proc


def _start_proxy(kind, root, tls=None, return_only=False):
    conf = root / ("%s%s.conf" % (kind, "-return" if return_only else ""))
    port, tls_port, h2c_port = proxy_ports(kind)
    env = {}
    if kind == "nginx":
        conf.write_text(proxy_conf(root, "daemon off;\nmaster_process off;", tls, return_only, legacy_http2=nginx_before_1_25(),
                                   name=kind, port=port, tls_port=tls_port, h2c_port=h2c_port))
        return Proc("nginx", [which("nginx"), "-p", str(root), "-c", str(conf)], PROXY_CPU, port=port)
    if kind == "haproxy":
        pem = None
        if tls:
            pem = root / "haproxy.pem"
            pem.write_text(pathlib.Path(tls[0]).read_text() + pathlib.Path(tls[1]).read_text())
        conf.write_text(haproxy_conf(root, pem, port=port, tls_port=tls_port, h2c_port=h2c_port))
        return Proc("haproxy", [which("haproxy"), "-f", str(conf)], PROXY_CPU, port=port)
    if kind == "kestrel":
        # The floor of any server built on Kestrel (bench/floor): Kestrel with Portico's socket settings
        # answering the same 64 bytes by itself. It answers every path, so it runs in the `return` group only.
        exe = WORK / "kestrel-floor" / "kestrel-floor"
        if not exe.exists():
            raise RuntimeError("%s is not built" % exe)
        return Proc(kind, [str(exe), str(port)], PROXY_CPU, env={"DOTNET_gcServer": "0"}, port=port)
    if kind in ("portico", "portico-aot", "portico-dispatch", "portico-yarp"):
        folder = WORK / ("portico-aot" if kind == "portico-aot" else "portico-jit")
        exe = folder / "portico"
        if not exe.exists():
            raise RuntimeError("%s is not built" % exe)
        conf.write_text(proxy_conf(root, "", tls, return_only, name=kind, port=port, tls_port=tls_port, h2c_port=h2c_port))
        env = {"DOTNET_gcServer": "0"}
        if kind == "portico-dispatch":
            # The A/B row for the hot-path switches: thread-pool dispatch and Kestrel's 4 KiB blocks.
            env.update({"PORTICO_INLINE_SCHEDULING": "0", "PORTICO_LARGE_BLOCKS": "0"})
        if kind == "portico-yarp":
            # The A/B row for the upstream transport: YARP's forwarder for HTTP/1.1 origins too.
            env.update({"PORTICO_UPSTREAM_TRANSPORT": "yarp"})
        return Proc(kind, [str(exe), "-p", str(root), "-c", str(conf)], PROXY_CPU, env=env, port=port)
    raise ValueError(kind)


def nginx_before_1_25():
    out = subprocess.run([which("nginx"), "-v"], capture_output=True, text=True).stderr
    m = re.search(r"nginx/(\d+)\.(\d+)", out)
    return bool(m) and (int(m.group(1)), int(m.group(2))) < (1, 25)


def raise_fd_limit():
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def origin_accepts():
    try:
        with socket.create_connection(("127.0.0.1", ORIGIN_PORT), timeout=2) as s:
            s.sendall(b"GET /stub HTTP/1.0\r\nHost: o\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        m = re.search(rb"\n\s*(\d+)\s+(\d+)\s+(\d+)", data)
        return int(m.group(1)) if m else 0
    except OSError:
        return 0


# ---------------------------------------------------------------- load generators

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def parse_wrk(text):
    out = {"rps": 0.0, "mibps": 0.0, "p50_ms": None, "p99_ms": None, "errors": 0, "requests": 0}
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if m:
        out["rps"] = float(m.group(1))
    m = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", text)
    if m:
        scale = {"B": 1 / 1048576, "KB": 1 / 1024, "MB": 1, "GB": 1024}.get(m.group(2), 1)
        out["mibps"] = float(m.group(1)) * scale
    m = re.search(r"(\d+) requests in", text)
    if m:
        out["requests"] = int(m.group(1))
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s|m)\s*$" % pct, text, re.M)
        if m:
            out[key] = float(m.group(1)) * UNITS[m.group(2)]
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if m:
        out["errors"] += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        out["errors"] += sum(int(x) for x in m.groups())
    return out


def run_wrk(url, conns, seconds, script=None):
    threads = max(1, min(conns, 2 if CPUS >= 4 else 1))
    argv = ["taskset", "-c", LOAD_CPU, "wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % seconds, "--latency", "--timeout", "10s"]
    if script:
        argv += ["-s", str(script)]
    argv.append(url)
    res = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    return parse_wrk(res.stdout + res.stderr)


def parse_h2load(text):
    out = {"rps": 0.0, "mibps": 0.0, "p50_ms": None, "p99_ms": None, "errors": 0, "requests": 0}
    m = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s, ([\d.]+)(\w+)/s", text)
    if m:
        out["rps"] = float(m.group(1))
        scale = {"B": 1 / 1048576, "KB": 1 / 1024, "MB": 1, "GB": 1024}.get(m.group(3), 1)
        out["mibps"] = float(m.group(2)) * scale
    m = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored", text)
    if m:
        out["requests"] = int(m.group(2))
        out["errors"] = int(m.group(4)) + int(m.group(5))
    m = re.search(r"time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)", text)
    if m:
        out["p50_ms"] = float(m.group(5)) * UNITS[m.group(6)]  # h2load has no percentiles: mean
    return out


def run_h2load(url, conns, seconds):
    """HTTP/2 load: https:// negotiates h2 by ALPN, http:// speaks h2c with prior knowledge."""
    argv = ["taskset", "-c", LOAD_CPU, "h2load", "-c%d" % conns, "-m10", "-D%d" % seconds, "-t1", url]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    return parse_h2load(res.stdout + res.stderr)


def idle_connections(port, count, batch=100):
    """Opens `count` keep-alive connections, one request on each, and keeps them idle; returns them.

    Connections arrive in batches of `batch` (each batch's answers are read before the next batch opens):
    what is measured is the memory an idle connection holds, not the transient peak of `count`
    simultaneous requests (a garbage-collected process keeps that peak's heap until its next collections).
    """
    socks = []
    req = b"GET /small HTTP/1.1\r\nHost: bench\r\n\r\n"
    for first in range(0, count, batch):
        group = []
        for _ in range(min(batch, count - first)):
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            s.sendall(req)
            group.append(s)
        for s in group:
            s.recv(4096)
        socks += group
    return socks


# ---------------------------------------------------------------- scenarios

SCENARIOS = [
    # name, kind, path, connections, what
    ("small_get_1", "wrk", "/small", 1, None),
    ("small_get_16", "wrk", "/small", 16, None),
    ("small_get_128", "wrk", "/small", 128, None),
    ("get_1m", "wrk", "/files/1m.bin", 16, None),
    ("get_16m", "wrk", "/files/16m.bin", 4, None),
    ("post_64k", "wrk", "/post", 16, "post64k.lua"),
    ("h2_tls_16", "h2load", "https", 16, None),
    ("h2c_16", "h2load", "http", 16, None),
    # 10 000 in the issue; this machine's hard limit of 20 000 descriptors caps HAProxy (2 per connection) below it.
    ("idle_9k", "idle", "/small", 9000, None),
    ("return_200_16", "return", "/small", 16, None),
]

# Scenarios that get their own warm-up (half the global one) before their repetitions: they run code
# the small-GET warm-up does not.
SCENARIO_WARMUP = ("get_1m", "get_16m", "post_64k", "h2_tls_16", "h2c_16")
PROXIES = ["portico", "portico-aot", "nginx", "haproxy", "direct"]
# Also available with --proxies: portico-dispatch (hot-path switches off), portico-yarp (YARP transport).
# "kestrel" (bench/floor: Kestrel alone, Portico's socket settings) joins the `return` group whenever Portico
# runs and run.sh has built it.


def make_files(root):
    files = root / "files"
    files.mkdir(parents=True, exist_ok=True)
    for name, size in (("1m.bin", 1 << 20), ("16m.bin", 16 << 20)):
        p = files / name
        if not p.exists() or p.stat().st_size != size:
            with open(p, "wb") as f:
                f.write(os.urandom(size))
    script = root / "post64k.lua"
    script.write_text('wrk.method = "POST"\nwrk.body = string.rep("a", 65536)\n'
                      'wrk.headers["Content-Type"] = "application/octet-stream"\n')
    key, cert = root / "key.pem", root / "cert.pem"
    if not key.exists():
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                        "-days", "30", "-subj", "/CN=localhost"], capture_output=True, check=True)
    return (str(cert), str(key))


def start_origin(root):
    """A fresh run directory (the bench's files linked in) and the origin nginx on its CPU; (root, tls, origin)."""
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    tls = make_files(WORK)
    (root / "files").symlink_to(WORK / "files")
    (root / "origin.conf").write_text(origin_conf(root))
    origin = Proc("origin", [which("nginx"), "-p", str(root), "-c", str(root / "origin.conf")], ORIGIN_CPU, port=ORIGIN_PORT)
    return root, tls, origin


def counters_tool():
    """dotnet-counters, when installed (run.sh installs it into bench/work/tools)."""
    for c in (WORK / "tools" / "dotnet-counters", pathlib.Path.home() / ".dotnet" / "tools" / "dotnet-counters"):
        if c.exists():
            return str(c)
    return shutil.which("dotnet-counters")


# Scenarios whose allocations per request are measured (JIT build only).
ALLOC_SCENARIOS = ("small_get_16", "small_get_128", "h2c_16")


def allocations_per_request(proc, load):
    """Bytes the .NET heap allocated per request over a separate run (the runtime's own counter, read by
    dotnet-counters every second on the load CPU), so the timed repetitions are not disturbed."""
    tool = counters_tool()
    if not tool:
        return None
    out = WORK / "counters.csv"
    if out.exists():
        out.unlink()
    c = subprocess.Popen(["taskset", "-c", LOAD_CPU, tool, "collect", "-p", str(proc.p.pid), "--counters", "System.Runtime",
                          "--refresh-interval", "1", "--format", "csv", "-o", str(out)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(3)
    # Only the rates reported while the load runs count: mark the window by wall clock.
    t0 = datetime.datetime.now()
    r = load()
    t1 = datetime.datetime.now()
    time.sleep(1.5)
    c.send_signal(signal.SIGINT)
    try:
        c.wait(10)
    except subprocess.TimeoutExpired:
        c.kill()
    if not out.exists() or not r["requests"]:
        return None
    total = 0.0
    samples = 0
    for line in out.read_text().splitlines():
        parts = line.split(",")
        if len(parts) < 5 or "dotnet.gc.heap.total_allocated" not in parts[2]:
            continue
        try:
            at = datetime.datetime.strptime(parts[0], "%m/%d/%Y %H:%M:%S")
        except ValueError:
            continue
        if t0.replace(microsecond=0) < at <= t1.replace(microsecond=0):
            total += float(parts[4])
            samples += 1
    # Each sample is one second's allocations: compare with the requests of as many seconds.
    n = r["requests"] * samples / max(1e-9, (t1 - t0).total_seconds())
    return total / n if n else None


def one_run(proc, fn):
    """Runs fn() once; its result with CPU µs per request and upstream connections opened."""
    cpu0 = proc.cpu() if proc else 0.0
    acc0 = origin_accepts()
    r = fn()
    acc1 = origin_accepts()
    cpu1 = proc.cpu() if proc else 0.0
    r["cpu_us_per_req"] = ((cpu1 - cpu0) * 1e6 / r["requests"]) if (proc and r["requests"]) else None
    r["upstream_conns"] = max(0, acc1 - acc0 - 2)  # minus our two stub_status probes
    return r


def median(runs):
    runs = sorted(runs, key=lambda x: x["rps"])
    med = dict(runs[len(runs) // 2])
    med["runs"] = [x["rps"] for x in runs]
    return med


def scenario_fn(proc, kind, path, conns, extra, duration):
    """The load of one scenario against one proxy (None: the scenario does not apply to it)."""
    port = ORIGIN_PORT if proc is None else proc.port
    if kind == "h2load":
        if proc is None or not proc.tls_port:
            return None
        h2port = proc.tls_port if path == "https" else proc.h2c_port
        return lambda: run_h2load("%s://127.0.0.1:%d/small" % (path, h2port), conns, duration)
    script = (WORK / extra) if extra else None
    url = "http://127.0.0.1:%d%s" % (port, path)
    return lambda: run_wrk(url, conns, duration, script)


def run_group(kinds, scenarios, root, tls, warmup, duration, reps, quick, results, return_only=False):
    """Starts every proxy of the group at once (each on its own ports, all on the proxy CPU), warms each up,
    then runs each scenario's repetitions interleaved (rep 1 of every proxy, then rep 2 ...): a machine whose
    speed drifts during the run moves every proxy's figures alike, and the ratios stay fair."""
    procs = {}
    try:
        for kind in kinds:
            if kind == "direct":
                procs[kind] = None
                continue
            if kind == "portico-aot" and not (WORK / "portico-aot" / "portico").exists():
                log("skipping portico-aot: not built")
                continue
            try:
                proc = start_proxy(kind, root, tls=None if return_only else tls, return_only=return_only)
            except RuntimeError as e:
                log("%s: %s" % (kind, e))
                results.setdefault("_failed", {})[kind] = str(e)
                continue
            procs[kind] = proc
            if not return_only:
                results.setdefault("_startup", {})[kind] = {"ready_s": proc.ready}
                first = run_wrk("http://127.0.0.1:%d/small" % proc.port, 16, 1)
                results["_startup"][kind]["first_second_rps"] = first["rps"]
                log("%s ready in %.3fs; first-second %.0f req/s" % (kind, proc.ready, first["rps"]))
        for kind, proc in procs.items():
            if proc:
                log("%s: warming up %ds" % (kind, warmup))
                run_wrk("http://127.0.0.1:%d/small" % proc.port, 16, warmup)

        for name, kind, path, conns, extra in scenarios:
            if name in SCENARIO_WARMUP and not quick:
                # A scenario that runs code the small-GET warm-up did not (request bodies, large bodies,
                # HTTP/2) is warmed up on its own first: under load on one core the JIT build needs about
                # 40 s to finish tiering new code, and the first repetitions would measure that instead.
                for proxy, proc in procs.items():
                    fn = scenario_fn(proc, kind, path, conns, extra, warmup // 2)
                    if fn and proc:
                        fn()
                log("%-14s warmed up %ds on every proxy" % (name, warmup // 2))
            if kind == "idle":
                if quick:
                    continue
                for proxy, proc in procs.items():
                    if not proc:
                        continue
                    before = proc.rss_now_kib()
                    socks = idle_connections(proc.port, conns)
                    time.sleep(2)
                    after = proc.rss_now_kib()
                    for s in socks:
                        s.close()
                    results.setdefault(name, {})[proxy] = {
                        "rps": 0, "mibps": 0, "p50_ms": None, "p99_ms": None, "errors": 0,
                        "kib_per_conn": (after - before) / conns, "peak_rss_mib": proc.peak_rss_kib() / 1024,
                        "cpu_us_per_req": None, "upstream_conns": None}
                    log("%-12s %-14s %.2f KiB/connection" % (proxy, name, (after - before) / conns))
                    time.sleep(2)
                continue

            runs = {}
            for _ in range(reps):
                for proxy, proc in procs.items():
                    fn = scenario_fn(proc, kind, path, conns, extra, duration)
                    if fn:
                        runs.setdefault(proxy, []).append(one_run(proc, fn))
            for proxy, rs in runs.items():
                proc = procs[proxy]
                r = median(rs)
                r["peak_rss_mib"] = (proc.peak_rss_kib() / 1024) if proc else None
                # dotnet-counters attaches to the JIT build (Native AOT has no diagnostics port).
                if proxy in ("portico", "portico-dispatch", "portico-yarp") and name in ALLOC_SCENARIOS and not quick:
                    r["alloc_bytes_per_req"] = allocations_per_request(proc, scenario_fn(proc, kind, path, conns, extra, duration))
                    log("%-12s %-14s allocations %s B/req" % (proxy, name, fmt(r["alloc_bytes_per_req"], 0)))
                results.setdefault(name, {})[proxy] = r
                log("%-12s %-14s %9.0f req/s %8.1f MiB/s p99 %s ms cpu %s us/req errors %d (runs %s)"
                    % (proxy, name, r["rps"], r["mibps"], fmt(r["p99_ms"]), fmt(r["cpu_us_per_req"]), r["errors"],
                       " ".join("%.0f" % x for x in r["runs"])))
    finally:
        for proc in procs.values():
            if proc:
                proc.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="short runs, under 3 minutes")
    ap.add_argument("--only", action="append", help="run only these scenarios")
    ap.add_argument("--proxies", default=None, help="comma-separated; default all (--quick: all but portico-aot)")
    args = ap.parse_args()

    raise_fd_limit()
    quick = args.quick
    warmup = 5 if quick else 40
    duration = 3 if quick else 10
    reps = 1 if quick else 3
    scenarios = [s for s in SCENARIOS if not args.only or s[0] in args.only]
    if quick:
        scenarios = [s for s in scenarios if s[0] in ("small_get_16", "small_get_128", "post_64k", "get_1m", "return_200_16")]
    partial_proxies = args.proxies is not None
    if args.proxies is None:
        # A quick run leaves the AOT build out unless asked for: run.sh --quick does not publish it, and a
        # folder left by an earlier full run may hold an older build.
        args.proxies = ",".join(p for p in PROXIES if not (quick and p == "portico-aot"))
        if quick and os.environ.get("PORTICO_BENCH_AOT") == "1":
            args.proxies = ",".join(PROXIES)
    proxies = [p for p in args.proxies.split(",") if p]

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S") + ("-quick" if quick else "")
    out_dir = RESULTS / stamp
    out_dir.mkdir(parents=True, exist_ok=True)
    root, tls, origin = start_origin(WORK / "run")
    log("origin nginx on cpu %s, proxies on cpu %s, load on cpu %s; warm-up %ds, %d x %ds per scenario, repetitions interleaved"
        % (ORIGIN_CPU, PROXY_CPU, LOAD_CPU, warmup, reps, duration))

    results = {}
    try:
        proxied = [sc for sc in scenarios if sc[1] != "return"]
        if proxied:
            run_group(proxies, proxied, root, tls, warmup, duration, reps, quick, results)
        # The floor of each proxy's own overhead: answering by itself.
        returns = [sc for sc in scenarios if sc[1] == "return"]
        if returns:
            run_group([p for p in proxies if p in ("portico", "portico-aot", "portico-dispatch", "nginx")]
                      + (["kestrel"] if "portico" in proxies and (WORK / "kestrel-floor" / "kestrel-floor").exists() else []),
                      returns, root, tls,
                      warmup, duration, reps, quick, results, return_only=True)
    finally:
        origin.stop()

    meta = {"stamp": stamp, "quick": quick, "cpus": CPUS, "proxy_cpu": PROXY_CPU, "origin_cpu": ORIGIN_CPU,
            "load_cpu": LOAD_CPU, "warmup_s": warmup, "duration_s": duration, "reps": reps,
            "nginx": subprocess.run([which("nginx"), "-v"], capture_output=True, text=True).stderr.strip(),
            "haproxy": subprocess.run([which("haproxy"), "-v"], capture_output=True, text=True).stdout.splitlines()[0]}
    (out_dir / "results.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    md = render_markdown(meta, results)
    (out_dir / "results.md").write_text(md)
    chart(out_dir, results)
    # A quick run (5 s of warm-up: the JIT build is still tiering) is a smoke test, not a measurement:
    # "latest" keeps pointing at the newest full run (nor does a run of some scenarios or proxies move it).
    if not quick and not args.only and not partial_proxies:
        latest = RESULTS / "latest"
        if latest.is_symlink() or latest.exists():
            latest.unlink()
        latest.symlink_to(stamp)
    print(md)


def fmt(v, digits=1):
    return "-" if v is None else ("%.*f" % (digits, v))


def ratio(a, b):
    return "-" if not a or not b else "%.2f" % (a / b)


def render_markdown(meta, results):
    lines = ["# Portico benchmark %s%s" % (meta["stamp"], " (quick)" if meta["quick"] else ""), "",
             "%d CPUs; proxy on cpu %s, origin (nginx) on cpu %s, load on cpu %s; warm-up %ds, median of %d x %ds (repetitions interleaved across proxies). %s; %s."
             % (meta["cpus"], meta["proxy_cpu"], meta["origin_cpu"], meta["load_cpu"], meta["warmup_s"], meta["reps"],
                meta["duration_s"], meta["nginx"], meta["haproxy"]), ""]
    for name, _, _, _, _ in SCENARIOS:
        rows = results.get(name)
        if not rows:
            continue
        lines += ["## %s" % name, "",
                  "| proxy | req/s | MiB/s | p50 ms | p99 ms | errors | peak RSS MiB | CPU µs/req | upstream conns | KiB/idle conn | vs nginx | vs HAProxy |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        ng = rows.get("nginx", {}).get("rps")
        ha = rows.get("haproxy", {}).get("rps")
        for proxy, r in rows.items():
            lines.append("| %s | %.0f | %.1f | %s | %s | %d | %s | %s | %s | %s | %s | %s |" % (
                proxy, r["rps"], r["mibps"], fmt(r["p50_ms"], 3), fmt(r["p99_ms"], 3), r["errors"],
                fmt(r.get("peak_rss_mib")), fmt(r.get("cpu_us_per_req")),
                "-" if r.get("upstream_conns") is None else r["upstream_conns"], fmt(r.get("kib_per_conn"), 2),
                ratio(r["rps"], ng), ratio(r["rps"], ha)))
        lines.append("")
    allocs = [(p, name, r["alloc_bytes_per_req"]) for name in ALLOC_SCENARIOS
              for p, r in results.get(name, {}).items() if r.get("alloc_bytes_per_req")]
    if allocs:
        lines += ["## allocations", "", "| proxy | scenario | bytes allocated per request |", "|---|---|---:|"]
        lines += ["| %s | %s | %.0f |" % a for a in allocs] + [""]
    if "_startup" in results:
        lines += ["## start-up", "", "| proxy | ready (s) | first-second req/s |", "|---|---:|---:|"]
        for proxy, r in results["_startup"].items():
            lines.append("| %s | %.3f | %.0f |" % (proxy, r["ready_s"], r.get("first_second_rps", 0)))
        lines.append("")
    if "_failed" in results:
        lines += ["## failed", ""] + ["- %s: %s" % kv for kv in results["_failed"].items()] + [""]
    return "\n".join(lines)


def chart(out_dir, results):
    if not shutil.which("gnuplot"):
        return
    data = out_dir / "ratios.dat"
    rows = []
    for name, _, _, _, _ in SCENARIOS:
        r = results.get(name, {})
        p = r.get("portico", {}).get("rps")
        ng = r.get("nginx", {}).get("rps")
        ha = r.get("haproxy", {}).get("rps")
        if p and ng:
            rows.append("%s %.3f %.3f" % (name, p / ng, (p / ha) if ha else 0))
    if not rows:
        return
    data.write_text("\n".join(rows) + "\n")
    script = f"""
set terminal pngcairo size 1000,500 noenhanced
set output '{out_dir}/ratios.png'
set title 'Portico requests/s as a ratio of nginx and HAProxy (same run, same core)'
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.9
set yrange [0:*]
set grid ytics
set xtics rotate by -30
set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lc rgb 'black'
plot '{data}' using 2:xtic(1) title 'Portico / nginx', '' using 3 title 'Portico / HAProxy'
"""
    res = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    if res.returncode != 0:
        script = script.replace("pngcairo", "png")
        subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)


if __name__ == "__main__":
    main()
