# Brings up the PostgreSQL and Redis the tests and benches use, on
# 127.0.0.1:5432 and 127.0.0.1:6379: starts them if they are installed but
# down, installs them (Debian, as root) if they are missing, and otherwise
# fails loudly with what to do. Sourced by scripts/test and benches/load.sh.

services_die() {
    echo "error: $*" >&2
    cat >&2 <<'HELP'

The tests need PostgreSQL (trust auth for user postgres) on 127.0.0.1:5432
and Redis on 127.0.0.1:6379. On Debian or Ubuntu, as root:

    apt-get install -y postgresql redis-server
    pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no

Elsewhere, start both and point the tests at them with DIEM_TEST_PG_URL and
DIEM_TEST_REDIS_URL.
HELP
    exit 1
}

services_apt_install() {
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        services_die "$1 is not installed and cannot be installed here (need root and apt-get)"
    fi
    echo "installing $2 with apt-get ..." >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null \
        || services_die "apt-get install $2 failed"
}

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]; }

ensure_postgres() {
    if ! command -v pg_isready >/dev/null 2>&1; then
        services_apt_install PostgreSQL postgresql
    fi
    if ! pg_up; then
        echo "starting PostgreSQL ..." >&2
        if [ -d /etc/postgresql ] && command -v pg_ctlcluster >/dev/null 2>&1; then
            for v in $(ls /etc/postgresql); do
                pg_ctlcluster --skip-systemctl-redirect "$v" main start >/dev/null 2>&1 || true
            done
        fi
        for _ in $(seq 1 60); do pg_up && break; sleep 0.5; done
    fi
    pg_up || services_die "PostgreSQL does not answer on 127.0.0.1:5432"
    psql -h 127.0.0.1 -U postgres -d postgres -tAc 'select 1' >/dev/null 2>&1 \
        || services_die "PostgreSQL answers but user postgres cannot log in on 127.0.0.1 without a password (trust auth)"
}

ensure_redis() {
    if ! command -v redis-server >/dev/null 2>&1; then
        services_apt_install Redis redis-server
    fi
    if ! redis_up; then
        echo "starting Redis ..." >&2
        redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null \
            || services_die "redis-server failed to start"
        for _ in $(seq 1 40); do redis_up && break; sleep 0.25; done
    fi
    redis_up || services_die "Redis does not answer on 127.0.0.1:6379"
}

# ensure_tools CMD:PACKAGE ... — each command on PATH, installing its
# Debian package (as root) when missing; fails loudly otherwise.
ensure_tools() {
    local spec cmd pkg
    for spec in "$@"; do
        cmd=${spec%%:*}
        pkg=${spec#*:}
        if ! command -v "$cmd" >/dev/null 2>&1; then
            services_apt_install "$cmd" "$pkg"
            command -v "$cmd" >/dev/null 2>&1 || services_die "$cmd is still missing after installing $pkg"
        fi
    done
}

ensure_services() {
    if [ -n "${DIEM_TEST_PG_URL:-}" ] || [ -n "${DIEM_TEST_REDIS_URL:-}" ]; then
        echo "using DIEM_TEST_PG_URL / DIEM_TEST_REDIS_URL as given" >&2
        return 0
    fi
    ensure_postgres
    ensure_redis
}
