# Source this after scripts/install-web-tools.sh: puts the npm-installed wasm-opt (binaryen 132)
# ahead of any Debian one on PATH, which Trunk would otherwise reject or, worse, use.
_web_tools_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$_web_tools_root/target/web-tools/node_modules/.bin:$HOME/.cargo/bin:$PATH"
unset _web_tools_root
