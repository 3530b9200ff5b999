#!/usr/bin/env bash
# Build llama-cpp-python for the app bundle, with the project's kernel patch, as a wheel:
# CPU code for every x86-64 level (GGML_CPU_ALL_VARIANTS: x64, sse42, sandybridge, haswell,
# skylakex, icelake, zen4, …), each a library that ggml picks at run time by what the CPU
# can do (GGML_BACKEND_DL), and no -march=native (GGML_NATIVE=OFF). That is what llama.cpp's
# own release builds do; `make setup`'s build is for this machine only and dies with
# SIGILL on an older CPU. On macOS the default (Metal, Apple silicon) is kept.
# Heavy: the CPU backend is compiled a dozen times (about 30 min on 2 busy cores). A wheel
# already in WHEEL_DIR is reused.
#
#     packaging/build-llama-portable.sh PYTHON PATCH WHEEL_DIR
set -euo pipefail
PYTHON=$1
PATCH=$(realpath "$2")
WHEELS=$3
VERSION=0.3.36
SRC=build/portable
mkdir -p "$WHEELS" "$SRC"
if ls "$WHEELS"/llama_cpp_python-$VERSION-*.whl >/dev/null 2>&1; then
    echo "reusing $(ls "$WHEELS"/llama_cpp_python-$VERSION-*.whl)"
    exit 0
fi
rm -rf "$SRC/llama_cpp_python-$VERSION"
"$PYTHON" -m pip download --quiet --no-deps --no-binary :all: -d "$SRC" "llama-cpp-python==$VERSION"
tar xzf "$SRC/llama_cpp_python-$VERSION.tar.gz" -C "$SRC"
patch --quiet --forward -p1 -d "$SRC/llama_cpp_python-$VERSION" < "$PATCH"
case "$(uname -s)" in
    Darwin) CMAKE_ARGS="${CMAKE_ARGS:-}" ;;
    *) CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON -DLLAVA_BUILD=OFF ${CMAKE_ARGS:-}" ;;
esac
export CMAKE_ARGS
echo "building llama-cpp-python $VERSION with CMAKE_ARGS=$CMAKE_ARGS (log: $SRC/build.log)"
nice -n 10 "$PYTHON" -m pip wheel -v --no-deps -w "$WHEELS" "$SRC/llama_cpp_python-$VERSION" > "$SRC/build.log" 2>&1 \
    || { tail -30 "$SRC/build.log" >&2; exit 1; }
ls "$WHEELS"/llama_cpp_python-$VERSION-*.whl
