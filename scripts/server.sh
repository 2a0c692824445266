# Sourced by scripts/bench and scripts/soak: a fresh wrangler dev per run, from a snapshot of
# the build, in its own process group, with its PIDs and both ports found (see start_server).
# Expects lib.sh sourced and the working directory at the repository root.

# tickwire runs from a snapshot of its build (build/, static/, wrangler.toml without [build]):
# wrangler dev watches src/ and build/ and reloads the Worker when they change, which would close
# every socket of a run if someone edits or rebuilds meanwhile. Sets SNAP (removed on exit).
SNAP= SNAP_AT=
snapshot_build() {
  "$ROOT/scripts/build"
  SNAP=$(snapshot_of "$ROOT")
}
snapshot_of() { # TREE -> a new folder with TREE's build, static files and wrangler.toml
  local snap
  snap=$(mktemp -d)
  cp -r "$1/build" "$1/static" "$snap/"
  # The connect limit per client address is raised: every benchmark socket comes from 127.0.0.1
  # (the limiter is still asked on every connect, so its cost is measured).
  awk '/^\[build\]/ { skip = 1; next } /^\[/ { skip = 0 } !skip' "$1/wrangler.toml" |
    sed 's/^simple = { limit = [0-9]*,/simple = { limit = 1000000,/' >"$snap/wrangler.toml"
  # Target tickwire-nolimiter: the same build without the limiter binding (the Worker then lets
  # connects through), to show what the limiter costs where wrangler dev simulates it.
  awk '/^\[\[ratelimits\]\]/ { skip = 1; next } /^\[/ { skip = 0 } !skip' "$snap/wrangler.toml" \
    >"$snap/wrangler-nolimiter.toml"
  echo "$snap"
}

# Target tickwire-at: the build of commit $AT, from a detached worktree under target/ that is
# removed once built, so a change is measured against what came before it in the same run.
# The worktree borrows this checkout's node_modules and .tools (esbuild, wasm-opt, Node).
build_at() {
  local tree=$ROOT/target/bench-at
  log "building tickwire at $AT (tickwire-at)"
  git -C "$ROOT" worktree remove --force "$tree" 2>/dev/null || rm -rf "$tree"
  git -C "$ROOT" worktree prune
  git -C "$ROOT" worktree add --quiet --detach "$tree" "$AT" ||
    { echo "${0##*/}: AT=$AT is not a commit of this repository" >&2; exit 1; }
  ln -s "$ROOT/node_modules" "$tree/node_modules"
  [ -d "$ROOT/.tools" ] && ln -s "$ROOT/.tools" "$tree/.tools"
  if ! CARGO_TARGET_DIR="$ROOT/target/bench-at-target" "$tree/scripts/build" >"$ROOT/target/bench-at.log" 2>&1; then
    git -C "$ROOT" worktree remove --force "$tree"
    echo "${0##*/}: building $AT failed (target/bench-at.log)" >&2
    exit 1
  fi
  SNAP_AT=$(snapshot_of "$tree")
  git -C "$ROOT" worktree remove --force "$tree"
}

# The workers-rs port of the baseline (tests/bench/baseline-rs), built with worker-build's own
# defaults: it stands for what any workers-rs Durable Object costs, not for tickwire's build.
build_baseline_rs() {
  log "building the workers-rs baseline"
  (use_wasm_toolchain && cd "$ROOT/tests/bench/baseline-rs" &&
    CARGO_TARGET_DIR="$ROOT/target/baseline-rs" worker-build --release >/dev/null 2>&1) ||
    { echo "${0##*/}: building tests/bench/baseline-rs failed" >&2; exit 1; }
}

