# Shared by the scripts: paths, offline settings, and the toolchain the wasm build uses.
# Sourced, not run. Everything here is cheap (no network, no installs).

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# A Node the project brought itself (scripts/setup does, when the machine's is too old for
# wrangler) comes first; without it the machine's node is used.
LOCAL_NODE_DIR="$ROOT/.tools/node"
export PATH="$HOME/.cargo/bin:$LOCAL_NODE_DIR/bin:$ROOT/node_modules/.bin:$PATH"

# wrangler must not phone home: no telemetry, and no cf.json fetch (which stalls the first
# requests by 3-12 s on a machine without internet).
export WRANGLER_SEND_METRICS=false
export CLOUDFLARE_CF_FETCH_ENABLED=false
export NO_UPDATE_NOTIFIER=1
# wrangler's banner asks the npm registry for a newer wrangler on every start (NO_UPDATE_NOTIFIER
# does not stop it), and prints an out-of-date warning once there is one.
export WRANGLER_HIDE_BANNER=true

# The Debian rustc that matches the Debian std source, linked into rustup under this name.
WEB_TOOLCHAIN=tickwire-web
# wrangler 4.164 needs Node >= 22.12; the client package's check runs a TypeScript file, which
# Node runs as is (type stripping on by default) from 22.18. Where the machine's Node is older,
# scripts/setup installs this release of the npm registry's Node binary package into $LOCAL_NODE_DIR.
NODE_MIN=22.18.0
NODE_LOCAL_VERSION=22.23.5

# Versions of the build helpers: wasm-bindgen-cli must equal the wasm-bindgen in Cargo.lock.
WORKER_BUILD_VERSION=0.8.7
wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ {getline; gsub(/[^0-9.]/, ""); print; exit}' "$ROOT/Cargo.lock"
}

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Chooses how to build std for wasm32: rustup's prebuilt target when installed, else Debian's
# rustc-web with build-std. Exports what worker-build and cargo need for that choice.
use_wasm_toolchain() {
  if rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    unset RUSTUP_TOOLCHAIN CARGO_UNSTABLE_BUILD_STD
  else
    export RUSTUP_TOOLCHAIN="$WEB_TOOLCHAIN" RUSTC_BOOTSTRAP=1 CARGO_UNSTABLE_BUILD_STD=std,panic_abort
  fi
  # worker-build would otherwise try to download these from GitHub.
  export WASM_BINDGEN_BIN="$HOME/.cargo/bin/wasm-bindgen"
  export ESBUILD_BIN="$ROOT/node_modules/.bin/esbuild"
  export WASM_OPT_BIN="$ROOT/node_modules/.bin/wasm-opt"
}

# The soft open-file limit: workerd behind wrangler uses about 6 descriptors per client socket.
raise_nofile() {
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
}
