#!/usr/bin/env bash
# plugin-smoke.sh: weft's managed Docker plugin, end to end, against a
# private dockerd (never the machine's own Docker).
#
#   test/plugin-smoke.sh        (as root; PLUGIN_SMOKE_TIMEOUT, default 180 s)
#
# In a fresh network namespace and a private mount namespace (its own
# /run/docker/plugins, where Docker keeps managed plugins' sockets, and
# /run/containerd) it starts a dockerd with its own data root, exec root,
# socket and pidfile, no bridge and no firewall rules. Then, with
# DOCKER_HOST pointing there:
#   - dist/docker-plugin/build.sh creates the plugin weftnet/weft:$VERSION;
#   - `docker plugin set` points its state and Docker socket mounts at this
#     run's directory; the plugin is enabled and listed as enabled;
#   - `weft status` on the host reaches the plugin's router (state dir);
#   - a busybox image is imported from busybox-static, a network is created
#     with the plugin as network and IPAM driver, and two containers on it
#     ping each other;
#   - dockerd restarts: the plugin comes back enabled, and so do the
#     containers (--restart always), which ping each other again;
#   - two containers attached by name with `weft attach` (the router in
#     the plugin asks Docker for them) ping each other.
# It prints PASS, or FAIL with the step and the end of dockerd's log.
# Everything it made is removed by PID and path on exit, failure,
# interruption (Ctrl-C) or timeout.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
export PATH="$PATH:/usr/local/go/bin:/usr/local/sbin:/usr/sbin:/sbin"

if [[ $(id -u) -ne 0 ]]; then
	echo "plugin-smoke.sh: must run as root (it makes namespaces and runs dockerd)" >&2
	exit 1
fi
bash "$here/docker-deps.sh"
dockerd=$(command -v dockerd) || {
	echo "plugin-smoke.sh: FAIL: no dockerd" >&2
	exit 1
}
# Debian's client is the daemon's version; the one on PATH may be newer.
docker=${DOCKER:-/usr/bin/docker}
if [[ ! -x $docker ]]; then
	docker=$(command -v docker)
fi
version=${VERSION:-0.1.0}
plugin=weftnet/weft:$version
ns=wp$$
# Short: the directory holds dockerd's socket (108 bytes at most).
dir=$(mktemp -d /tmp/wp.XXXXXX)
cgparent=/weft-plugin-smoke-$$
step=setup
dockerd_pid=
runner_pid=
plugin_id=
watchdog_pid=
limit=${PLUGIN_SMOKE_TIMEOUT:-180}

export DOCKER_HOST=unix://$dir/docker.sock DOCKER_CONFIG=$dir/cli DOCKER_CONTEXT=

dk() { timeout --foreground 60 "$docker" "$@"; }
say() { echo "plugin-smoke.sh: $*"; }
alive() { [[ -n $1 ]] && kill -0 "$1" 2>/dev/null; }
# any_alive PID...: whether one of them still runs.
any_alive() {
	local p
	for p in "$@"; do
		alive "$p" && return 0
	done
	return 1
}

