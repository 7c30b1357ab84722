package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weftnet/weft/test/netns"
)

// managedPlugin is the name the test gives weft's managed plugin; users
// get weftnet/weft:VERSION from `make plugin`.
const managedPlugin = "weftnet/weft:test"

// buildPluginTimeout bounds dist/docker-plugin/build.sh (a cold go build
// of a static weft included).
const buildPluginTimeout = 4 * time.Minute

// smokeTimeout bounds test/plugin-smoke.sh, which stops itself after
// PLUGIN_SMOKE_TIMEOUT (180 s here) and then cleans up.
const smokeTimeout = 4 * time.Minute

// buildManagedPlugin assembles the plugin's rootfs and config.json
// (dist/docker-plugin/build.sh --no-create) in a temporary directory and
// returns it.
func buildManagedPlugin(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "plugin")
	ctx, cancel := context.WithTimeout(context.Background(), buildPluginTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "dist", "docker-plugin", "build.sh"), "--no-create", "--out", out)
	began := time.Now()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("dist/docker-plugin/build.sh: %v\n%s", err, b)
	}
	t.Logf("plugin rootfs built in %v", time.Since(began).Round(time.Millisecond))
	return out
}

// enableManagedPlugin starts a dockerd on h, creates the plugin from dir
// in it, points its state mount at h's state dir (so that h.Weft reaches
// the plugin's router) and its Docker mount at the dockerd's socket, sets
// env (NAME=VALUE settings), and enables it. The plugin is disabled and
// removed, and its cgroups with it, at the end of the test.
func enableManagedPlugin(t *testing.T, h *netns.Host, dir string, env ...string) *netns.Dockerd {
	t.Helper()
	var id string
	t.Cleanup(func() { removePluginCgroups(t, id) }) // runs after dockerd stopped
	d := h.StartDockerd(t)
	t.Cleanup(func() {
		if ids := strings.Fields(d.Docker("ps", "-aq").Stdout); len(ids) > 0 {
			d.Docker(append([]string{"rm", "-f"}, ids...)...)
		}
		d.Docker("network", "rm", "n1")
		d.Docker("plugin", "disable", "-f", managedPlugin)
		if r := d.Docker("plugin", "rm", "-f", managedPlugin); !r.OK() {
			t.Logf("%s: %v", h.Nick, r)
		}
	})
	began := time.Now()
	d.MustDocker(t, "plugin", "create", managedPlugin, dir)
	id = strings.TrimSpace(d.MustDocker(t, "plugin", "inspect", "-f", "{{.Id}}", managedPlugin))
	set := []string{"plugin", "set", managedPlugin, "state.source=" + h.StateDir,
		"docker.source=" + strings.TrimPrefix(d.Host, "unix://")}
	d.MustDocker(t, append(set, env...)...)
	d.MustDocker(t, "plugin", "enable", managedPlugin)
	if ls := d.MustDocker(t, "plugin", "ls", "--format", "{{.Name}} {{.Enabled}}"); !strings.Contains(ls, managedPlugin+" true") {
		t.Fatalf("%s: docker plugin ls: %q, want %s enabled", h.Nick, ls, managedPlugin)
	}
	netns.Eventually(t, 20*time.Second, h.Nick+": weft status reaches the plugin's router", func() error {
		if r := h.Weft("status"); !r.OK() {
			return r.Err
		}
		return nil
	})
	t.Logf("%s: plugin created and enabled in %v", h.Nick, time.Since(began).Round(time.Millisecond))
	return d
}

// removePluginCgroups removes what is left of the plugin's cgroups (named
// by its ID, at the top of each hierarchy or below this process's own);
// Docker removes them when it disables the plugin.
func removePluginCgroups(t *testing.T, id string) {
	if id == "" {
		return
	}
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/" + id)
	more, _ := filepath.Glob("/sys/fs/cgroup/*/*/*/" + id)
	for _, dir := range append(dirs, more...) {
		if err := os.Remove(dir); err != nil {
			t.Errorf("plugin cleanup: cgroup: %v", err)
		}
	}
}

