//! Live upgrade: a new process (a new binary, an older one to roll back,
//! or the same) takes over the running one's sockets, and no connection is
//! refused and no request fails.
//!
//! `diem ctl upgrade [--binary PATH] [--timeout 60s]` or `SIGUSR2`
//! (nginx's signal) asks the upgrader actor (`diem/upgrade`,
//! [`upgrader`]). The design is Cloudflare's ecdysis and Pingora's:
//!
//! 1. **Start.** The running process (old) binds a private hand-over
//!    socket (mode 0600, beside the control socket) and starts the binary
//!    with its own arguments and `DIEM_UPGRADE_SOCKET=<path>`, stderr piped
//!    (each line is copied to old's stderr, the last 20 kept for a failure
//!    report). Only the process it started may connect: the peer's pid is
//!    checked (`SO_PEERCRED`).
//! 2. **Pass.** Old sends a hello with duplicates of its HTTP listening
//!    socket, its control socket and its stderr as `SCM_RIGHTS` ([`wire`]),
//!    and what the new process must have before it is ready: Redis
//!    connected and the corpus loaded from PostgreSQL, if old has them.
//! 3. **Initialise.** New ([`successor`]) builds its whole tree on the
//!    received sockets with its accept loops held, waits until it has what
//!    old has and `/readyz` would say ready, and says `ready`. Old still
//!    accepts meanwhile. Crashing here is harmless: old sees the exit.
//! 4. **Switch.** Old says `go`; new opens its accept loops and says
//!    `accepting`; old stops its listener and control actors, closes its
//!    copies of the sockets (the kernel's socket, with its accept queue,
//!    lives on in new: nothing queued is lost, nothing is re-bound), stops
//!    its cluster subtree (freeing the cluster port) and says `released`;
//!    new then starts its cluster subtree and logs to old's stderr.
//! 5. **Drain.** Old answers `ctl upgrade` with both pids, versions and the
//!    phases' times, tells systemd `MAINPID=<new>`, and drains as on
//!    SIGTERM (without the readiness delay: it no longer has a listener):
//!    in-flight requests finish, keep-alive connections are answered with
//!    `Connection: close` and close; then it exits 0.
//!
//! If the binary cannot start, exits, or is not ready within the timeout,
//! old kills it and goes on serving; the command fails with the reason and
//! the new process's last log lines. One upgrade runs at a time.
//!
//! Why `SCM_RIGHTS` over a socket rather than inherited descriptors with
//! `LISTEN_FDS`: inheriting needs the descriptors at fixed numbers in the
//! child (`dup2` between fork and exec, which in Rust means `unsafe`
//! `pre_exec`) and `LISTEN_PID` set to a pid not known before the fork;
//! a socket carries them safely, lets old check who asks, and is a channel
//! for the ready/go/accepting/released steps too.

pub(crate) mod shared;
pub(crate) mod successor;
pub(crate) mod upgrade_msg;
pub(crate) mod upgrader;
pub(crate) mod wire;
