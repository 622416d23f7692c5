#!/usr/bin/env bash
# Runs uv: the one on PATH if there is one, else the pinned uv, installed on first use from PyPI into the
# per-user cache beside the control-plane binaries (${MEDIAGEN_CACHE:-~/.cache/mediagen}/uv-<version>).
# Needs nothing but python3: it tries a virtual environment with pip (ensurepip, no download), and where
# the interpreter has no ensurepip (Debian without python3-venv) hack/bootstrap_uv.py fetches the wheel with
# the standard library alone and checks its sha256 against PyPI's.
#
#   hack/uv.sh ARGS...    run uv ARGS (what `make dev`, `make test` and .ci/run do)
#   hack/uv.sh --which    print the path of the uv that would run (bootstrapping it if needed)
set -euo pipefail

UV_VERSION=0.13.8
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${MEDIAGEN_CACHE:-$HOME/.cache/mediagen}
home=$cache/uv-$UV_VERSION
bootstrapped=$home/bin/uv

find_uv() {
  if [ "${MEDIAGEN_UV_BOOTSTRAP:-auto}" = auto ] && command -v uv >/dev/null 2>&1; then
    command -v uv
  elif [ -x "$bootstrapped" ]; then
    echo "$bootstrapped"
  else
    return 1
  fi
}

bootstrap() {
  local python
  python=$(command -v python3 || command -v python || true)
  if [ -z "$python" ]; then
    echo "error: python3 is needed (it installs uv $UV_VERSION, which installs everything else)" >&2
    exit 3
  fi
  mkdir -p "$cache"
  # Two `make` runs at once must not install into the same folder at the same time.
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$cache/.uv-$UV_VERSION.lock"
    flock 9
  fi
  [ -x "$bootstrapped" ] && return 0
  echo "--- uv $UV_VERSION is not installed: installing it into $home (once)" >&2
  local staging=$home.partial
  rm -rf "$staging"
  if [ "${MEDIAGEN_UV_BOOTSTRAP:-auto}" != wheel ] && "$python" -m venv "$staging" >/dev/null 2>&1 &&
    "$staging/bin/python" -m pip --version >/dev/null 2>&1; then
    "$staging/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION" >&2
  else
    rm -rf "$staging"
    "$python" "$here/bootstrap_uv.py" "$UV_VERSION" "$staging/bin" >&2
  fi
  # The venv's scripts name its folder: moving it would break pip, never the uv binary itself.
  rm -rf "$home"
  mv "$staging" "$home"
  "$bootstrapped" --version >&2
}

uv_path=$(find_uv) || {
  bootstrap
  uv_path=$bootstrapped
}

if [ "${1:-}" = --which ]; then
  echo "$uv_path"
  exit 0
fi
exec "$uv_path" "$@"
