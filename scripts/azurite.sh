#!/usr/bin/env bash
# Azurite 3.37.0, Microsoft's Azure Blob Storage emulator (a real server), for the az:// tests:
#   scripts/azurite.sh bin         prints the azurite-blob path; installs it on first use
#                                  (npm, ~45 s) into ${AZURITE_ROOT:-~/.cache/azurite-3.37.0}
#   scripts/azurite.sh start DIR   blob service on 127.0.0.1 (a free port), data in DIR, container
#                                  imgprep-test; writes DIR/env (export lines to source). No-op if running.
#   scripts/azurite.sh stop DIR    stops it; no-op if not running.
set -euo pipefail
root="${AZURITE_ROOT:-$HOME/.cache/azurite-3.37.0}"
container=imgprep-test
account=devstoreaccount1
# Azurite's published development key (not a secret)
key='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

die() { echo "azurite.sh: $*" >&2; exit 1; }

azurite_bin() {
  local bin="$root/node_modules/.bin/azurite-blob"
  if [ ! -x "$bin" ]; then
    command -v npm >/dev/null || die "npm not found (Node 20 is expected on this machine)"
    echo "installing azurite 3.37.0 into $root (once, ~45 s)" >&2
    mkdir -p "$root"
    npm install --no-audit --no-fund --loglevel=error --prefix "$root" azurite@3.37.0 >&2
  fi
  echo "$bin"
}

running() {
  local pid
  pid="$(cat "$dir/azurite.pid" 2>/dev/null)" || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Create Container with a SharedKey-signed request (Azurite checks the signature).
create_container() {
  python3 - "$1" "$account" "$key" "$container" <<'PY'
import base64, hashlib, hmac, sys, urllib.request, urllib.error
from email.utils import formatdate
port, account, key, container = sys.argv[1:]
date = formatdate(usegmt=True)
version = "2021-08-06"
to_sign = "PUT\n" + "\n" * 11 + f"x-ms-date:{date}\nx-ms-version:{version}\n/{account}/{account}/{container}\nrestype:container"
sig = base64.b64encode(hmac.new(base64.b64decode(key), to_sign.encode(), hashlib.sha256).digest()).decode()
req = urllib.request.Request(f"http://127.0.0.1:{port}/{account}/{container}?restype=container", method="PUT",
    headers={"x-ms-date": date, "x-ms-version": version, "Authorization": f"SharedKey {account}:{sig}", "Content-Length": "0"})
try:
    urllib.request.urlopen(req).read()
except urllib.error.HTTPError as e:
    if e.code != 409:  # 409: exists already
        sys.exit(f"create container: {e.code} {e.read()[:300]!r}")
PY
}

cmd="${1:-}"
case "$cmd" in
  bin) azurite_bin ;;
  start)
    dir="$(realpath -m "${2:?usage: azurite.sh start DIR}")"
    mkdir -p "$dir/data"
    if ! running; then
      bin="$(azurite_bin)"
      [ -f "$dir/port" ] || python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' > "$dir/port"
      port="$(cat "$dir/port")"
      "$bin" --blobHost 127.0.0.1 --blobPort "$port" --location "$dir/data" --silent \
        --skipApiVersionCheck --disableProductStyleUrl >"$dir/azurite.log" 2>&1 &
      echo $! > "$dir/azurite.pid"
      for _ in $(seq 1 100); do port_open "$port" && break; sleep 0.1; done
      port_open "$port" || die "azurite did not start; see $dir/azurite.log"
      create_container "$port"
    fi
    port="$(cat "$dir/port")"
    cat > "$dir/env" <<ENV
export IMGPREP_AZ_ENDPOINT=http://127.0.0.1:$port
export IMGPREP_AZ_CONTAINER=$container
export IMGPREP_AZURITE_DIR=$dir
ENV
    echo "$dir/env"
    ;;
  stop)
    dir="$(realpath -m "${2:?usage: azurite.sh stop DIR}")"
    if running; then
      kill "$(cat "$dir/azurite.pid")" 2>/dev/null || true
      for _ in $(seq 1 50); do running || break; sleep 0.1; done
      running && kill -9 "$(cat "$dir/azurite.pid")" 2>/dev/null || true
    fi
    rm -f "$dir/azurite.pid"
    ;;
  *) die "usage: azurite.sh bin | start DIR | stop DIR" ;;
esac
