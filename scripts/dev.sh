#!/usr/bin/env bash
# One entry point for a fresh machine. Creates or reuses a virtual environment and a cargo target
# directory outside the repository (~/.cache/nitrain by default), installs what is missing, rebuilds the
# Rust extension only when its sources changed, then runs the requested job. Idempotent; quiet when
# there is nothing to do.
#
#   scripts/dev.sh demo    the main job: `nitrain demo` (train and explain a brain-age model on phantoms)
#   scripts/dev.sh bench   `nitrain bench`: the benchmarks against numpy/scipy, ANTs, TorchIO and MONAI
#   scripts/dev.sh test    every check: cargo fmt/clippy/test, ruff, pytest
#   scripts/dev.sh setup   only prepare the environment
#   scripts/dev.sh shell   print `export` lines for the environment (eval "$(scripts/dev.sh shell)")
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${NITRAIN_CACHE:-$HOME/.cache/nitrain}
VENV=${NITRAIN_VENV:-$CACHE/venv}
PY=$VENV/bin/python
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$CACHE/target}
export PYO3_PYTHON=$PY
export VIRTUAL_ENV=$VENV
export PATH=$VENV/bin:$PATH
cd "$ROOT"

say() { printf '[nitrain] %s\n' "$*" >&2; }

ensure_venv() {
    if [ ! -x "$PY" ]; then
        say "creating virtual environment in $VENV"
        mkdir -p "$(dirname "$VENV")"
        python3 -m venv "$VENV"
        "$PY" -m pip install -q --upgrade pip
    fi
}

# Install the dependencies pyproject.toml declares (core + the given extras) when they changed.
ensure_deps() {
    local extras=$1 stamp want
    stamp=$CACHE/deps-${extras//,/-}.stamp
    want=$( (cat pyproject.toml; echo "$extras") | sha256sum | cut -c1-32)
    if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
        return
    fi
    say "installing dependencies (core + ${extras:-no extras}) into $VENV"
    "$PY" - "$extras" > "$CACHE/requirements.txt" <<'PYEOF'
import sys, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
reqs = list(project["dependencies"])
for extra in filter(None, sys.argv[1].split(",")):
    reqs += [r for r in project["optional-dependencies"][extra] if not r.startswith("nitrain")]
print("\n".join(reqs))
PYEOF
    "$PY" -m pip install -q --disable-pip-version-check -r "$CACHE/requirements.txt"
    echo "$want" > "$stamp"
}

# Build and install the extension (editable) when the Rust sources changed or this checkout lacks it.
ensure_build() {
    local stamp=$CACHE/build.stamp want
    want=$( (echo "$ROOT"; cat Cargo.toml Cargo.lock build.rs pyproject.toml;
             find rust -name '*.rs' -print0 | sort -z | xargs -0 cat) | sha256sum | cut -c1-32)
    if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && compgen -G "python/nitrain/_core*.so" > /dev/null; then
        return
    fi
    say "building the Rust extension (release)"
    "$PY" -m maturin develop --release --quiet > "$CACHE/build.log" 2>&1 \
        || { cat "$CACHE/build.log" >&2; exit 1; }
    echo "$want" > "$stamp"
}

setup() {
    mkdir -p "$CACHE"
    ensure_venv
    ensure_deps "$1"
    ensure_build
}

case "${1:-}" in
    demo)
        shift
        case " $* " in
            *" keras "*|*"--framework=keras"*) setup torch,plot,tensorflow ;;
            *) setup torch,plot ;;
        esac
        exec "$VENV/bin/nitrain" demo "$@"
        ;;
    bench)
        setup bench
        shift
        exec "$VENV/bin/nitrain" bench "$@"
        ;;
    test)
        setup test
        shift
        cargo fmt --check
        cargo clippy --quiet --all-targets -- -D warnings
        "$VENV/bin/ruff" check --quiet python tests benches
        "$VENV/bin/ruff" format --check --quiet python tests benches
        cargo test --quiet
        exec "$PY" -m pytest -q "$@"
        ;;
    setup)
        setup "${2:-test}"
        ;;
    shell)
        echo "export VIRTUAL_ENV='$VENV' PATH='$VENV/bin':\"\$PATH\" CARGO_TARGET_DIR='$CARGO_TARGET_DIR' PYO3_PYTHON='$PY'"
        ;;
    *)
        echo "usage: scripts/dev.sh {demo|bench|test|setup|shell}" >&2
        exit 2
        ;;
esac