// containerIP is the address of a container on network n1.
func containerIP(t *testing.T, d *netns.Dockerd, name string) string {
	t.Helper()
	ip := strings.TrimSpace(d.MustDocker(t, "inspect", "-f", `{{(index .NetworkSettings.Networks "n1").IPAddress}}`, name))
	if ip == "" {
		t.Fatalf("%s has no address on n1", name)
	}
	return ip
}

// dockerPing waits until container from, on d, answers a ping to ip.
func dockerPing(t *testing.T, d *netns.Dockerd, from, ip string) {
	t.Helper()
	netns.Eventually(t, pingTimeout, from+" pings "+ip, func() error {
		if r := d.Docker("exec", from, "ping", "-c", "1", "-W", "1", ip); !r.OK() {
			return fmt.Errorf("%v", r)
		}
		return nil
	})
}

// TestManagedPlugin runs weft as Docker's managed plugin (the rootfs and
// config.json of dist/docker-plugin) on two hosts, each with a dockerd of
// its own: h2 is given h1 with WEFT_PEERS and both share WEFT_PASSWORD,
// all through `docker plugin set`. A network made with the plugin as
// network and IPAM driver on both hosts carries pings between containers
// on different hosts, and containers attached by name with `weft attach`
// (the router inside the plugin finds them through Docker and enters
// their namespaces) reach each other across hosts too.
func TestManagedPlugin(t *testing.T) {
	t.Parallel()
	w := netns.NewWorld(t, 2)
	h1, h2 := w.Hosts[0], w.Hosts[1]
	dir := buildManagedPlugin(t)
	const password = "WEFT_PASSWORD=managed-plugin-test"
	d1 := enableManagedPlugin(t, h1, dir, password, "WEFT_EXTRA_ARGS=--name h1")
	d2 := enableManagedPlugin(t, h2, dir, password, "WEFT_EXTRA_ARGS=--name h2", "WEFT_PEERS="+h1.PeerAddr())
	waitConnWord(t, h2, h1, "encrypted")

	t.Run("network", func(t *testing.T) {
		for _, d := range []*netns.Dockerd{d1, d2} {
			d.MustDocker(t, "network", "create", "-d", managedPlugin, "--ipam-driver", managedPlugin,
				"--subnet", "10.77.0.0/24", "n1")
		}
		d1.MustDocker(t, "run", "-d", "--name", "c1", "--network", "n1", netns.BusyboxImage, "sleep", "600")
		d2.MustDocker(t, "run", "-d", "--name", "c2", "--network", "n1", netns.BusyboxImage, "sleep", "600")
		ip1, ip2 := containerIP(t, d1, "c1"), containerIP(t, d2, "c2")
		if ip1 == ip2 {
			t.Fatalf("c1 and c2 both have %s", ip1)
		}
		dockerPing(t, d2, "c2", ip1)
		dockerPing(t, d1, "c1", ip2)
	})

	t.Run("attach", func(t *testing.T) {
		d1.MustDocker(t, "run", "-d", "--name", "c3", "--network", "none", netns.BusyboxImage, "sleep", "600")
		d2.MustDocker(t, "run", "-d", "--name", "c4", "--network", "none", netns.BusyboxImage, "sleep", "600")
		h1.MustWeft(t, "attach", "c3")
		ip4, _, _ := strings.Cut(strings.TrimSpace(h2.MustWeft(t, "attach", "c4")), "/")
		dockerPing(t, d1, "c3", ip4)
	})
}

// TestManagedPluginSmoke runs test/plugin-smoke.sh: the plugin made with
// build.sh in a private dockerd, a network of two containers on it, the
// plugin and the containers back after dockerd restarts, and `weft
// attach` of containers through the plugin's router; the script removes
// all it made.
func TestManagedPluginSmoke(t *testing.T) {
	t.Parallel()
	netns.SkipUnlessRoot(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), smokeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "test", "plugin-smoke.sh"))
	cmd.Env = append(os.Environ(), "PLUGIN_SMOKE_TIMEOUT=180")
	// SIGTERM lets the script's trap clean up (after the command it waits
	// for, itself bounded to a minute).
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 2 * time.Minute
	began := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "plugin-smoke.sh: PASS") {
		t.Fatalf("test/plugin-smoke.sh: %v\n%s", err, out)
	}
	t.Logf("test/plugin-smoke.sh passed in %v", time.Since(began).Round(time.Millisecond))
}
