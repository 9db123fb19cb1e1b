#!/usr/bin/env bash
# make deb: packs what `make build` built into $BUILD/autofailover_<version>_<arch>.deb (dpkg-deb; no root
# needed, files owned by root in the package). Contents: autoctl and autofailover-keeper in /usr/bin, both
# extensions for PostgreSQL 15 (pg_config's paths), the systemd unit templates of packaging/systemd, the docs.
# Depends: what dpkg-shlibdeps finds for the binaries and modules, plus postgresql-15.
# usage: build-deb.sh BUILD_DIR
set -euo pipefail

build=${1:?usage: build-deb.sh BUILD_DIR}
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$build" && pwd)
pg_config=${PG_CONFIG:-pg_config}
version=$(sed -n 's/^project(autofailover VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
arch=$(dpkg --print-architecture)
stage=$build/deb-root
deb=$build/autofailover_${version}_${arch}.deb

rm -rf "$stage" "$build"/autofailover_*.deb
mkdir -p "$stage/DEBIAN"

# Binaries, stripped, under /usr (the build tree itself keeps its own prefix for `make install`).
DESTDIR=$stage cmake --install "$build" --prefix /usr --strip >/dev/null
# Both extensions: .so in pkglibdir, .control and SQL scripts in sharedir/extension.
make -s -C "$src" -f Makefile.pgxs install DESTDIR="$stage" PG_CONFIG="$pg_config" >/dev/null
find "$stage" -name '*.so' -exec strip --strip-unneeded {} +
# PGXS also installs LLVM bitcode only when with_llvm; Makefile.pgxs turns it off. Nothing else belongs here.
[ ! -d "$stage$("$pg_config" --pkglibdir)/bitcode" ] || rm -rf "$stage$("$pg_config" --pkglibdir)/bitcode"

install -d "$stage/lib/systemd/system"
install -m 0644 "$src"/packaging/systemd/*.service "$stage/lib/systemd/system/"

doc=$stage/usr/share/doc/autofailover
install -d "$doc"
install -m 0644 "$src/README.md" "$src"/docs/*.md "$doc/"
find "$src/docs" -maxdepth 1 -name '*.svg' -exec install -m 0644 {} "$doc/" \;
cat > "$doc/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: autofailover
Comment: Built from the autofailover source tree ($(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo unknown)).
 The source tree carries no license file; until it does, no license is granted by this package.
EOF

# Shared-library dependencies of what we ship (dpkg-shlibdeps wants a debian/control next to it).
shlib_work=$(mktemp -d)
trap 'rm -rf "$shlib_work"' EXIT
mkdir -p "$shlib_work/debian"
printf 'Source: autofailover\n\nPackage: autofailover\nArchitecture: any\n' > "$shlib_work/debian/control"
mapfile -t elf_files < <(find "$stage/usr/bin" "$stage$("$pg_config" --pkglibdir)" -type f)
shlibs=$(cd "$shlib_work" && dpkg-shlibdeps -O "${elf_files[@]}" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
if [ -z "$shlibs" ]; then
    echo "build-deb: dpkg-shlibdeps found nothing" >&2
    exit 1
fi
# The extensions need the server; the keeper runs initdb, pg_ctl, pg_basebackup, pg_rewind from it.
depends="$shlibs, postgresql-15"

size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" -e "s/@DEPENDS@/$depends/" \
    "$src/packaging/control.in" > "$stage/DEBIAN/control"
(cd "$stage" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) > "$stage/DEBIAN/md5sums"
chmod -R u+rwX,go+rX,go-w "$stage"

dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
rm -rf "$stage"
echo "build-deb: $deb"
dpkg-deb --field "$deb" Package Version Architecture Depends
