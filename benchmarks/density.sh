#!/usr/bin/env bash
# Desktop density of one vdistreamd: how many 1080p `typing` desktops it sustains with p99 host
# latency (captured -> encoded) <= 33 ms, and what an idle desktop costs in CPU.
#
# It generates configurations, runs `vdistreamd --config` with N desktops (each encoding into a
# .h264 recorder, so the encoder runs as it would for a viewer), waits for a warm-up, resets the
# latency histograms through the API, measures for a window, and reads /metrics (parsed by
# prometheus_client) and the process's CPU time from /proc.
#
#   benchmarks/density.sh [--vdistreamd PATH] [--counts "1 2 4 6 8 10 12"] [--seconds 10]
#                         [--fps 60] [--idle 8] [--out bench-out/density.json]
set -euo pipefail
exec /usr/bin/python3 - "$@" <<'PY'
import argparse, json, os, shutil, signal, socket, subprocess, sys, tempfile, time, urllib.request
from prometheus_client.parser import text_string_to_metric_families

here = os.path.dirname(os.path.abspath(sys.argv[0])) if sys.argv[0] not in ("-", "") else os.getcwd()
p = argparse.ArgumentParser(description="vdistreamd desktop density")
p.add_argument("--vdistreamd", default=os.path.join(os.getcwd(), "build", "service", "vdistreamd"))
p.add_argument("--counts", default="1 2 4 6 8 10 12", help="desktop counts to try, in order")
p.add_argument("--seconds", type=float, default=10.0, help="measuring window per run")
p.add_argument("--warmup", type=float, default=3.0)
p.add_argument("--fps", type=int, default=60, help="the synthetic desktops' frame rate")
p.add_argument("--size", default="1920x1080")
p.add_argument("--workload", default="typing")
p.add_argument("--idle", type=int, default=8, help="idle desktops for the CPU-per-idle-desktop run (0: skip)")
p.add_argument("--idle-fps", type=int, default=0,
               help="the idle desktops' frame rate (default --fps). The synthetic source wakes up at this rate "
                    "even when nothing changes, which a QEMU source does not: 1 approximates an idle VM")
p.add_argument("--limit-ms", type=float, default=33.0, help="p99 host latency a desktop must stay under")
p.add_argument("--out", default="bench-out/density.json")
a = p.parse_args(sys.argv[1:])
if not os.access(a.vdistreamd, os.X_OK):
    sys.exit(f"density: {a.vdistreamd} is not executable (build it, or give --vdistreamd)")

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close(); return port

def http(port, method, path):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read().decode()

def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

def metrics(port):
    out = {}
    for fam in text_string_to_metric_families(http(port, "GET", "/metrics")):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out

def per_desktop(m, name, **labels):
    return {l["desktop"]: v for l, v in m.get(name, []) if all(l.get(k) == x for k, x in labels.items())}

