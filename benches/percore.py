#!/usr/bin/env python3
"""The per-core layout of the full service, for benches/load.sh (issue 13,
lead 4): N diem processes of one runtime thread each, sharing one listening
socket, instead of one process with N runtime threads.

    benches/percore.py PORT N -- diem [ARG ...]

Binds 127.0.0.1:PORT and passes it by socket activation (LISTEN_FDS=1,
descriptor 3, LISTEN_PID the child's own) to N copies of the command, each
with DIEM_RUNTIME__WORKER_THREADS=1 and its own control socket
($CTL.<i>, default /tmp/diem-percore.ctl.<i>). Every copy has its own
supervision tree, workers and Redis connection; the kernel hands each new
connection to whichever copy accepts it first. SIGTERM or SIGINT is passed
on to every copy; returns when all have exited.
"""
import os, signal, socket, sys
if len(sys.argv) < 5 or sys.argv[3] != "--" or not sys.argv[1].isdigit() or not sys.argv[2].isdigit():
    sys.exit("usage: benches/percore.py PORT N -- COMMAND [ARG ...]")
port, n = int(sys.argv[1]), int(sys.argv[2])
cmd = sys.argv[4:]
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port)); s.listen(4096)
kids = []
for i in range(n):
    pid = os.fork()
    if pid == 0:
        os.dup2(s.fileno(), 3)
        os.set_inheritable(3, True)
        env = dict(os.environ, LISTEN_FDS="1", LISTEN_PID=str(os.getpid()),
                   DIEM_RUNTIME__WORKER_THREADS="1",
                   DIEM_CONTROL__SOCKET=os.environ.get("CTL", "/tmp/diem-percore.ctl") + f".{i}")
        env.pop("LISTEN_FDNAMES", None)
        os.execvpe(cmd[0], cmd, env)
    kids.append(pid)
s.close()
def stop(*_):
    for k in kids:
        try: os.kill(k, signal.SIGTERM)
        except ProcessLookupError: pass
signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
for k in kids:
    try: os.waitpid(k, 0)  # interrupted by a signal, Python retries (PEP 475)
    except ChildProcessError: pass
