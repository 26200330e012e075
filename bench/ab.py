#!/usr/bin/env python3
"""A/B of two Portico builds (or one build with two environments) on the bench's origin and CPU split.

This VM's speed drifts by +-20% from one minute to the next, so two single runs say nothing. ab.py runs
alternated pairs (A B, then B A, ...), each after its own warm-up, and reports every pair and the median
of the pairwise ratios. Each side is a fresh process: the JIT build needs about 30 s of load before it
stops tiering (bench/README.md), hence the default warm-up.

    python3 bench/ab.py --b /tmp/portico-new                      # bench/work/portico-jit against it
    python3 bench/ab.py --env-b PORTICO_LARGE_BLOCKS=0 --conns 128
    python3 bench/ab.py --b bench/work/portico-aot --warmup 30 --pairs 4

Needs what bench/run.sh installs (nginx as the origin, wrk) and a published build (bench/run.sh makes
bench/work/portico-jit). CPU per request is the proxy core's busy time (/proc/stat: user, system,
softirq) divided by the requests; with the core saturated that is also the process's utime + stime.
"""
import argparse
import pathlib
import statistics
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import bench  # noqa: E402


def core_busy_seconds(cpu):
    """Busy time of one CPU (all but idle and iowait), from /proc/stat."""
    with open("/proc/stat") as f:
        for line in f:
            parts = line.split()
            if parts[0] == "cpu" + cpu:
                v = [int(x) for x in parts[1:]]
                return (sum(v) - v[3] - v[4]) / bench.TICKS
    raise RuntimeError("cpu%s not in /proc/stat" % cpu)


def env_pairs(items):
    env = {}
    for item in items or []:
        key, _, value = item.partition("=")
        env[key] = value
    return env


def measure(folder, env, root, args, script):
    exe = pathlib.Path(folder) / "portico"
    if not exe.exists():
        raise SystemExit("%s is not built (dotnet publish src/portico -c Release -o %s)" % (exe, folder))
    conf = root / "ab.conf"
    conf.write_text(bench.proxy_conf(root, "", None, False, name="ab"))
    proc = bench.Proc("ab", [str(exe), "-p", str(root), "-c", str(conf)], bench.PROXY_CPU,
                      env={"DOTNET_gcServer": "0", **env})
    try:
        url = "http://127.0.0.1:%d%s" % (bench.PROXY_PORT, args.path)
        bench.run_wrk(url, args.conns, args.warmup, script)
        core0 = core_busy_seconds(bench.PROXY_CPU)
        r = bench.one_run(proc, lambda: bench.run_wrk(url, args.conns, args.duration, script))
        core1 = core_busy_seconds(bench.PROXY_CPU)
        r["core_us_per_req"] = (core1 - core0) * 1e6 / r["requests"] if r["requests"] else None
        r["peak_rss_mib"] = proc.peak_rss_kib() / 1024
        return r
    finally:
        proc.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--a", default=str(bench.WORK / "portico-jit"), help="folder of build A (default: bench/work/portico-jit)")
    ap.add_argument("--b", help="folder of build B (default: the same as A)")
    ap.add_argument("--env-a", action="append", metavar="K=V", help="environment for A (repeatable)")
    ap.add_argument("--env-b", action="append", metavar="K=V", help="environment for B (repeatable)")
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--path", default="/small", help="/small, /files/1m.bin, /files/16m.bin or /post")
    ap.add_argument("--pairs", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=30, help="seconds of load before each measurement")
    ap.add_argument("--duration", type=int, default=10)
    args = ap.parse_args()
    if not 1 <= args.pairs <= 20 or not 0 <= args.warmup <= 120 or not 1 <= args.duration <= 60:
        raise SystemExit("pairs 1-20, warm-up 0-120 s, duration 1-60 s")
    b_folder = args.b or args.a
    if b_folder == args.a and not args.env_a and not args.env_b:
        raise SystemExit("A and B are the same: give --b or an environment")

    bench.raise_fd_limit()
    root, _, origin = bench.start_origin(bench.WORK / "ab")
    script = (bench.WORK / "post64k.lua") if args.path == "/post" else None
    sides = {"A": (args.a, env_pairs(args.env_a)), "B": (b_folder, env_pairs(args.env_b))}
    results = {"A": [], "B": []}
    try:
        for i in range(args.pairs):
            for side in (("A", "B") if i % 2 == 0 else ("B", "A")):
                r = measure(*sides[side], root, args, script)
                results[side].append(r)
                bench.log("pair %d %s: %.0f req/s, %.1f us/req on the proxy core, p99 %s ms, %d errors"
                          % (i + 1, side, r["rps"], r["core_us_per_req"] or 0, r.get("p99_ms"), r.get("errors", 0)))
    finally:
        origin.stop()

    print("\n| | A | B | B/A |\n|---|---:|---:|---:|")
    for i, (a, b) in enumerate(zip(results["A"], results["B"])):
        print("| pair %d req/s | %.0f | %.0f | %.3f |" % (i + 1, a["rps"], b["rps"], b["rps"] / a["rps"]))
    ratios = [b["rps"] / a["rps"] for a, b in zip(results["A"], results["B"])]
    cpu = [b["core_us_per_req"] / a["core_us_per_req"] for a, b in zip(results["A"], results["B"])]
    med = lambda side, key: statistics.median(r[key] for r in results[side])
    print("| median req/s | %.0f | %.0f | %.3f (pairwise) |" % (med("A", "rps"), med("B", "rps"), statistics.median(ratios)))
    print("| median µs/req, proxy core | %.1f | %.1f | %.3f (pairwise) |"
          % (med("A", "core_us_per_req"), med("B", "core_us_per_req"), statistics.median(cpu)))
    print("| median peak RSS MiB | %.1f | %.1f | |" % (med("A", "peak_rss_mib"), med("B", "peak_rss_mib")))
    show = lambda env: " ".join("%s=%s" % kv for kv in env.items())
    print("\nA: %s %s\nB: %s %s" % (args.a, show(sides["A"][1]), b_folder, show(sides["B"][1])))


if __name__ == "__main__":
    main()