# descendants PID...: the PIDs and all their descendants.
descendants() {
	local out=("$@") queue=("$@") p kids
	while ((${#queue[@]} > 0)); do
		p=${queue[0]}
		queue=("${queue[@]:1}")
		read -ra kids < <(cat /proc/"$p"/task/*/children 2>/dev/null) || true # no newline: 1
		out+=("${kids[@]}")
		queue+=("${kids[@]}")
	done
	echo "${out[@]}"
}

# leftovers: this run's processes: the runner and dockerd with their
# descendants, everything whose command line names this run's directory
# (containerd and its shims leave dockerd's tree), and whatever runs in the
# network namespace (the plugin's router, the containers' processes are in
# namespaces of their own but are the shims' children).
leftovers() {
	local roots=() p inside
	alive "$runner_pid" && roots+=("$runner_pid")
	alive "$dockerd_pid" && roots+=("$dockerd_pid")
	for p in /proc/[0-9]*; do
		p=${p#/proc/}
		[[ $p == "$$" || $p == "$BASHPID" ]] && continue
		if tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | grep -qF -- "$dir/"; then
			roots+=("$p")
		fi
	done
	if [[ -e /run/netns/$ns ]]; then
		mapfile -t inside < <(ip netns pids "$ns" 2>/dev/null)
		roots+=("${inside[@]}")
	fi
	((${#roots[@]} > 0)) && descendants "${roots[@]}" | tr ' ' '\n' | sort -un
	return 0
}

cleanup() {
	local rc=$? pids p i ids
	trap - EXIT INT TERM
	set +e
	exec 1>&3 2>&4 # a signal may come while a function's output is redirected
	if alive "$watchdog_pid"; then
		kill -TERM "$watchdog_pid"
		wait "$watchdog_pid"
	fi
	if ((rc != 0)) && [[ -f $dir/dockerd.log ]]; then
		tail -n 30 "$dir/dockerd.log" >"$dir/log-tail" # before dockerd stops
	fi
	if alive "$dockerd_pid"; then
		mapfile -t ids < <(dk ps -aq 2>/dev/null)
		((${#ids[@]} == 0)) || dk rm -f "${ids[@]}" >/dev/null 2>&1
		dk network rm n1 >/dev/null 2>&1
		dk plugin disable -f "$plugin" >/dev/null 2>&1
		dk plugin rm -f "$plugin" >/dev/null 2>&1
	fi
	pids=$(leftovers | tr '\n' ' ')
	if alive "$dockerd_pid"; then
		kill -TERM "$dockerd_pid"
		for ((i = 0; i < 150; i++)); do
			alive "$dockerd_pid" || break
			sleep 0.1
		done
	fi
	read -ra pids <<<"$pids $(leftovers | tr '\n' ' ')"
	for p in "${pids[@]}"; do
		kill -KILL "$p" 2>/dev/null
	done
	for ((i = 0; i < 50; i++)); do
		any_alive "${pids[@]}" || break
		sleep 0.1
	done
	# The containers' cgroups are under --cgroup-parent, the plugin's is
	# named by its ID (at the top of each hierarchy, or below this shell's).
	find /sys/fs/cgroup -maxdepth 4 -type d \( -name "${cgparent#/}" -o -name "${plugin_id:-none}" \) \
		-prune -exec find {} -depth -type d -delete \; 2>/dev/null
	ip netns del "$ns" 2>/dev/null
	grep -F " $dir/" /proc/self/mounts | cut -d' ' -f2 | sort -r | xargs -r -n1 umount -l 2>/dev/null
	if ((rc != 0)); then
		if [[ -s $dir/log-tail ]]; then
			echo "--- dockerd log, last lines before cleanup:" >&2
			cat "$dir/log-tail" >&2
		fi
		case $rc in
		130) step+=" (interrupted)" ;;
		143) step+=" (terminated)" ;;
		esac
		echo "plugin-smoke.sh: FAIL at: $step" >&2
	fi
	rm -rf "$dir"
	exit "$rc"
}
exec 3>&1 4>&2
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The whole run is bounded: after $limit s a watchdog sends SIGTERM to this
# script and to the command it waits for (each docker command is bounded
# too), so that the trap above cleans up. dockerd runs in a session of its
# own and is stopped by the trap.
main=$$
(
	trap 'kill "$nap" 2>/dev/null; exit 0' TERM
	sleep "$limit" &
	nap=$!
	wait "$nap"
	echo "plugin-smoke.sh: over $limit s (PLUGIN_SMOKE_TIMEOUT): stopping" >&2
	read -ra waited < <(cat /proc/"$main"/task/*/children 2>/dev/null) || true # no newline: 1
	kill -TERM "$main"
	for k in "${waited[@]}"; do
		[[ $k == "$BASHPID" ]] || kill -TERM "$k" 2>/dev/null
	done
) &
watchdog_pid=$!

# retry SECONDS CMD...: run CMD every 0.5 s until it succeeds or SECONDS pass.
retry() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		((SECONDS < end)) || return 1
		sleep 0.5
	done
}

step="network namespace $ns"
ip netns add "$ns"
ip -n "$ns" link set lo up
mkdir -p "$dir"/{data,x,plugins,cli,state}
echo '{}' >"$dir/daemon.json"

# `ip netns exec` makes a mount namespace and mounts the namespace's /sys,
# hiding the cgroup file systems: dockerd's shell mounts them again, then
# the private /run/docker/plugins and /run/containerd (so that dockerd runs
# a containerd of its own).
mounts=
while read -r src target fstype opts _; do
	case $target in
	/sys/fs/cgroup | /sys/fs/cgroup/*)
		mounts+="mkdir -p '$target' && mount -t '$fstype' -o '$opts' '$src' '$target'"$'\n'
		;;
	esac
done </proc/self/mounts
for l in /sys/fs/cgroup/*; do
	[[ -L $l ]] && mounts+="ln -s '$(readlink "$l")' '$l'"$'\n'
done

# start_dockerd starts dockerd and waits until it answers. dockerd runs in
# a session of its own, so that Ctrl-C does not reach it: the trap stops
# it after removing what it made.
start_dockerd() {
	setsid ip netns exec "$ns" sh -ec "
$mounts
mkdir -p /run/docker/plugins /run/containerd
mount --bind '$dir/plugins' /run/docker/plugins
mount -t tmpfs -o mode=0711 tmpfs /run/containerd
exec '$dockerd' --config-file '$dir/daemon.json' --data-root '$dir/data' --exec-root '$dir/x' \
	-H '$DOCKER_HOST' --pidfile '$dir/docker.pid' --bridge none \
	--iptables=false --ip6tables=false --ip-masq=false --storage-driver vfs \
	--exec-opt native.cgroupdriver=cgroupfs --cgroup-parent '$cgparent'
" >>"$dir/dockerd.log" 2>&1 3>&- 4>&- &
	runner_pid=$!
	retry 60 dk version >/dev/null 2>&1
	dockerd_pid=$(cat "$dir/docker.pid")
}

# stop_dockerd stops dockerd (SIGTERM) and waits up to 30 s for it to exit.
stop_dockerd() {
	local i
	kill -TERM "$dockerd_pid"
	for ((i = 0; i < 300; i++)); do
		alive "$dockerd_pid" || return 0
		sleep 0.1
	done
	return 1
}

# ping_c1 waits until c2 pings c1 on n1.
ping_c1() {
	local ip1
	ip1=$(dk inspect -f '{{(index .NetworkSettings.Networks "n1").IPAddress}}' c1)
	retry 20 dk exec c2 ping -c 1 -W 1 "$ip1" >/dev/null
	dk exec c2 ping -c 3 -W 2 "$ip1" | tail -2 | head -1 | sed "s/^/plugin-smoke.sh: c2 to c1 $ip1: /"
}

step="start dockerd"
start_dockerd
say "dockerd $dockerd_pid answers ($DOCKER_HOST)"

step="build and create the plugin (dist/docker-plugin/build.sh)"
DOCKER=$docker VERSION=$version bash "$root/dist/docker-plugin/build.sh" --out "$dir/p" "$plugin"

plugin_id=$(dk plugin inspect -f '{{.Id}}' "$plugin")

step="docker plugin set"
dk plugin set "$plugin" state.source="$dir/state" docker.source="$dir/docker.sock"

step="docker plugin enable"
dk plugin enable "$plugin" >/dev/null
ls=$(dk plugin ls --format '{{.Name}} {{.Enabled}}')
say "docker plugin ls: $ls"
[[ $ls == *"$plugin true"* ]]

step="weft status on the host, through the plugin's state dir"
weft=$dir/p/rootfs/usr/bin/weft
retry 20 "$weft" --state-dir "$dir/state" status >/dev/null
say "weft status: $("$weft" --state-dir "$dir/state" status | head -1)"

step="import busybox:latest from busybox-static"
img=$dir/img
mkdir -p "$img"/{bin,etc,tmp,root}
cp /bin/busybox "$img/bin/busybox"
for a in $(/bin/busybox --list); do
	[[ $a == busybox || $a == */* ]] || ln -s busybox "$img/bin/$a"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$img/etc/passwd"
