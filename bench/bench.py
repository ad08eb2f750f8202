#!/usr/bin/env python3
"""Helper of bench/run.sh (python3 standard library only).

  bench.py ports N                  N free loopback TCP ports, one a line
  bench.py stats PORT               memcached's `stats`, as JSON
  bench.py session URL UA           GET URL once; print the Cookie header a
                                    browser would send next (from Set-Cookie)
  bench.py status URL UA COOKIE     GET URL with COOKIE; print the status code
                                    and X-Session-Status
  bench.py record OUT SCENARIO RUN WRK_OUT STATS_BEFORE STATS_AFTER
                                    append one run (wrk output + memcached
                                    stats delta) to OUT, a JSON-lines file
  bench.py median OUT SCENARIO      median req/s of SCENARIO's runs
  bench.py table OUT [MEMORY_JSON]  the table of medians
"""

import http.client
import json
import re
import socket
import statistics
import sys
import urllib.parse

# Every meta command bumps exactly one of these (measured on memcached
# 1.6.18): mg -> cmd_get, except a hit with T<ttl> -> cmd_touch (a miss with
# T is still cmd_get); ms (any mode, with or without C<cas>) -> cmd_set;
# md -> delete_hits or delete_misses; ma -> incr_/decr_ hits or misses.
# mn and `stats` bump none.
COMMAND_STATS = {
    "get": ["cmd_get"],
    "touch": ["cmd_touch"],
    "set": ["cmd_set"],
    "delete": ["delete_hits", "delete_misses"],
    "arith": ["incr_hits", "incr_misses", "decr_hits", "decr_misses"],
}


