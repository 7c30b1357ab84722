package netdev

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// env is a root test's world: a fresh "host" namespace where the netdev
// calls run, and container namespaces made on demand. Everything is
// removed by t.Cleanup, even when the test fails.
type env struct {
	t      *testing.T
	host   string // name of the host namespace
	hostNS netns.NsHandle
}

const testBridge = "weftbr"

func newEnv(t *testing.T) *env {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, netlink)")
	}
	e := &env{t: t, host: fmt.Sprintf("wefth%d", os.Getpid())}
	e.addNetns(e.host)
	ns, err := netns.GetFromName(e.host)
	if err != nil {
		t.Fatal(err)
	}
	e.hostNS = ns
	t.Cleanup(func() { ns.Close() })
	e.ipHost("link", "set", "lo", "up")
	return e
}

// addNetns makes a named namespace and schedules its removal.
func (e *env) addNetns(name string) {
	e.t.Helper()
	e.run("ip", "netns", "add", name)
	e.t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
}

// container makes a namespace whose name includes suffix and the PID.
func (e *env) container(suffix string) Target {
	e.t.Helper()
	name := fmt.Sprintf("weft%s%d", suffix, os.Getpid())
	e.addNetns(name)
	e.run("ip", "-n", name, "link", "set", "lo", "up")
	return Target{Kind: TargetNetns, Name: name}
}

// do runs fn on the test goroutine with its thread inside the host
// namespace; the thread goes back afterwards (or is discarded).
func (e *env) do(fn func()) {
	e.t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		e.t.Fatal(err)
	}
	defer func() {
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		orig.Close()
	}()
	if err := netns.Set(e.hostNS); err != nil {
		e.t.Fatal(err)
	}
	fn()
}

func (e *env) run(args ...string) string {
	e.t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		e.t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// ipHost runs ip in the host namespace.
func (e *env) ipHost(args ...string) string {
	e.t.Helper()
	return e.run(append([]string{"ip", "-n", e.host}, args...)...)
}

// ipIn runs ip in the target's namespace.
func (e *env) ipIn(t Target, args ...string) string {
	e.t.Helper()
	return e.run(append([]string{"ip", "-n", t.Name}, args...)...)
}

// startIn starts a process (sleep) inside the target's namespace and
// waits until it runs there; it is killed at cleanup.
func (e *env) startIn(c Target) *exec.Cmd {
	e.t.Helper()
	// The shell says "ready" once it runs inside c, then becomes sleep.
	cmd := exec.Command("ip", "netns", "exec", c.Name, "sh", "-c", "echo ready; exec sleep 60")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
		e.t.Fatalf("process in %s: %q, %v", c.Name, line, err)
	}
	return cmd
}

// hasLink tells whether the namespace has a link of that name.
func hasLink(ns, name string) bool {
	return exec.Command("ip", "-n", ns, "link", "show", name).Run() == nil
}

// listenARP opens a packet socket for ARP on the named link in the
// calling thread's namespace, with a 5 s receive timeout.
func listenARP(t *testing.T, ifname string) int {
	t.Helper()
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ARP)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: ifi.Index}); err != nil {
		t.Fatal(err)
	}
	tv := unix.Timeval{Sec: 5}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	return fd
}

// waitGratuitousARP reads ARP frames until one announces ip.
func waitGratuitousARP(t *testing.T, fd int, ip [4]byte) {
	t.Helper()
	buf := make([]byte, 1500)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			t.Fatalf("no gratuitous ARP for %v: %v", ip, err)
		}
		f := buf[:n]
		if n >= 42 && string(f[28:32]) == string(ip[:]) && string(f[38:42]) == string(ip[:]) {
			return
		}
	}
}

// threadsIn counts the process's threads whose network namespace is the
// named one.
func threadsIn(t *testing.T, name string) int {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(NetnsDir+"/"+name, &st); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("net:[%d]", st.Ino)
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, task := range tasks {
		if link, err := os.Readlink("/proc/self/task/" + task.Name() + "/ns/net"); err == nil && link == want {
			n++
		}
	}
	return n
}
