# lib.sh: shell helpers shared by bench.sh and demo.sh (sourced, not run).
# They make network namespaces with a common prefix, run weft inside them with
# a state dir per namespace, and tear everything down again by PID and name.
# Nothing here touches the machine's own network namespace.

export PATH="$PATH:/usr/sbin:/sbin:/usr/local/go/bin"

# LIB_NAMESPACES lists every namespace made by ns_add, for lib_cleanup.
LIB_NAMESPACES=()
# LIB_DIRS lists temporary directories to remove in lib_cleanup.
LIB_DIRS=()
# LIB_PIDS lists background processes started by this script.
LIB_PIDS=()

lib_die() {
	echo "$(basename "$0"): $*" >&2
	exit 1
}

lib_need_root() {
	[[ $(id -u) -eq 0 ]] || lib_die "must run as root (it makes network namespaces)"
}

# weft_bin prints the weft binary to use: $WEFT_BIN, else bin/weft of the repo.
weft_bin() {
	local repo
	repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
	if [[ -n ${WEFT_BIN:-} ]]; then
		echo "$WEFT_BIN"
	else
		echo "$repo/bin/weft"
	fi
}

# ns_add NAME: make a network namespace with loopback up.
ns_add() {
	ip netns add "$1"
	LIB_NAMESPACES+=("$1")
	ip -n "$1" link set lo up
}

# ns_link A IFA B IFB: a veth pair, IFA in namespace A and IFB in namespace B.
ns_link() {
	ip -n "$1" link add "$2" type veth peer name "$4" netns "$3"
}

# ns_addr NS IF CIDR [MTU]: address an interface and bring it up.
ns_addr() {
	ip -n "$1" addr add "$3" dev "$2"
	if [[ -n ${4:-} ]]; then
		ip -n "$1" link set "$2" mtu "$4"
	fi
	ip -n "$1" link set "$2" up
}

# ns_exec NS CMD...: run CMD inside namespace NS.
ns_exec() {
	local ns=$1
	shift
	ip netns exec "$ns" "$@"
}

# ns_bg LOG NS CMD...: start CMD inside NS in the background, output to LOG;
# its PID is appended to LIB_PIDS and stored in LIB_LAST_PID. `ip netns exec`
# execs CMD, so the PID is CMD's own.
ns_bg() {
	local log=$1 ns=$2
	shift 2
	ip netns exec "$ns" "$@" >"$log" 2>&1 &
	LIB_LAST_PID=$!
	LIB_PIDS+=("$LIB_LAST_PID")
}

# kill_pid PID: TERM, then KILL after a second if still there. Only for PIDs
# this script started or found inside its own namespaces.
kill_pid() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || return 0
	for i in 1 2 3 4 5 6 7 8 9 10; do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
}

# bounded SECONDS CMD...: run CMD with a time limit, in the background so
# that a signal to this script (Ctrl-C) interrupts the wait at once; the EXIT
# trap (lib_cleanup) then ends it by PID.
bounded() {
	local limit=$1
	shift
	timeout "$limit" "$@" &
	local pid=$!
	LIB_PIDS+=("$pid")
	wait "$pid"
}

# weft_in NS STATEDIR ARGS...: run weft inside NS with its own state dir.
weft_in() {
	local ns=$1 dir=$2
	shift 2
	bounded 60 ip netns exec "$ns" env WEFT_STATE_DIR="$dir" "$(weft_bin)" --state-dir "$dir" "$@"
}

# wait_until SECONDS CMD...: run CMD every 0.2 s until it succeeds; fail after
# SECONDS.
wait_until() {
	local limit=$1 start
	shift
	start=$SECONDS
	until "$@" >/dev/null 2>&1; do
		if ((SECONDS - start >= limit)); then
			return 1
		fi
		sleep 0.2
	done
}

# lib_cleanup: end every process in our namespaces (started by us), delete the
# namespaces, their /etc/netns entries and our temporary directories.
lib_cleanup() {
	local pid ns dir
	for pid in "${LIB_PIDS[@]}"; do
		kill_pid "$pid"
	done
	for ns in "${LIB_NAMESPACES[@]}"; do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			kill_pid "$pid"
		done
	done
	for ns in "${LIB_NAMESPACES[@]}"; do
		ip netns delete "$ns" 2>/dev/null || true
		rm -rf "/etc/netns/$ns"
	done
	for dir in "${LIB_DIRS[@]}"; do
		rm -rf "$dir"
	done
	LIB_PIDS=()
	LIB_NAMESPACES=()
	LIB_DIRS=()
}
