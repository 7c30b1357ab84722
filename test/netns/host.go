package netns

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Host is one simulated machine: a network namespace with eth0 on the
// underlay, and a weft state dir of its own.
type Host struct {
	w          *World
	Index      int    // 1-based
	Nick       string // "h1": the nickname its router is launched with
	Name       string // namespace name
	Addr       string // underlay address, 10.99.0.Index
	Port       int    // mesh port its router listens on
	UnderlayIf string // its veth's peer inside the underlay namespace
	StateDir   string // passed to every weft command run on this host
	// Env is added to the environment of every weft command run on this
	// host (NAME=VALUE); StartDockerd adds DOCKER_HOST.
	Env []string

	dockerd *Dockerd // set by StartDockerd
}

// World is the world the host belongs to.
func (h *Host) World() *World { return h.w }

// PeerAddr is the address other routers use to reach this host's router.
func (h *Host) PeerAddr() string { return fmt.Sprintf("%s:%d", h.Addr, h.Port) }

// Run runs a command inside the host's namespace, bounded by DefaultTimeout.
func (h *Host) Run(args ...string) Result {
	return run(h.w.Dir, DefaultTimeout, nil, append([]string{"ip", "netns", "exec", h.Name}, args...)...)
}

// MustRun is Run that fails the test unless the command exits 0; it returns stdout.
func (h *Host) MustRun(t testing.TB, args ...string) string {
	t.Helper()
	r := h.Run(args...)
	if !r.OK() {
		t.Fatalf("%s: %v", h.Nick, r)
	}
	return r.Stdout
}

// Start starts a command in the background inside the host's namespace.
func (h *Host) Start(t testing.TB, args ...string) *Proc {
	t.Helper()
	return h.w.start(t, append([]string{"ip", "netns", "exec", h.Name}, args...)...)
}

// Weft runs the weft binary inside the host's namespace with the host's
// state dir (both as --state-dir and as WEFT_STATE_DIR).
func (h *Host) Weft(args ...string) Result {
	return h.WeftStateDir(h.StateDir, args...)
}

// WeftStateDir runs weft inside the host's namespace with another state
// dir, e.g. one where no router runs. Env is added to its environment.
func (h *Host) WeftStateDir(dir string, args ...string) Result {
	bin, err := binary()
	if err != nil {
		return Result{Args: append([]string{"weft"}, args...), ExitCode: -1, Err: err}
	}
	argv := append([]string{"ip", "netns", "exec", h.Name, bin, "--state-dir", dir}, args...)
	return run(h.w.Dir, DefaultTimeout, append([]string{"WEFT_STATE_DIR=" + dir}, h.Env...), argv...)
}

// MustWeft is Weft that fails the test unless weft exits 0; it returns stdout.
func (h *Host) MustWeft(t testing.TB, args ...string) string {
	t.Helper()
	r := h.Weft(args...)
	if !r.OK() {
		t.Fatalf("%s: %v", h.Nick, r)
	}
	return r.Stdout
}

// Launch starts the host's router with `weft launch --port PORT --name NICK
// ARGS...` (ARGS: more options, then peers) and fails the test if it does not
// come up. Unless ARGS give a --plugin-socket, the router serves no Docker
// plugin: the default socket is one path for every test host on this
// machine.
func (h *Host) Launch(t testing.TB, args ...string) {
	t.Helper()
	pre := []string{"launch", "--port", strconv.Itoa(h.Port), "--name", h.Nick}
	if !slices.Contains(args, "--plugin-socket") {
		pre = append(pre, "--no-plugin")
	}
	if !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--proxy") }) {
		pre = append(pre, "--no-proxy")
	}
	h.MustWeft(t, append(pre, args...)...)
}

// Stop runs `weft stop` and waits until no process is left in the host's
// namespace other than those started with Start (the router has exited).
func (h *Host) Stop(t testing.TB) {
	t.Helper()
	h.MustWeft(t, "stop")
	Eventually(t, 15*time.Second, h.Nick+": router exits after weft stop", func() error {
		if pids := h.RouterPIDs(); len(pids) > 0 {
			return fmt.Errorf("processes still in %s: %v", h.Name, pids)
		}
		return nil
	})
}

// RouterPIDs lists the processes in the host's namespace that were not
// started with Start and are not its dockerd's (dockerd, containerd, the
// shims, the containers): its router, and whatever the router started.
func (h *Host) RouterPIDs() []int {
	ours := map[int]bool{}
	h.w.mu.Lock()
	for _, p := range h.w.procs {
		ours[p.PID()] = true
	}
	h.w.mu.Unlock()
	if h.dockerd != nil {
		for _, pid := range h.dockerd.PIDs() {
			ours[pid] = true
		}
	}
	var pids []int
	for _, pid := range h.PIDs() {
		if !ours[pid] {
			pids = append(pids, pid)
		}
	}
	return pids
}

// PIDs lists the processes running in the host's namespace: its router,
// and anything started with Start.
func (h *Host) PIDs() []int { return namespacePIDs(h.Name) }

