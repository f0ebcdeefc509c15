#!/usr/bin/env python3
"""Latency from `ctl kill` to the restart's frame on the observer's stream.

usage: observer_latency.py ADMIN_ADDR CONTROL_SOCKET [KILLS]

Connects to the event stream, then N times: sends a kill of a worker on
the control socket and waits for the `tree` frame that carries that
worker's `restarted` event; prints the median, p90, p99 and max in ms.
"""
import json, socket, statistics, sys, time

addr, sock_path = sys.argv[1], sys.argv[2]
kills = int(sys.argv[3]) if len(sys.argv) > 3 else 100
host, port = addr.rsplit(":", 1)
stream = socket.create_connection((host, int(port)))
stream.sendall(f"GET /observer/events HTTP/1.1\r\nHost: {addr}\r\n\r\n".encode())
buf = b""

def frames():
    global buf
    while True:
        while b"\n\n" in buf:
            raw, buf = buf.split(b"\n\n", 1)
            lines = raw.decode("utf-8", "replace").splitlines()
            name = next((l[7:] for l in lines if l.startswith("event: ")), None)
            data = next((l[6:] for l in lines if l.startswith("data: ")), None)
            if name and data:
                yield name, json.loads(data)
        chunk = stream.recv(65536)
        if not chunk:
            return
        buf += chunk

feed = frames()
for name, _ in feed:
    if name == "snapshot":
        break
samples = []
for i in range(kills):
    path = f"diem/workers/{1 + i % 4}"
    ctl = socket.socket(socket.AF_UNIX)
    ctl.connect(sock_path)
    t0 = time.monotonic()
    ctl.sendall((json.dumps({"cmd": "kill", "path": path}) + "\n").encode())
    for name, data in feed:
        if name == "tree" and any(e.get("kind") == "restarted" and e.get("path", "").startswith("diem/workers/") for e in data.get("events", [])):
            samples.append((time.monotonic() - t0) * 1000)
            break
    ctl.recv(65536)
    ctl.close()
    time.sleep(0.15)
samples.sort()
q = lambda p: samples[min(len(samples) - 1, int(p * len(samples)))]
print(f"kills={len(samples)} median_ms={statistics.median(samples):.1f} p90_ms={q(0.9):.1f} p99_ms={q(0.99):.1f} max_ms={samples[-1]:.1f}")