# The server of the current case: wrangler's PID (leader of its own process group), its state.
SRV_PID= SRV_DIR= SERVER_PIDS= PROXY_PIDS= DIRECT_PORT= WRANGLER_PORT= TOKEN= TOKEN_SECRET=
stop_server() {
  if [ -n "$SRV_PID" ]; then
    kill -- -"$SRV_PID" 2>/dev/null || kill "$SRV_PID" 2>/dev/null || true
    wait "$SRV_PID" 2>/dev/null || true
  fi
  [ -n "$SRV_DIR" ] && rm -rf "$SRV_DIR"
  SRV_PID= SRV_DIR= SERVER_PIDS= PROXY_PIDS= DIRECT_PORT= WRANGLER_PORT=
}
trap 'stop_server; rm -rf ${SNAP:+"$SNAP"} ${SNAP_AT:+"$SNAP_AT"}' EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
descendants() {
  local c
  for c in $(pgrep -P "$1" || true); do echo "$c"; descendants "$c"; done
}
listen_ports() { # PID -> the TCP ports it listens on at 127.0.0.1
  ss -ltnpH | awk -v p="pid=$1," 'index($0, p) && $4 ~ /^127\.0\.0\.1:/ { sub(/.*:/, "", $4); print $4 }'
}
# Whether PORT answers /health as the Worker of TARGET does (tickwire: JSON with "status", 200
# or 503 when an upstream is down; the baselines: 200).
is_worker() {
  local body code
  body=$(curl -s -m 3 -w '\n%{http_code}' "http://127.0.0.1:$2/health" 2>/dev/null) || return 1
  code=${body##*$'\n'}
  if [[ "$1" == tickwire* ]]; then [[ "$body" == *'"status"'* ]] && [[ $code == 200 || $code == 503 ]]
  else [ "$code" = 200 ]; fi
}

# Starts TARGET's wrangler dev on a free port with fresh state; sets the PIDs and both ports.
start_server() {
  local target=$1 p wpids port
  WRANGLER_PORT=$(free_port) SRV_DIR=$(mktemp -d) TOKEN=bench-$RANDOM$RANDOM
  TOKEN_SECRET=bench-secret-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  local common=(--local --ip 127.0.0.1 --port "$WRANGLER_PORT" --persist-to "$SRV_DIR/state"
    --show-interactive-dev-session=false --var "PUBLISH_TOKEN:$TOKEN")
  set -m # its own process group, so stop_server reaches workerd too
  if [[ "$target" == tickwire* ]]; then
    local config=$SNAP/wrangler.toml
    [ "$target" = tickwire-nolimiter ] && config=$SNAP/wrangler-nolimiter.toml
    [ "$target" = tickwire-at ] && config=$SNAP_AT/wrangler.toml
    # Target tickwire-private: the same build with a token secret (its sockets present tokens).
    [ "$target" = tickwire-private ] && common+=(--var "TOKEN_SECRET:$TOKEN_SECRET")
    TICKWIRE_PREBUILT=1 wrangler dev "${common[@]}" --var CLIENT_MSGS_PER_10S:1000 -c "$config" \
      >"$SRV_DIR/log" 2>&1 &
  else
    wrangler dev "${common[@]}" -c "tests/bench/$target/wrangler.toml" >"$SRV_DIR/log" 2>&1 &
  fi
  SRV_PID=$!
  set +m
  local deadline=$((SECONDS + 120))
  until is_worker "$target" "$WRANGLER_PORT"; do
    if ! kill -0 "$SRV_PID" 2>/dev/null || [ $SECONDS -gt $deadline ]; then
      tail -20 "$SRV_DIR/log" >&2
      echo "${0##*/}: $target did not start" >&2
      exit 1
    fi
    sleep 0.5
  done
  wpids=$(for p in $(descendants "$SRV_PID"); do
    if [ "$(cat "/proc/$p/comm" 2>/dev/null)" = workerd ]; then echo "$p"; fi
  done)
  for p in $wpids; do
    for port in $(listen_ports "$p"); do
      if [ "$port" = "$WRANGLER_PORT" ]; then PROXY_PIDS+=" $p"; continue 2; fi
      if [ -z "$DIRECT_PORT" ] && is_worker "$target" "$port"; then DIRECT_PORT=$port SERVER_PIDS+=" $p"; continue 2; fi
    done
    SERVER_PIDS+=" $p" # a workerd with no port of ours: count it as the server's
  done
  # wrangler's node processes (the CLI drives the proxy) count as proxy too.
  for p in $(descendants "$SRV_PID") "$SRV_PID"; do
    if [ "$(cat "/proc/$p/comm" 2>/dev/null)" = node ]; then PROXY_PIDS+=" $p"; fi
  done
  if [ -z "$DIRECT_PORT" ]; then
    echo "${0##*/}: no workerd port of $target answers /health (workerd: $wpids)" >&2
    exit 1
  fi
  log "$target: wrangler port $WRANGLER_PORT, direct port $DIRECT_PORT, server pids$SERVER_PIDS, proxy pids$PROXY_PIDS"
}