echo 'root:x:0:' >"$img/etc/group"
tar -C "$img" -c . | dk import --change 'CMD ["sh"]' - busybox:latest >/dev/null

step="docker network create -d $plugin --ipam-driver $plugin"
dk network create -d "$plugin" --ipam-driver "$plugin" --subnet 10.77.0.0/24 n1 >/dev/null
say "network n1: driver $(dk network inspect -f '{{.Driver}}, IPAM {{.IPAM.Driver}}' n1)"

step="docker run two containers on n1"
dk run -d --restart always --stop-timeout 1 --name c1 --network n1 busybox sleep 600 >/dev/null
dk run -d --restart always --stop-timeout 1 --name c2 --network n1 busybox sleep 600 >/dev/null
ip1=$(dk inspect -f '{{(index .NetworkSettings.Networks "n1").IPAddress}}' c1)
ip2=$(dk inspect -f '{{(index .NetworkSettings.Networks "n1").IPAddress}}' c2)
say "c1 $ip1, c2 $ip2"
[[ $ip1 == 10.77.0.* && $ip2 == 10.77.0.* ]]

step="ping c1 ($ip1) from c2"
ping_c1

step="restart dockerd: the plugin and the containers come back"
stop_dockerd
start_dockerd
ls=$(dk plugin ls --format '{{.Name}} {{.Enabled}}')
say "dockerd $dockerd_pid restarted; docker plugin ls: $ls"
[[ $ls == *"$plugin true"* ]]
ping_c1

step="weft attach of two containers by name, through the plugin's router"
dk run -d --name c3 --network none busybox sleep 600 >/dev/null
dk run -d --name c4 --network none busybox sleep 600 >/dev/null
"$weft" --state-dir "$dir/state" attach c3 >/dev/null
ip4=$("$weft" --state-dir "$dir/state" attach c4)
ip4=${ip4%%/*}
say "c4 attached as $ip4"
retry 20 dk exec c3 ping -c 1 -W 1 "$ip4" >/dev/null
say "c3 pings c4 on the weft network"

step="docker network rm, plugin disable and rm"
dk rm -f c1 c2 c3 c4 >/dev/null
dk network rm n1 >/dev/null
dk plugin disable "$plugin" >/dev/null
dk plugin rm "$plugin" >/dev/null
say "PASS"
