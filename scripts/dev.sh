#!/usr/bin/env bash
# One entry point for a fresh machine. Creates or repairs a virtual environment and a cargo target
# directory outside the repository (~/.cache/nitrain by default), installs what the environment lacks,
# rebuilds the Rust extension only when its sources changed, then runs the requested job. Each job works
# as the first command on a new machine; each is idempotent and quiet when there is nothing to do.
#
#   scripts/dev.sh demo    the main job: `nitrain demo` (train and explain a brain-age model on phantoms)
#   scripts/dev.sh bench   `nitrain bench`: the benchmarks against numpy/scipy, ANTs, TorchIO and MONAI
#   scripts/dev.sh test    every check: cargo fmt/clippy/test, ruff, mypy, the wheel, pytest
#   scripts/dev.sh wheel   build the abi3 manylinux2014 wheel and the sdist into dist/
#   scripts/dev.sh setup   only prepare the environment (extras: setup dev, setup torch,plot, ...)
#   scripts/dev.sh deps    only the environment and the packages of the given extras (no build)
#   scripts/dev.sh shell   print `export` lines for the environment (eval "$(scripts/dev.sh shell)")
#
# NITRAIN_PYTHON picks the interpreter that creates the environment (default: python3);
# NITRAIN_CACHE moves the cache folder, NITRAIN_VENV the environment.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${NITRAIN_CACHE:-$HOME/.cache/nitrain}
VENV=${NITRAIN_VENV:-$CACHE/venv}
BASE_PY=${NITRAIN_PYTHON:-python3}
PY=$VENV/bin/python
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$CACHE/target}
export PYO3_PYTHON=$PY
export VIRTUAL_ENV=$VENV
export PATH=$VENV/bin:$PATH
cd "$ROOT"

# Python versions every framework extra has wheels for. Older: nitrain itself does not run. Newer:
# tensorflow (the keras extra and the tests) may have no wheel yet.
PY_MIN=3.10
PY_MAX_TESTED=3.13

say() { printf '[nitrain] %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

# The interpreter's "major.minor", or nothing when it does not run.
py_version() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true; }
version_lt() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" = "$1" ] && [ "$1" != "$2" ]; }

check_python() {
    local extras=$1 have
    command -v "$BASE_PY" > /dev/null || die "no '$BASE_PY' on PATH: install Python >= $PY_MIN (or set NITRAIN_PYTHON)"
    have=$(py_version "$BASE_PY")
    [ -n "$have" ] || die "'$BASE_PY' does not run; set NITRAIN_PYTHON to a Python >= $PY_MIN"
    if version_lt "$have" "$PY_MIN"; then
        die "nitrain needs Python >= $PY_MIN; '$BASE_PY' is $have. Set NITRAIN_PYTHON to a newer interpreter."
    fi
    if version_lt "$PY_MAX_TESTED" "$have"; then
        case ",$extras," in
            *,dev,*|*,tensorflow,*|*,all,*)
                die "'$BASE_PY' is Python $have: tensorflow (needed for '${extras}') publishes wheels for" \
                    "Python $PY_MIN to $PY_MAX_TESTED. Set NITRAIN_PYTHON to one of those." ;;
            *) say "Python $have is newer than the newest tested ($PY_MAX_TESTED); torch may have no wheel yet" ;;
        esac
    fi
}

# A usable environment: its python runs, is the version of $BASE_PY, and has pip. Otherwise repair it
# (pip through ensurepip) or recreate it from scratch.
ensure_venv() {
    local have want
    have=$(py_version "$PY")
    want=$(py_version "$BASE_PY")
    if [ -z "$have" ] || [ "$have" != "$want" ]; then
        say "creating virtual environment in $VENV (Python $want)"
        mkdir -p "$(dirname "$VENV")"
        "$BASE_PY" -m venv --clear "$VENV"
    fi
    if ! "$PY" -m pip --version > /dev/null 2>&1; then
        say "installing pip into $VENV"
        "$PY" -m ensurepip --upgrade > /dev/null 2>&1 || { "$BASE_PY" -m venv --clear "$VENV" && "$PY" -m ensurepip --upgrade > /dev/null; } \
            || die "cannot install pip into $VENV (is the python3-venv package installed?)"
    fi
}

