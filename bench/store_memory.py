#!/usr/bin/env python3
"""Helper of bench/store-memory.sh (python3 standard library only).

  store_memory.py mc PORT
        memcached's `stats`, `stats slabs` and `stats items` as one JSON
        object {"stats": {...}, "slabs": {class: {...}}, "items": {class:
        {...}}}
  store_memory.py sessions URL N CONNS REQUESTS JARS
        N sessions, CONNS at a time (one per keep-alive connection), each
        made of REQUESTS sequential requests: the first without a cookie,
        every later one with the cookies the earlier responses set, as a
        browser sends them. The final Cookie header of every session goes
        to JARS, one a line. Prints the X-Session-Status counts and the
        request rate as JSON.
  store_memory.py check URL JARS CONNS
        one request per session of JARS with its cookies; prints the
        X-Session-Status counts as JSON
  store_memory.py flood URL M CONNS DEPTH
        M requests without a cookie (each makes a session that is never
        read again), DEPTH pipelined on each of CONNS connections; prints
        the count, the seconds and the X-Session-Status counts as JSON
  store_memory.py keep URL JARS INTERVAL STOPFILE CONNS
        requests every session of JARS once every INTERVAL seconds (spread
        evenly) until STOPFILE exists; a session whose cookies come back
        anything but `valid` or `error` (memcached late) lost its record.
        Prints, as JSON, the requests made, the sessions lost, the longest
        time between two requests of one session and the X-Session-Status
        counts.
  store_memory.py report TMP FLOOD_MB INTERVAL PARTS
        the report of bench/store-memory.sh from the files it left in TMP
"""

import collections
import json
import os
import selectors
import socket
import sys
import time
import urllib.parse

UA = "paranoid-store-memory/1"


def memcached(port, command):
    with socket.create_connection(("127.0.0.1", int(port)), timeout=5) as s:
        s.sendall(command.encode() + b"\r\n")
        buf = b""
        while not buf.endswith(b"END\r\n"):
            chunk = s.recv(65536)
            if not chunk:
                raise SystemExit("memcached closed the connection")
            buf += chunk
    out = {}
    for line in buf.decode().splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[0] == "STAT":
            out[parts[1]] = parts[2]
    return out


def number(text):
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def mc(port):
    stats = {k: number(v) for k, v in memcached(port, "stats").items()}
    slabs, items = {}, {}
    for k, v in memcached(port, "stats slabs").items():
        cls, sep, field = k.partition(":")
        if sep:
            slabs.setdefault(cls, {})[field] = number(v)
        else:
            slabs.setdefault("total", {})[k] = number(v)
    for k, v in memcached(port, "stats items").items():
        _, cls, field = k.split(":", 2)
        items.setdefault(cls, {})[field] = number(v)
    print(json.dumps({"stats": stats, "slabs": slabs, "items": items}))