def run(count, workload, measure_latency, fps=None):
    fps = fps or a.fps
    work = tempfile.mkdtemp(prefix="vdistream-density-")
    port = free_port()
    lines = ["[service]", 'log_level = "warn"', "[http]", f'listen = "127.0.0.1:{port}"', "no_auth = true"]
    for i in range(count):
        lines += ["[[desktop]]", f'name = "d{i}"', f'source = "synthetic:{workload}@{a.size}@{fps}"',
                  f'record = "{work}/d{i}.h264"']
    with open(f"{work}/c.toml", "w") as f:
        f.write("\n".join(lines) + "\n")
    log = open(f"{work}/vdistreamd.log", "w")
    proc = subprocess.Popen([a.vdistreamd, "--config", f"{work}/c.toml"], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 60
        while True:
            try:
                d = json.loads(http(port, "GET", "/api/desktops"))["desktops"]
                if len(d) == count and all(x["state"] == "connected" for x in d):
                    break
            except OSError:
                pass
            if time.time() > deadline or proc.poll() is not None:
                raise RuntimeError(f"{count} desktops did not start; see {work}/vdistreamd.log")
            time.sleep(0.2)
        time.sleep(a.warmup)
        for i in range(count):
            http(port, "POST", f"/api/desktops/d{i}/reset-latency")
        m0, c0, t0 = metrics(port), cpu_seconds(proc.pid), time.time()
        time.sleep(a.seconds)
        m1, c1, t1 = metrics(port), cpu_seconds(proc.pid), time.time()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill(); proc.wait()
        log.close()
    dt = t1 - t0
    def delta(name):
        a0, a1 = per_desktop(m0, name), per_desktop(m1, name)
        return {k: a1[k] - a0.get(k, 0) for k in a1}
    p99 = per_desktop(m1, "vdistream_stage_latency_seconds", stage="total", quantile="0.99")
    p50 = per_desktop(m1, "vdistream_stage_latency_seconds", stage="total", quantile="0.5")
    captured, encoded, replaced = delta("vdistream_frames_captured_total"), delta("vdistream_frames_encoded_total"), delta("vdistream_frames_replaced_total")
    result = {
        "desktops": count, "workload": workload, "size": a.size, "source_fps": a.fps, "seconds": round(dt, 2),
        "cpu_percent_of_one_core": round(100 * (c1 - c0) / dt, 1),
        "fps_in_mean": round(sum(captured.values()) / count / dt, 1) if count else 0,
        "fps_encoded_mean": round(sum(encoded.values()) / count / dt, 1) if count else 0,
        "replaced_total": int(sum(replaced.values())),
        "p50_ms_worst": round(max(p50.values()) * 1e3, 2) if p50 else 0,
        "p99_ms_worst": round(max(p99.values()) * 1e3, 2) if p99 else 0,
        "p99_ms_per_desktop": {k: round(v * 1e3, 2) for k, v in sorted(p99.items())},
    }
    shutil.rmtree(work, ignore_errors=True)
    return result

with open("/proc/loadavg") as f:
    load_before = f.read().split()[:3]
print(f"density: {a.workload}@{a.size}@{a.fps}, {a.seconds:g} s windows after {a.warmup:g} s; "
      f"load average before: {' '.join(load_before)}; {os.cpu_count()} CPUs", flush=True)
print(f"{'desktops':>8} {'cpu % core':>10} {'fps in':>7} {'fps enc':>8} {'replaced':>9} {'p50 ms':>7} {'p99 ms':>7}  verdict", flush=True)
runs, sustained = [], 0
for n in [int(x) for x in a.counts.split()]:
    r = run(n, a.workload, True)
    ok = r["p99_ms_worst"] <= a.limit_ms and r["fps_in_mean"] >= 0.9 * a.fps
    r["sustained"] = ok
    runs.append(r)
    if ok:
        sustained = max(sustained, n)
    print(f"{n:>8} {r['cpu_percent_of_one_core']:>10} {r['fps_in_mean']:>7} {r['fps_encoded_mean']:>8} "
          f"{r['replaced_total']:>9} {r['p50_ms_worst']:>7} {r['p99_ms_worst']:>7}  "
          f"{'ok' if ok else 'over the limit'}", flush=True)
    if not ok:
        break

idle = None
if a.idle > 0:
    idle_fps = a.idle_fps or a.fps
    base = run(0, "idle", False, idle_fps)
    many = run(a.idle, "idle", False, idle_fps)
    per = (many["cpu_percent_of_one_core"] - base["cpu_percent_of_one_core"]) / a.idle
    idle = {"desktops": a.idle, "source_fps": idle_fps, "cpu_percent_of_one_core_total": many["cpu_percent_of_one_core"],
            "cpu_percent_of_one_core_empty_service": base["cpu_percent_of_one_core"],
            "cpu_percent_of_one_core_per_idle_desktop": round(per, 2)}
    print(f"idle: {a.idle} idle desktops at {idle_fps} fps cost {many['cpu_percent_of_one_core']}% of a core "
          f"(empty service {base['cpu_percent_of_one_core']}%): {per:.2f}% per idle desktop", flush=True)

with open("/proc/loadavg") as f:
    load_after = f.read().split()[:3]
print(f"sustained: {sustained} {a.workload} desktops at p99 <= {a.limit_ms:g} ms; load average after: {' '.join(load_after)}")
os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
with open(a.out, "w") as f:
    json.dump({"runs": runs, "sustained": sustained, "idle": idle, "limit_ms": a.limit_ms,
               "load_before": load_before, "load_after": load_after, "cpus": os.cpu_count()}, f, indent=2)
print(f"JSON: {a.out}")
PY
