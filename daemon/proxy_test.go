package daemon

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/weftnet/weft/proxy/hold"
	"github.com/weftnet/weft/router/routertest"
)

// TestListenProxySocket: the proxy's socket gets the owner and mode of
// Docker's (0600 when Docker has none), a live socket is never taken
// over, and a stale one is replaced.
func TestListenProxySocket(t *testing.T) {
	dir := t.TempDir()
	dockerSock := filepath.Join(dir, "docker-real.sock")
	if err := os.WriteFile(dockerSock, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dockerSock, 0o640); err != nil {
		t.Fatal(err)
	}
	docker, err := os.Stat(dockerSock)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "docker.sock")
	check := func(want os.FileMode) {
		t.Helper()
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode()&os.ModeSocket == 0 || st.Mode().Perm() != want {
			t.Errorf("socket mode %v, want a socket with %v", st.Mode(), want)
		}
		got, ref := st.Sys().(*syscall.Stat_t), docker.Sys().(*syscall.Stat_t)
		if got.Uid != ref.Uid || got.Gid != ref.Gid {
			t.Errorf("socket owner %d:%d, want Docker's %d:%d", got.Uid, got.Gid, ref.Uid, ref.Gid)
		}
	}

	ln, err := listenProxy(path, docker)
	if err != nil {
		t.Fatal(err)
	}
	check(0o640)
	if left, _ := filepath.Glob(filepath.Join(dir, ".proxy-*")); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
	// It answers on its final path.
	go func(ln net.Listener) {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}(ln)
	if c, err := net.Dial("unix", path); err != nil {
		t.Errorf("dial the socket: %v", err)
	} else {
		c.Close()
	}
	// Another listener: refused while this one lives.
	if _, err := listenProxy(path, docker); err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Errorf("second listener on a live socket: %v", err)
	}
	ln.Close()
	if _, err := os.Stat(path); err != nil {
		t.Errorf("closing the listener removed the socket (the proxy server removes it): %v", err)
	}
	// Stale now: replaced, and with no Docker socket to copy, 0600.
	ln, err = listenProxy(path, nil)
	if err != nil {
		t.Fatalf("listen over a stale socket: %v", err)
	}
	defer ln.Close()
	docker, _ = os.Stat(dir) // owner of the test's files
	check(0o600)
}

// TestHeldContainerAttachedOnStart: a container the proxy made (the hold
// entrypoint, WEFT_CIDR in its environment) is attached with that address
// and marked ready when Docker reports it started; the same run reported
// twice is attached once; after a restart (a new PID, no interface) it is
// attached again with the same address.
func TestHeldContainerAttachedOnStart(t *testing.T) {
	nw := routertest.NewNetwork(1)
	dir, host, dk := t.TempDir(), newFakeHost(), newFakeDocker()
	entry := append(hold.Entrypoint(), "nginx")
	dk.set(Container{ID: webID, Name: "web", PID: 100, Running: true, Entrypoint: entry,
		Env: []string{"PATH=/bin", "WEFT_CIDR=10.2.1.9/24"}})
	startRouterDocker(t, nw, dir, host, 10013, nil, dk)
	target := ContainerPrefix + webID
	want := []netip.Prefix{netip.MustParsePrefix("10.2.1.9/24")}
	readies := func() (int, int) {
		host.mu.Lock()
		defer host.mu.Unlock()
		return host.ready[target], host.attaches
	}

	dk.events <- DockerEvent{Type: "container", Action: "start", ContainerID: webID}
	waitFor(t, "the held container attached and ready", func() bool {
		host.mu.Lock()
		defer host.mu.Unlock()
		return slices.Equal(host.atts[target], want) && host.ready[target] > 0
	})
	ready1, attaches1 := readies()

	// The same run again (the proxy and the event handler both call).
	dk.events <- DockerEvent{Type: "container", Action: "start", ContainerID: webID}
	dk.events <- DockerEvent{Type: "container", Action: "resync"}
	waitFor(t, "events handled", func() bool { return len(dk.events) == 0 })
	if r, a := readies(); a != attaches1 || r != ready1 {
		t.Errorf("the same run attached again: attaches %d→%d, ready %d→%d", attaches1, a, ready1, r)
	}

	// A restart: new PID, the old interface gone with the old namespace.
	host.Reset("")
	dk.set(Container{ID: webID, Name: "web", PID: 200, Running: true, Entrypoint: entry,
		Env: []string{"WEFT_CIDR=10.2.1.9/24"}})
	dk.events <- DockerEvent{Type: "container", Action: "start", ContainerID: webID}
	waitFor(t, "the restarted container attached again with its address", func() bool {
		host.mu.Lock()
		defer host.mu.Unlock()
		return slices.Equal(host.atts[target], want) && host.ready[target] > ready1
	})
}

// TestHeldContainerStartedWithoutRouter: a container the proxy made that
// was started while no router ran (its command waits for ethweft) is
// attached with its WEFT_CIDR when the router catches up with Docker;
// one that runs without the hold entrypoint is left alone.
func TestHeldContainerStartedWithoutRouter(t *testing.T) {
	nw := routertest.NewNetwork(1)
	dir, host, dk := t.TempDir(), newFakeHost(), newFakeDocker()
	const plainID = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
	dk.set(Container{ID: webID, Name: "web", PID: 100, Running: true, Entrypoint: append(hold.Entrypoint(), "httpd"),
		Env: []string{"WEFT_CIDR=10.2.1.10/24"}})
	dk.set(Container{ID: plainID, Name: "plain", PID: 101, Running: true, Entrypoint: []string{"httpd"},
		Env: []string{"WEFT_CIDR=10.2.1.11/24"}})
	startRouterDocker(t, nw, dir, host, 10014, nil, dk)
	dk.events <- DockerEvent{Type: "container", Action: "resync"}
	waitFor(t, "the held container attached", func() bool {
		host.mu.Lock()
		defer host.mu.Unlock()
		return slices.Equal(host.atts[ContainerPrefix+webID], []netip.Prefix{netip.MustParsePrefix("10.2.1.10/24")}) &&
			host.ready[ContainerPrefix+webID] > 0
	})
	host.mu.Lock()
	defer host.mu.Unlock()
	if _, ok := host.atts[ContainerPrefix+plainID]; ok {
		t.Errorf("a container without the hold entrypoint was attached")
	}
}
