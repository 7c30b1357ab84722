#!/usr/bin/env bash
# build.sh: build weft's managed Docker plugin and create it in Docker.
#
#   dist/docker-plugin/build.sh [--no-create] [--out DIR] [--bin WEFT] [NAME]
#
# Assembles DIR (default bin/docker-plugin): rootfs/ with a static weft,
# busybox-static as /bin/sh and the entrypoint, and config.json from the
# template beside this script. Then, unless --no-create, it replaces the
# plugin NAME (default weftnet/weft:$VERSION) in the Docker at DOCKER_HOST
# (disable and remove an existing one, then `docker plugin create NAME
# DIR`). No registry is involved. `make plugin` runs it.
#
# --bin packages a static weft binary instead of building one (with
# CGO_ENABLED=0). Environment: VERSION (default 0.1.0), GO (default go),
# DOCKER (the client, default docker), DOCKER_HOST. When DOCKER_HOST is
# unset (the machine's own Docker) it also makes /var/lib/weft, the
# default source of the plugin's "state" mount.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/sbin"

version=${VERSION:-0.1.0}
out=$root/bin/docker-plugin
create=1
name=
bin=
while (($# > 0)); do
	case $1 in
	--no-create) create=0 ;;
	--out)
		out=${2:?--out needs a directory}
		shift
		;;
	--bin)
		bin=${2:?--bin needs a file}
		shift
		;;
	-h | --help)
		sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	-*)
		echo "build.sh: unknown option $1 (see --help)" >&2
		exit 2
		;;
	*) name=$1 ;;
	esac
	shift
done
name=${name:-weftnet/weft:$version}
docker=${DOCKER:-docker}
go=${GO:-go}

die() {
	echo "build.sh: $*" >&2
	exit 1
}

# dk runs the docker client, bounded in time.
dk() { timeout --foreground 120 "$docker" "$@"; }

if ((create)); then
	command -v "$docker" >/dev/null 2>&1 || die "no docker client ($docker) on PATH"
	if ! server=$(timeout 10 "$docker" version --format '{{.Server.Version}}' 2>/dev/null) || [[ -z $server ]]; then
		die "no Docker answers (DOCKER_HOST=${DOCKER_HOST:-unset}); start dockerd or set DOCKER_HOST"
	fi
fi

# static fails unless $1 is a 64-bit little-endian ELF file without a
# PT_INTERP program header: no dynamic loader, so no libraries needed.
static() {
	local f=$1 phoff phentsize phnum i type
	[[ $(od -An -tx1 -N6 "$f" | tr -d ' \n') == 7f454c460201 ]] || die "$f is not a 64-bit little-endian ELF file"
	phoff=$(od -An -tu8 -j32 -N8 "$f" | tr -d ' ')
	phentsize=$(od -An -tu2 -j54 -N2 "$f" | tr -d ' ')
	phnum=$(od -An -tu2 -j56 -N2 "$f" | tr -d ' ')
	for ((i = 0; i < phnum; i++)); do
		type=$(od -An -tu4 -j$((phoff + i * phentsize)) -N4 "$f" | tr -d ' ')
		((type != 3)) || die "$f is not static (it names a dynamic loader)"
	done
}

rootfs=$out/rootfs
if [[ -e $out && ! -f $out/config.json && -n $(ls -A "$out" 2>/dev/null) ]]; then
	die "refusing to replace $out: it is not empty and holds no config.json"
fi
rm -rf "$out"
mkdir -p "$rootfs"/{bin,usr/bin,etc,proc,sys,dev,tmp,run/docker/plugins,var/lib/weft}
chmod 1777 "$rootfs/tmp"
: >"$rootfs/etc/hosts"       # mount points: Docker binds the host's
: >"$rootfs/etc/resolv.conf" # over these for host-network plugins
printf 'root:x:0:0:root:/:/bin/sh\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\n' >"$rootfs/etc/group"

if [[ -n $bin ]]; then
	cp "$bin" "$rootfs/usr/bin/weft"
else
	(cd "$root" && CGO_ENABLED=0 "$go" build -trimpath -ldflags "-s -w -X main.Version=$version" \
		-o "$rootfs/usr/bin/weft" ./cmd/weft) || die "go build ./cmd/weft failed"
fi
static "$rootfs/usr/bin/weft"

busybox=/bin/busybox
[[ -x $busybox ]] || die "no $busybox: install busybox-static"
static "$busybox"
cp "$busybox" "$rootfs/bin/busybox"
ln -s busybox "$rootfs/bin/sh"
install -m 0755 "$here/entrypoint.sh" "$rootfs/usr/bin/weft-plugin"

# The rootfs must run on its own: nothing from the host's libraries.
if [[ $(id -u) -eq 0 ]] && command -v chroot >/dev/null 2>&1; then
	chroot "$rootfs" /usr/bin/weft version >/dev/null || die "weft does not run inside the rootfs"
	chroot "$rootfs" /bin/sh -c true || die "/bin/sh does not run inside the rootfs"
fi

sed "s/@VERSION@/$version/g" "$here/config.json" >"$out/config.json"
echo "build.sh: $out: rootfs $(du -sh "$rootfs" | cut -f1), config.json"

if ((!create)); then
	exit 0
fi
if dk plugin inspect "$name" >/dev/null 2>&1; then
	dk plugin disable -f "$name" >/dev/null 2>&1 || true
	dk plugin rm -f "$name" >/dev/null || die "cannot remove the existing plugin $name"
fi
dk plugin create "$name" "$out" >/dev/null || die "docker plugin create $name $out failed"
if [[ -z ${DOCKER_HOST:-} ]]; then
	[[ -d /var/lib/weft ]] || install -d -m 0700 /var/lib/weft
fi
echo "build.sh: created plugin $name (Docker $server); next: docker plugin set $name WEFT_PEERS=\"...\" (optional), docker plugin enable $name"