def ports(n):
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        for s in socks:
            print(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()


def stats(port):
    with socket.create_connection(("127.0.0.1", int(port)), timeout=5) as s:
        s.sendall(b"stats\r\n")
        buf = b""
        while not buf.endswith(b"END\r\n"):
            chunk = s.recv(65536)
            if not chunk:
                raise SystemExit("memcached closed the connection during stats")
            buf += chunk
    out = {}
    for line in buf.decode().splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[0] == "STAT":
            out[parts[1]] = parts[2]
    print(json.dumps(out))


def get(url, ua, cookie=None):
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
    headers = {"User-Agent": ua}
    if cookie:
        headers["Cookie"] = cookie
    conn.request("GET", u.path or "/", headers=headers)
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp


def session(url, ua):
    resp = get(url, ua)
    jar = []
    for name, value in resp.getheaders():
        if name.lower() == "set-cookie":
            pair = value.split(";", 1)[0].strip()
            if "=" in pair and pair.split("=", 1)[1]:
                jar.append(pair)
    if resp.status != 200 or not jar:
        raise SystemExit(f"bench: no session from {url}: HTTP {resp.status}")
    print("; ".join(jar))


def status(url, ua, cookie):
    resp = get(url, ua, cookie)
    print(resp.status, resp.getheader("X-Session-Status", "-"))


def to_ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        return None
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[m.group(2)]
    return float(m.group(1)) * scale


def parse_wrk(text):
    r = {"non2xx": 0, "socket_errors": 0, "statuses": {}}
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise SystemExit("bench: cannot parse wrk output:\n" + text)
    r["requests"] = int(m.group(1))
    r["seconds"] = to_ms(m.group(2) + m.group(3)) / 1000.0
    r["rps"] = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    for pct, key in (("50", "p50"), ("99", "p99")):
        m = re.search(r"^\s+" + pct + r"%\s+(\S+)", text, re.M)
        r[key] = to_ms(m.group(1)) if m else None
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        r["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        r["socket_errors"] = sum(int(x) for x in m.groups())
    m = re.search(r"^bench-statuses:(.*)$", text, re.M)
    if m:
        for kv in m.group(1).split():
            k, v = kv.split("=")
            r["statuses"][k] = int(v)
    return r


def record(out, scenario, run, wrk_out, before, after):
    with open(wrk_out) as f:
        r = parse_wrk(f.read())
    with open(before) as f:
        b = json.load(f)
    with open(after) as f:
        a = json.load(f)

    def delta(keys):
        return sum(int(a.get(k, 0)) - int(b.get(k, 0)) for k in keys)

    r["commands"] = {k: delta(v) for k, v in COMMAND_STATS.items()}
    # less the connection that read STATS_AFTER
    r["mc_connections"] = delta(["total_connections"]) - 1
    r["scenario"] = scenario
    r["run"] = int(run)
    with open(out, "a") as f:
        f.write(json.dumps(r) + "\n")


def load(out):
    with open(out) as f:
        return [json.loads(line) for line in f if line.strip()]


def median_rps(out, scenario):
    runs = [r["rps"] for r in load(out) if r["scenario"] == scenario]
    print(int(statistics.median(runs)) if runs else 0)


def fmt_ms(x):
    if x is None:
        return "-"
    return f"{x * 1000:.0f}us" if x < 1 else f"{x:.2f}ms"


def table(out, memory=None):
    rows = load(out)
    order = []
    for r in rows:
        if r["scenario"] not in order:
            order.append(r["scenario"])
    agg = {}
    for name in order:
        runs = [r for r in rows if r["scenario"] == name]
        reqs = sum(r["requests"] for r in runs)
        cmds = {k: sum(r["commands"][k] for r in runs) for k in COMMAND_STATS}
        if name == "memory":
            # runs of very different lengths: pool them, worst latency
            rps = reqs / sum(r["seconds"] for r in runs)
            p50 = max(r["p50"] for r in runs)
            p99 = max(r["p99"] for r in runs)
        else:
            rps = statistics.median(r["rps"] for r in runs)
            p50 = statistics.median(r["p50"] for r in runs)
            p99 = statistics.median(r["p99"] for r in runs)
        statuses = {}
        for r in runs:
            for k, v in r["statuses"].items():
                statuses[k] = statuses.get(k, 0) + v
        agg[name] = {
            "runs": len(runs),
            "rps": rps,
            "p50": p50,
            "p99": p99,
            "non2xx": sum(r["non2xx"] for r in runs),
            "socket_errors": sum(r["socket_errors"] for r in runs),
            # pooled over runs: total commands / total requests
            "cmd_per_req": sum(cmds.values()) / reqs if reqs else 0.0,
            "mix": {k: v / reqs if reqs else 0.0 for k, v in cmds.items()},
            "mc_connections": sum(r["mc_connections"] for r in runs),
            "statuses": statuses,
        }
    bare = agg.get("bare", {}).get("rps")

    head = ["scenario", "runs", "req/s", "p50", "p99", "non-2xx", "mc cmd/req",
            "get/touch/set/del per req", "vs bare"]
    lines = []
    for name in order:
        a = agg[name]
        m = a["mix"]
        mix = f"{m['get']:.2f}/{m['touch']:.2f}/{m['set']:.2f}/{m['delete']:.2f}"
        if m["arith"]:
            mix += f" +arith {m['arith']:.2f}"
        lines.append([
            name, str(a["runs"]), f"{a['rps']:.0f}", fmt_ms(a["p50"]), fmt_ms(a["p99"]),
            str(a["non2xx"]), f"{a['cmd_per_req']:.3f}", mix,
            f"{a['rps'] / bare:.2f}" if bare else "-",
        ])
    widths = [max(len(head[i]), *(len(l[i]) for l in lines)) for i in range(len(head))]

    def row(cells):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"

    print(row(head))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for l in lines:
        print(row(l))

    notes = []
    for name in order:
        a = agg[name]
        extra = []
        if a["statuses"]:
            extra.append("X-Session-Status " + " ".join(
                f"{k}={v}" for k, v in sorted(a["statuses"].items())))
        if a["socket_errors"]:
            extra.append(f"wrk socket errors {a['socket_errors']}")
        extra.append(f"memcached connections opened {a['mc_connections']}")
        notes.append(f"  {name}: " + "; ".join(extra))
    print()
    print("req/s, p50, p99: medians over runs (memory: pooled over its runs, worst p50/p99);")
    print("non-2xx: summed over runs (wrk's count of status >= 400);")
    print("mc cmd/req: memcached commands (stats delta) / requests, pooled over runs.")
    print("\n".join(notes))
    if memory:
        with open(memory) as f:
            m = json.load(f)
        print()
        print(f"memory (steady, fresh worker pid {m['pid']}):")
        for p in m["points"]:
            print(f"  VmRSS after {p['requests']:>9,} requests: {p['rss_kib']:>7,} KiB")
        if len(m["points"]) >= 2:
            g = m["points"][-1]["rss_kib"] - m["points"][0]["rss_kib"]
            print(f"  growth: {g:+,} KiB ({g / 1024:+.2f} MiB)")
        if m.get("respawned"):
            print("  WARNING: the worker pid changed during the run (crash/respawn?)")


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "ports":
        ports(int(args[0]))
    elif cmd == "stats":
        stats(args[0])
    elif cmd == "session":
        session(*args)
    elif cmd == "status":
        status(*args)
    elif cmd == "record":
        record(*args)
    elif cmd == "median":
        median_rps(*args)
    elif cmd == "table":
        table(*args)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