// SetUnderlayMTU sets the MTU of the host's underlay link, both ends.
func (h *Host) SetUnderlayMTU(t testing.TB, mtu int) {
	t.Helper()
	m := strconv.Itoa(mtu)
	h.w.mustIP(t, "-n", h.Name, "link", "set", "eth0", "mtu", m)
	h.w.mustIP(t, "-n", h.w.Underlay, "link", "set", h.UnderlayIf, "mtu", m)
}

// UnderlayPackets returns the packets received and sent on the host's
// underlay interface so far.
func (h *Host) UnderlayPackets() (rx, tx uint64, err error) {
	read := func(name string) (uint64, error) {
		// /sys/class/net of our namespace is seen through `ip netns exec`.
		r := h.Run("cat", "/sys/class/net/eth0/statistics/"+name)
		if !r.OK() {
			return 0, fmt.Errorf("%s: read %s: %v", h.Nick, name, r.Err)
		}
		return strconv.ParseUint(strings.TrimSpace(r.Stdout), 10, 64)
	}
	if rx, err = read("rx_packets"); err != nil {
		return 0, 0, err
	}
	tx, err = read("tx_packets")
	return rx, tx, err
}

// firewall inserts (-I) or deletes (-D) the rules that drop TCP and UDP
// between h and other, in h's namespace.
func (h *Host) firewall(t testing.TB, op string, other *Host) {
	t.Helper()
	for _, proto := range []string{"tcp", "udp"} {
		for _, rule := range [][]string{
			{"INPUT", "-s", other.Addr},
			{"OUTPUT", "-d", other.Addr},
		} {
			args := append([]string{"iptables", "-w", "5", op, rule[0]}, rule[1:]...)
			args = append(args, "-p", proto, "-j", "DROP")
			if r := h.Run(args...); !r.OK() {
				t.Fatalf("netns: %s: %v", h.Nick, r)
			}
		}
	}
}

// NewContainer makes a "container": an empty namespace <prefix>-NAME with
// loopback up, not yet attached to weft.
func (h *Host) NewContainer(t testing.TB, name string) *Container {
	t.Helper()
	c := &Container{Host: h, Name: h.w.Prefix + "-" + name, Nick: name}
	h.w.addNamespace(t, c.Name)
	return c
}

// AddContainer makes a container and attaches it with `weft attach CIDR
// netns:NAME` on this host; it fails the test if attaching fails.
func (h *Host) AddContainer(t testing.TB, name, cidr string) *Container {
	t.Helper()
	c := h.NewContainer(t, name)
	c.Attach(t, cidr)
	return c
}

// Container is a namespace attached to weft on its Host.
type Container struct {
	Host *Host
	Name string // namespace name
	Nick string // short name given to NewContainer
	IP   string // address of the last Attach, without prefix length
}

// Target is the weft attach target for the container.
func (c *Container) Target() string { return "netns:" + c.Name }

// Attach runs `weft attach CIDR netns:NAME` on the container's host.
func (c *Container) Attach(t testing.TB, cidr string) {
	t.Helper()
	c.Host.MustWeft(t, "attach", cidr, c.Target())
	c.IP, _, _ = strings.Cut(cidr, "/")
}

// Run runs a command inside the container's namespace.
func (c *Container) Run(args ...string) Result {
	return run(c.Host.w.Dir, DefaultTimeout, nil, append([]string{"ip", "netns", "exec", c.Name}, args...)...)
}

// MustRun is Run that fails the test unless the command exits 0; it returns stdout.
func (c *Container) MustRun(t testing.TB, args ...string) string {
	t.Helper()
	r := c.Run(args...)
	if !r.OK() {
		t.Fatalf("%s: %v", c.Nick, r)
	}
	return r.Stdout
}

// Start starts a command in the background inside the container's namespace.
func (c *Container) Start(t testing.TB, args ...string) *Proc {
	t.Helper()
	return c.Host.w.start(t, append([]string{"ip", "netns", "exec", c.Name}, args...)...)
}

// Ping sends one ping of size bytes of payload (0: the default) and waits a
// second for the answer.
func (c *Container) Ping(ip string, size int) error {
	args := []string{"ping", "-n", "-c", "1", "-W", "1"}
	if size > 0 {
		args = append(args, "-s", strconv.Itoa(size))
	}
	if r := c.Run(append(args, ip)...); !r.OK() {
		return fmt.Errorf("%s: ping %s: %v: %s", c.Nick, ip, r.Err, strings.TrimSpace(r.Stdout+r.Stderr))
	}
	return nil
}

// WaitPing waits until a ping from c to ip is answered.
func (c *Container) WaitPing(t testing.TB, ip string, timeout time.Duration) {
	t.Helper()
	Eventually(t, timeout, fmt.Sprintf("%s pings %s", c.Nick, ip), func() error { return c.Ping(ip, 0) })
}

// Sysctl sets a sysctl inside the container's namespace.
func (c *Container) Sysctl(t testing.TB, key, value string) {
	t.Helper()
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	c.MustRun(t, "sh", "-c", fmt.Sprintf("echo %s > %s", value, path))
}