def request(path, host, cookie):
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", f"User-Agent: {UA}"]
    if cookie:
        lines.append(f"Cookie: {cookie}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def apply_cookies(jar, set_cookies):
    """A browser's jar, reduced to what the module sets: name -> value; an
    empty value or Max-Age <= 0 removes the cookie."""
    for line in set_cookies:
        pair, _, attrs = line.partition(";")
        name, eq, value = pair.strip().partition("=")
        if not eq:
            continue
        max_age = None
        for attr in attrs.split(";"):
            k, _, v = attr.strip().partition("=")
            if k.lower() == "max-age":
                try:
                    max_age = int(v)
                except ValueError:
                    pass
        if value == "" or (max_age is not None and max_age <= 0):
            jar.pop(name, None)
        else:
            jar[name] = value


def cookie_header(jar):
    return "; ".join(f"{k}={v}" for k, v in jar.items())


def parse_cookie_header(text):
    jar = {}
    for part in text.split(";"):
        k, eq, v = part.strip().partition("=")
        if eq:
            jar[k] = v
    return jar


class Conn:
    def __init__(self, addr, driver):
        self.sock = socket.create_connection(addr, timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.rbuf = bytearray()
        self.wbuf = bytearray()
        self.inflight = collections.deque()
        self.driver = driver
        self.events = 0

    def responses(self):
        """Complete responses in the read buffer, in order."""
        while True:
            end = self.rbuf.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(self.rbuf[:end]).decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            length, session, cookies = 0, "-", []
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name = name.lower()
                if name == "content-length":
                    length = int(value)
                elif name == "x-session-status":
                    session = value.strip()
                elif name == "set-cookie":
                    cookies.append(value.strip())
            total = end + 4 + length
            if len(self.rbuf) < total:
                return
            del self.rbuf[:total]
            yield self.inflight.popleft(), status, session, cookies


def drive(url, drivers):
    """Runs every driver on a connection of its own until all are done.
    A driver has next(now, inflight) -> None (nothing to send now), a float
    (seconds until it has something), "done", or (bytes, context); and
    on_response(context, status, session_status, set_cookies, now)."""
    u = urllib.parse.urlsplit(url)
    addr = (u.hostname, u.port)
    sel = selectors.DefaultSelector()
    conns = [Conn(addr, d) for d in drivers]
    done = set()
    while len(done) < len(conns):
        now = time.monotonic()
        timeout = 0.2
        for c in conns:
            if c in done:
                continue
            while True:
                r = c.driver.next(now, len(c.inflight))
                if r is None:
                    break
                if r == "done":
                    if not c.inflight:
                        done.add(c)
                    break
                if isinstance(r, float):
                    timeout = min(timeout, r)
                    break
                data, ctx = r
                c.wbuf += data
                c.inflight.append(ctx)
            if c.wbuf:
                try:
                    n = c.sock.send(c.wbuf)
                    del c.wbuf[:n]
                except BlockingIOError:
                    pass
            want = 0
            if c.inflight:
                want |= selectors.EVENT_READ
            if c.wbuf:
                want |= selectors.EVENT_WRITE
            if want != c.events:
                if c.events == 0:
                    sel.register(c.sock, want, c)
                elif want == 0:
                    sel.unregister(c.sock)
                else:
                    sel.modify(c.sock, want, c)
                c.events = want
        if len(done) == len(conns):
            break
        if not sel.get_map():
            time.sleep(max(timeout, 0))
            continue
        for key, ev in sel.select(max(timeout, 0)):
            c = key.data
            if ev & selectors.EVENT_READ:
                try:
                    data = c.sock.recv(262144)
                except BlockingIOError:
                    data = None
                if data is not None:
                    if not data:
                        raise SystemExit("store_memory: nginx closed a connection")
                    c.rbuf += data
                    now = time.monotonic()
                    for ctx, status, session, cookies in c.responses():
                        c.driver.on_response(ctx, status, session, cookies, now)
    for c in conns:
        c.sock.close()


class Counts:
    def __init__(self):
        self.statuses = collections.Counter()

    def add(self, status, session):
        self.statuses[f"{status} {session}"] += 1


class SessionsDriver:
    """Sessions one after another, each REQUESTS requests in sequence."""

    def __init__(self, host, path, shared, requests, counts):
        self.host, self.path = host, path
        self.shared, self.requests, self.counts = shared, requests, counts
        self.current = None

    def next(self, now, inflight):
        if inflight:
            return None
        if self.current is None:
            if not self.shared["todo"]:
                return "done"
            self.current = {"jar": self.shared["todo"].popleft(), "done": 0}
        jar = self.current["jar"]
        return request(self.path, self.host, cookie_header(jar)), None

    def on_response(self, ctx, status, session, cookies, now):
        self.counts.add(status, session)
        apply_cookies(self.current["jar"], cookies)
        self.current["done"] += 1
        if self.current["done"] == self.requests:
            self.shared["jars"].append(self.current["jar"])
            self.current = None


def run_sessions(url, jars_in, conns, requests):
    u = urllib.parse.urlsplit(url)
    shared = {"todo": collections.deque(jars_in), "jars": []}
    counts = Counts()
    started = time.monotonic()
    n = min(conns, len(jars_in))
    drive(url, [SessionsDriver(u.netloc, u.path, shared, requests, counts) for _ in range(n)])
    seconds = time.monotonic() - started
    total = sum(counts.statuses.values())
    return shared["jars"], {
        "sessions": len(jars_in),
        "requests": total,
        "seconds": round(seconds, 2),
        "rps": round(total / seconds) if seconds else 0,
        "statuses": dict(counts.statuses),
    }


def sessions(url, n, conns, requests, jars_out):
    jars, result = run_sessions(url, [{} for _ in range(int(n))], int(conns), int(requests))
    with open(jars_out, "w") as f:
        for jar in jars:
            f.write(cookie_header(jar) + "\n")
    print(json.dumps(result))


def load_jars(path):
    with open(path) as f:
        return [parse_cookie_header(line.strip()) for line in f if line.strip()]


def check(url, jars_in, conns):
    _, result = run_sessions(url, load_jars(jars_in), int(conns), 1)
    print(json.dumps(result))


class FloodDriver:
    def __init__(self, data, shared, depth, counts):
        self.data, self.shared, self.depth, self.counts = data, shared, depth, counts

    def next(self, now, inflight):
        if self.shared["left"] <= 0:
            return "done"
        if inflight >= self.depth:
            return None
        self.shared["left"] -= 1
        return self.data, None

    def on_response(self, ctx, status, session, cookies, now):
        self.counts.add(status, session)


def flood(url, m, conns, depth):
    u = urllib.parse.urlsplit(url)
    data = request(u.path, u.netloc, "")
    shared = {"left": int(m)}
    counts = Counts()
    started = time.monotonic()
    drive(url, [FloodDriver(data, shared, int(depth), counts) for _ in range(int(conns))])
    seconds = time.monotonic() - started
    total = sum(counts.statuses.values())
    print(json.dumps({
        "requests": total,
        "seconds": round(seconds, 2),
        "rps": round(total / seconds) if seconds else 0,
        "statuses": dict(counts.statuses),
    }))


class KeepDriver:
    """Its share of the sessions, each requested once per interval."""

    def __init__(self, host, path, sessions, interval, stopfile, counts):
        self.host, self.path = host, path
        self.sessions, self.interval = sessions, interval
        self.stopfile, self.counts = stopfile, counts
        self.i = 0
        self.checked = 0.0

    def next(self, now, inflight):
        if inflight:
            return None
        if now - self.checked >= 0.1:
            self.checked = now
            if os.path.exists(self.stopfile):
                return "done"
        if not self.sessions:
            return 0.1
        s = self.sessions[self.i]
        if now < s["due"]:
            return s["due"] - now
        return request(self.path, self.host, cookie_header(s["jar"])), s

    def on_response(self, s, status, session, cookies, now):
        self.counts.add(status, session)
        # `error` (memcached did not answer in time) says nothing of the
        # record; anything else but `valid` means it was gone.
        if session not in ("valid", "error") and not s["lost"]:
            s["lost"] = session
        apply_cookies(s["jar"], cookies)
        if s["last"] is not None:
            s["gap"] = max(s["gap"], now - s["last"])
        s["last"] = now
        s["due"] += self.interval
        self.i = (self.i + 1) % len(self.sessions)


def keep(url, jars_in, interval, stopfile, conns):
    u = urllib.parse.urlsplit(url)
    interval = float(interval)
    jars = load_jars(jars_in)
    start = time.monotonic()
    all_sessions = [
        {"jar": jar, "due": start + interval * i / len(jars), "last": None, "gap": 0.0, "lost": None}
        for i, jar in enumerate(jars)
    ]
    counts = Counts()
    conns = int(conns)
    drivers = [
        KeepDriver(u.netloc, u.path, all_sessions[k::conns], interval, stopfile, counts)
        for k in range(conns)
    ]
    drive(url, drivers)
    lost = collections.Counter(s["lost"] for s in all_sessions if s["lost"])
    print(json.dumps({
        "sessions": len(all_sessions),
        "requests": sum(counts.statuses.values()),
        "seconds": round(time.monotonic() - start, 2),
        "lost": sum(lost.values()),
        "lost_as": dict(lost),
        "longest_gap": round(max((s["gap"] for s in all_sessions), default=0.0), 2),
        "statuses": dict(counts.statuses),
    }))


def report(tmp, flood_mb, interval, parts):
    """The tables of bench/store-memory.sh, from the files it left in TMP."""
    parts = int(parts)

    def load(name):
        with open(os.path.join(tmp, name)) as f:
            return json.load(f)

    def used_classes(mc_):
        return [(c, v) for c, v in mc_["slabs"].items()
                if c != "total" and v.get("used_chunks", 0) > 0]

    print()
    print("1. Memory per session (memcached -m 1024: nothing evicted)")
    print()
    print("| case | sessions | requests each | value | item | slab chunk | sessions per GiB of -m |")
    print("|---|---|---|---|---|---|---|")
    with open(os.path.join(tmp, "cases")) as f:
        cases = [line.split() for line in f]
    for name, reqs, value, n in cases:
        n = int(n)
        client = load(f"{name}.client")
        mc_ = load(f"{name}.mc")
        s = mc_["stats"]
        items = s["curr_items"]
        odd = {k: v for k, v in client["statuses"].items() if k not in ("200 new", "200 valid")}
        if items != n or odd:
            raise SystemExit(f"store-memory: {name}: {items} items for {n} sessions, "
                             f"statuses {client['statuses']}")
        used = used_classes(mc_)
        if len(used) != 1:
            raise SystemExit(f"store-memory: {name}: records in {len(used)} slab classes")
        cls, slab = used[0]
        # -m counts slab pages of 1 MiB; a page of this class holds
        # chunks_per_page records.
        print(f"| {name} | {n:,} | {reqs} | {value} B | {s['bytes'] / items:.0f} B | "
              f"{slab['chunk_size']} B (class {cls}) | {1024 * slab['chunks_per_page']:,} |")
    first = load(f"{cases[0][0]}.mc")["stats"]
    print()
    print("value: the record (core/src/record.rs); item: memcached's bytes / curr_items "
          "(item header, CAS, key = prefix + 64 hex = 67 B, value); slab chunk: what an "
          "item occupies. Outside -m: the hash table, "
          f"{first['hash_bytes'] // 1024} KiB at {first['curr_items']:,} items "
          "(8 B per bucket, doubled when there are 1.5 items per bucket).")

    before = load("flood.0.mc")
    last = load(f"flood.{parts}.mc")
    floods = [load(f"flood.{i}.client") for i in range(1, parts + 1)]
    total = sum(f["requests"] for f in floods)
    seconds = sum(f["seconds"] for f in floods)
    rate = total / seconds if seconds else 0
    capacity = last["stats"]["curr_items"]
    statuses = collections.Counter()
    for f in floods:
        statuses.update(f["statuses"])
    print()
    print(f"2. Flood: {total:,} cookie-less requests in {seconds:.1f} s ({rate:,.0f} req/s), "
          f"memcached -m {flood_mb}; statuses {dict(statuses)}")
    print()
    classes = ", ".join(f"class {c}: {v['used_chunks']:,} x {v['chunk_size']} B"
                        for c, v in used_classes(last))
    print(f"memcached holds {capacity:,} records when full ({classes}); at {rate:,.0f} "
          f"new sessions/s the flood replaces them all every {capacity / rate:.1f} s.")
    print()
    print("| after | flood requests | seconds | turnovers | LRU evictions (fetched before) "
          "| pages moved (their records evicted) | idle sessions lost: new, 108 B | renewed, 148 B |")
    print("|---|---|---|---|---|---|---|---|")
    done, secs = 0, 0.0
    for i in range(1, parts + 1):
        done += floods[i - 1]["requests"]
        secs += floods[i - 1]["seconds"]
        st = load(f"flood.{i}.mc")["stats"]
        ev = st["evictions"] - before["stats"]["evictions"]
        fetched = ev - (st["evicted_unfetched"] - before["stats"]["evicted_unfetched"])
        cells = []
        for group in ("idle", "idler"):
            check_ = load(f"{group}.{i}.check")
            lost = sum(v for k, v in check_["statuses"].items()
                       if k.split()[-1] not in ("valid", "error"))
            cells.append(f"{lost} of {check_['sessions']}")
        moved = st["slabs_moved"] - before["stats"]["slabs_moved"]
        nomem = (st["slab_reassign_evictions_nomem"]
                 - before["stats"]["slab_reassign_evictions_nomem"])
        print(f"| part {i} | {done:,} | {secs:.1f} | {done / capacity:.1f} | {ev:,} ({fetched:,}) | "
              f"{moved} ({nomem:,}) | {' | '.join(cells)} |")
    keep_ = load("active.keep")
    print()
    print(f"Active sessions, each requested every {interval} s during the flood "
          f"(longest gap {keep_['longest_gap']} s, {keep_['requests']:,} requests): "
          f"{keep_['lost']} of {keep_['sessions']} lost; statuses {keep_['statuses']}")
    print()
    print("memcached per slab class after the flood:")
    for c, v in sorted(last["items"].items(), key=lambda kv: int(kv[0])):
        print(f"  class {c}: hot {v.get('number_hot')}, warm {v.get('number_warm')}, "
              f"cold {v.get('number_cold')}; moves_to_cold {v.get('moves_to_cold')}, "
              f"moves_to_warm {v.get('moves_to_warm')}, evicted {v.get('evicted')}, "
              f"evicted_unfetched {v.get('evicted_unfetched')}")
    st = last["stats"]
    print(f"  slabs_moved {st.get('slabs_moved')}, slab_reassign_rescues "
          f"{st.get('slab_reassign_rescues')}, slab_reassign_evictions_nomem "
          f"{st.get('slab_reassign_evictions_nomem')}")


def main(argv):
    commands = {
        "mc": (mc, 1),
        "sessions": (sessions, 5),
        "check": (check, 3),
        "flood": (flood, 4),
        "keep": (keep, 5),
        "report": (report, 4),
    }
    if len(argv) < 2 or argv[1] not in commands or len(argv) - 2 != commands[argv[1]][1]:
        raise SystemExit(__doc__)
    fn, _ = commands[argv[1]]
    fn(*argv[2:])


if __name__ == "__main__":
    main(sys.argv)
