#!/usr/bin/env bash
# demo.sh: what `make demo` runs. Three "hosts" (network namespaces on one
# underlay bridge, 10.99.0.1-3), a weft router on each (hosts 2 and 3 are
# told about host 1 only and discover each other), one "container" per host
# attached with an address the routers allocate from 10.32.0.0/12 (IPAM), then
# pings between containers on different hosts and by name. Prints every step;
# removes everything at the end.
#
# Usage: test/demo.sh        (as root; WEFT_BIN overrides bin/weft)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

lib_need_root
"$HERE/deps.sh"
WEFT=$(weft_bin)
[[ -x $WEFT ]] || lib_die "no weft binary at $WEFT; run 'make build' first (or set WEFT_BIN)"

P=wd$$
U=$P-underlay
TMP=$(mktemp -d /tmp/weft-demo.XXXXXX)
LIB_DIRS+=("$TMP")
mkdir -p "$TMP/state1" "$TMP/state2" "$TMP/state3"
trap lib_cleanup EXIT
trap 'exit 130' INT TERM

if [[ -t 1 ]]; then B=$'\e[1m' D=$'\e[2m' N=$'\e[0m'; else B= D= N=; fi
step() { printf '\n%s==> %s%s\n' "$B" "$*" "$N"; }
say() { printf '    %s\n' "$*"; }
# show DESCRIPTION CMD...: print the command as a user would type it, run it,
# indent its output.
show() {
	local what=$1
	shift
	printf '%s$ %s%s\n' "$D" "$what" "$N"
	"$@" 2>&1 | sed 's/^/    /'
	return "${PIPESTATUS[0]}"
}
host() { echo "$P-host$1"; }
ctr() { echo "$P-c$1"; }
weft_on() { # N ARGS...: weft on host N
	local n=$1
	shift
	weft_in "$(host "$n")" "$TMP/state$n" "$@"
}

step "Three hosts"
say "Each host is a network namespace with one interface (eth0) on a shared"
say "underlay: a bridge, as if the hosts were plugged into one physical switch."
ns_add "$U"
ip -n "$U" link add br0 type bridge
ip -n "$U" link set br0 up
for n in 1 2 3; do
	ns_add "$(host "$n")"
	ip -n "$U" link add "h$n" type veth peer name eth0 netns "$(host "$n")"
	ip -n "$U" link set "h$n" master br0 up
	ns_addr "$(host "$n")" eth0 "10.99.0.$n/24"
	say "host$n: namespace $(host "$n"), underlay address 10.99.0.$n"
done

step "A weft router on each host"
say "host1 starts alone; host2 and host3 are only told about host1."
say "(--no-plugin --no-proxy: the three routers share this machine and its one"
say " Docker, if it has one; a real host leaves both on.)"
show "weft launch --no-plugin --no-proxy --name host1       (on host1)" weft_on 1 launch --no-plugin --no-proxy --name host1 ||
	lib_die "weft launch failed on host1"
for n in 2 3; do
	show "weft launch --no-plugin --no-proxy --name host$n 10.99.0.1 (on host$n)" weft_on "$n" launch --no-plugin --no-proxy --name "host$n" 10.99.0.1 ||
		lib_die "weft launch failed on host$n"
done

step "One container per host, attached to the weft network"
say "A container here is a network namespace; 'weft attach' gives it an"
say "interface on the weft bridge of its host, with an address that no"
say "container on any host holds: the routers share 10.32.0.0/12 out among"
say "themselves. host1 allocates at once; host2 and host3 wait until they"
say "reach host1, so that they never start a range of their own."
declare -A addr
for n in 1 2 3; do
	ns_add "$(ctr "$n")"
	printf '%s$ %s%s\n' "$D" "weft attach netns:$(ctr "$n")              (on host$n)" "$N"
	addr[$n]=$(weft_on "$n" attach "netns:$(ctr "$n")") || lib_die "weft attach failed on host$n"
	say "${addr[$n]}"
done

step "Waiting for the mesh: host2 and host3 find each other through host1"
connections() { # N: established connections of host N
	weft_on "$1" status connections 2>/dev/null | grep -c established || true
}
all_connected() {
	local n
	for n in 1 2 3; do
		[[ $(connections "$n") -ge 2 ]] || return 1
	done
}
if wait_until 30 all_connected; then
	say "every router has an established connection to the two others"
else
	say "not fully connected after 30 s; showing what there is"
fi

step "What host1's router says about itself"
show "weft status                               (on host1)" weft_on 1 status || true

step "The peers host2 knows, and whom they are connected to"
show "weft status peers                         (on host2)" weft_on 2 status peers || true
show "weft status connections                   (on host3)" weft_on 3 status connections || true

step "Containers on different hosts ping each other"
say "These packets leave a container as Ethernet frames, enter the weft bridge"
say "of its host, and travel to the other host inside UDP datagrams."
failed=0
for pair in "1 2" "2 3" "3 1"; do
	set -- $pair
	wait_until 20 ns_exec "$(ctr "$1")" ping -c1 -W1 "${addr[$2]}" || true
	if ! show "ping -c 3 ${addr[$2]}                       (in the container on host$1)" \
		ns_exec "$(ctr "$1")" ping -n -c 3 -i 0.2 -W 2 "${addr[$2]}"; then
		failed=1
	fi
done

step "Containers find each other by name"
say "Every router answers DNS for weft.local on its own bridge; 'weft attach'"
say "registered each container's name, and the routers share the names."
wait_until 10 ns_exec "$(ctr 1)" getent hosts "$(ctr 3).weft.local" >/dev/null || true
show "getent hosts $(ctr 2).weft.local        (in the container on host1)" \
	ns_exec "$(ctr 1)" getent hosts "$(ctr 2).weft.local" || failed=1
show "ping -c 2 $(ctr 3)                       (in the container on host1)" \
	ns_exec "$(ctr 1)" ping -n -c 2 -i 0.2 -W 2 "$(ctr 3)" || failed=1

step "How the routers shared the address range out"
show "weft status ipam                          (on host1)" weft_on 1 status ipam || true

step "The attached containers on each host"
for n in 1 2 3; do
	show "weft ps                                   (on host$n)" weft_on "$n" ps || true
done

step "Cleaning up"
say "stopping the routers and removing the namespaces"
for n in 1 2 3; do
	weft_on "$n" reset >/dev/null 2>&1 || true
done
lib_cleanup
if ((failed)); then
	echo
	echo "demo: some pings failed (see above)" >&2
	exit 1
fi
printf '\n%sDone: three hosts, one flat network 10.32.0.0/12 across them.%s\n' "$B" "$N"
