#!/usr/bin/env bash
# Builds the PostgreSQL 15 extensions of the local MongoDB-compatible engine into a staging
# root: pg_cron, pgvector, documentdb_core and documentdb. `taskmesh_local install` calls it
# with the unpacked sources and copies the staged files into PostgreSQL's own folders
# (PostgreSQL 15 loads extensions only from there).
#
#   build-extensions.sh <sources dir> <staging root>
#
# <sources dir> holds documentdb/, pg_cron/ and pgvector/ (each one archive's top folder).
set -euo pipefail

src=$(realpath "$1")
stage=$(realpath -m "$2")
work=$(mktemp -d "${TMPDIR:-/tmp}/taskmesh-engine-build.XXXXXX")
trap 'rm -rf "$work"' EXIT

pg_config=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
jobs=$(nproc 2>/dev/null || echo 2)

# Debian ships no pkg-config file for Intel's decimal library; DocumentDB asks for one.
mkdir -p "$work/pkgconfig"
cat >"$work/pkgconfig/intelmathlib.pc" <<PC
Name: intelmathlib
Description: Intel decimal floating-point math library (Debian's libintelrdfpmath-dev)
Version: 2.0
Cflags: -I/usr/include
Libs: -lbidgcc000
PC
export PKG_CONFIG_PATH="$work/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"

# libbson before 1.26 lacks BSON_SUBTYPE_SENSITIVE (0x08), which one DocumentDB file uses as
# a case of a switch over bson_subtype_t; define it and let that switch compile.
copt=""
if ! grep -q BSON_SUBTYPE_SENSITIVE "$(pkg-config --variable=includedir libbson-1.0)"/libbson-1.0/bson/bson-types.h 2>/dev/null; then
    copt="-DBSON_SUBTYPE_SENSITIVE=0x08 -Wno-error=switch -Wno-switch"
fi

step() {
    local name=$1 dir=$2
    local started=$SECONDS
    echo "building $name"
    make -C "$dir" -j"$jobs" PG_CONFIG="$pg_config" with_llvm=no COPT="$copt"
    make -C "$dir" PG_CONFIG="$pg_config" with_llvm=no COPT="$copt" DESTDIR="$stage" install
    echo "built $name in $((SECONDS - started)) s"
}

cp -a "$src/pg_cron" "$src/pgvector" "$src/documentdb" "$work/"
step pg_cron "$work/pg_cron"
step pgvector "$work/pgvector"
step documentdb_core "$work/documentdb/pg_documentdb_core"
step documentdb "$work/documentdb/pg_documentdb"