# Install what the environment lacks among the build requirements, the core dependencies and the given
# extras (scripts/requirements.py reads pyproject.toml and checks the installed versions), then check.
# pip is given every requirement, not only the missing ones, so its resolver can move an installed
# package to a version that fits the new one (boto3 to the botocore that s3fs's aiobotocore allows).
ensure_deps() {
    local extras=$1 missing
    missing=$("$PY" scripts/requirements.py missing "$extras")
    [ -z "$missing" ] && return
    say "installing into $VENV: $(echo "$missing" | tr '\n' ' ')"
    # shellcheck disable=SC2046
    "$PY" -m pip install -q --disable-pip-version-check $("$PY" scripts/requirements.py all "$extras")
    missing=$("$PY" scripts/requirements.py missing "$extras")
    [ -z "$missing" ] || die "still missing after pip install: $missing"
}

# The hash of everything the extension is built from.
sources_hash() {
    (cat Cargo.toml Cargo.lock pyproject.toml; find rust \( -name '*.rs' -o -name Cargo.toml \) -print0 | sort -z | xargs -0 cat) \
        | sha256sum | cut -c1-32
}

# Build and install the extension (editable) when the Rust sources changed, this checkout lacks it, or
# the environment is new (the stamp lives in the environment, so a recreated one rebuilds).
ensure_build() {
    local stamp=$VENV/.nitrain-build want
    want="$ROOT $(sources_hash)"
    if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && compgen -G "python/nitrain/_core*.so" > /dev/null \
        && "$PY" -c 'import importlib.util as u, sys; sys.exit(u.find_spec("nitrain") is None)' 2>/dev/null; then
        return
    fi
    say "building the Rust extension (release)"
    "$PY" -m maturin develop --release --quiet > "$VENV/.nitrain-build.log" 2>&1 \
        || { cat "$VENV/.nitrain-build.log" >&2; exit 1; }
    # An extension left from a build of another ABI tag (_core.cpython-3XX-*.so) would shadow the new one.
    ls -t python/nitrain/_core*.so | tail -n +2 | xargs -r rm -f
    echo "$want" > "$stamp"
}

setup() {
    check_python "$1"
    mkdir -p "$CACHE"
    ensure_venv
    ensure_deps "$1"
    ensure_build
}

# The abi3 manylinux2014 wheel and the sdist in dist/, rebuilt when anything they hold changed. Prints
# the wheel's path.
wheel() {
    local stamp=$ROOT/dist/.sources want whl
    want=$( (sources_hash; cat README.md LICENSE;
             find python -type f ! -name '*.so' ! -path '*__pycache__*' -print0 | sort -z | xargs -0 cat) \
            | sha256sum | cut -c1-32)
    whl=$(compgen -G "dist/nitrain-*-abi3-*.whl" | head -n1 || true)
    if [ -n "$whl" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
        echo "$ROOT/$whl"
        return
    fi
    say "building the abi3 manylinux2014 wheel and the sdist into dist/"
    rm -rf dist && mkdir -p dist
    "$PY" -m maturin build --release --zig --compatibility manylinux2014 --out dist --quiet \
        > "$VENV/.nitrain-wheel.log" 2>&1 || { cat "$VENV/.nitrain-wheel.log" >&2; exit 1; }
    "$PY" -m maturin sdist --out dist > /dev/null 2>> "$VENV/.nitrain-wheel.log" \
        || { cat "$VENV/.nitrain-wheel.log" >&2; exit 1; }
    echo "$want" > "$stamp"
    whl=$(compgen -G "dist/nitrain-*-abi3-*.whl" | head -n1 || true)
    [ -n "$whl" ] || die "maturin built no abi3 wheel: $(ls dist)"
    echo "$ROOT/$whl"
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
        setup dev
        shift
        cargo fmt --check
        cargo clippy --quiet --all-targets -- -D warnings
        "$VENV/bin/ruff" check --quiet python tests benches scripts
        "$VENV/bin/ruff" format --check --quiet python tests benches scripts
        "$VENV/bin/mypy" --no-error-summary
        cargo test --quiet
        NITRAIN_WHEEL=$(wheel)
        export NITRAIN_WHEEL
        exec "$PY" -m pytest -q "$@"
        ;;
    wheel)
        setup dev
        wheel
        ;;
    setup)
        setup "${2:-dev}"
        ;;
    deps)
        # the environment and its packages only, without building the extension
        check_python "${2:-}"
        mkdir -p "$CACHE"
        ensure_venv
        ensure_deps "${2:-}"
        ;;
    shell)
        echo "export VIRTUAL_ENV='$VENV' PATH='$VENV/bin':\"\$PATH\" CARGO_TARGET_DIR='$CARGO_TARGET_DIR' PYO3_PYTHON='$PY'"
        ;;
    *)
        echo "usage: scripts/dev.sh {demo|bench|test|wheel|setup|deps|shell}" >&2
        exit 2
        ;;
esac
