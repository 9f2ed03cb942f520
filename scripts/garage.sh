#!/usr/bin/env bash
# Garage 2.5.0, a real S3-compatible server, for the S3 tests and bench/s3.sh:
#   scripts/garage.sh bin         prints the garage binary's path; builds it on first use
#                                 (cargo install, ~9 min) into ${GARAGE_ROOT:-~/.cache/garage-2.5.0}
#   scripts/garage.sh start DIR   single-node server on 127.0.0.1, data and metadata in DIR, bucket
#                                 imgprep-test; prints DIR/env (export IMGPREP_S3_* lines to source).
#                                 Ports are picked at the first start and kept, so a restart of the
#                                 same DIR serves the same data at the same endpoint. No-op if running.
#   scripts/garage.sh stop DIR    SIGTERM, SIGKILL after 10 s; no-op if not running.
set -euo pipefail
root="${GARAGE_ROOT:-$HOME/.cache/garage-2.5.0}"
key=GKimgpreptest0001 secret=imgprep-test-secret-0001 bucket=imgprep-test

die() { echo "garage.sh: $*" >&2; exit 1; }

garage_bin() {
  local bin="$root/bin/garage"
  if [ ! -x "$bin" ]; then
    echo "building garage 2.5.0 into $root (once, ~9 min)" >&2
    cargo install garage --version 2.5.0 --locked --no-default-features \
      --features bundled-libs,sqlite --root "$root" >&2
  fi
  echo "$bin"
}

running() { # pid file exists and names a live (not zombie) garage process
  local pid
  pid="$(cat "$dir/garage.pid" 2>/dev/null)" || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == garage* ]] || return 1
  [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

configure() { # first start of DIR: pick two free ports, write garage.toml
  local ports s3 rpc
  ports="$(python3 -c 'import socket
ss = [socket.socket() for _ in range(2)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in ss))')"
  read -r s3 rpc <<<"$ports"
  mkdir -p "$dir/meta" "$dir/data"
  cat > "$dir/garage.toml.tmp" <<TOML
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$rpc"
rpc_public_addr = "127.0.0.1:$rpc"
rpc_secret = "$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"

[s3_api]
s3_region = "us-east-1"
api_bind_addr = "127.0.0.1:$s3"
root_domain = ".s3.localhost"
TOML
  echo "$s3" > "$dir/s3_port"
  mv "$dir/garage.toml.tmp" "$dir/garage.toml"
}

start() {
  local bin port pid i
  bin="$(garage_bin)"
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  [ -f "$dir/garage.toml" ] || configure
  port="$(cat "$dir/s3_port")"
  if ! running; then
    ! port_open "$port" || die "127.0.0.1:$port is taken by another process"
    NO_COLOR=1 GARAGE_DEFAULT_ACCESS_KEY=$key GARAGE_DEFAULT_SECRET_KEY=$secret \
      GARAGE_DEFAULT_BUCKET=$bucket setsid "$bin" -c "$dir/garage.toml" server --single-node \
      --default-bucket >>"$dir/garage.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" > "$dir/garage.pid"
    for ((i = 0; i < 400; i++)); do # 20 s
      port_open "$port" && break
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.05
    done
    if ! port_open "$port"; then
      tail -n 30 "$dir/garage.log" >&2
      kill -KILL "$pid" 2>/dev/null || true
      die "garage did not open 127.0.0.1:$port (log: $dir/garage.log)"
    fi
  fi
  {
    printf 'export %s=%q\n' IMGPREP_S3_ENDPOINT "http://127.0.0.1:$port" IMGPREP_S3_BUCKET "$bucket" \
      IMGPREP_S3_KEY "$key" IMGPREP_S3_SECRET "$secret" IMGPREP_S3_REGION us-east-1 \
      IMGPREP_GARAGE_DIR "$dir" IMGPREP_GARAGE_SCRIPT "$(realpath "$0")"
  } > "$dir/env"
  echo "$dir/env"
}

stop() {
  local pid i
  running || { rm -f "$dir/garage.pid"; return 0; }
  pid="$(cat "$dir/garage.pid")"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do # 10 s
    running || break
    sleep 0.1
  done
  if running; then
    echo "garage.sh: garage (pid $pid) ignored SIGTERM for 10 s, killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do running || break; sleep 0.05; done
  fi
  rm -f "$dir/garage.pid"
}

cmd="${1:-}"
case "$cmd" in
  bin) garage_bin ;;
  start | stop)
    [ $# -eq 2 ] || die "usage: garage.sh $cmd DIR"
    dir="$2"
    "$cmd" ;;
  *) echo "usage: garage.sh bin | start DIR | stop DIR" >&2; exit 2 ;;
esac
