package netns

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weftnet/weft/docker"
)

// TestDockerdSmoke starts a dockerd in each of two hosts, runs containers
// from the local busybox image, checks that each daemon is in its host's
// network namespace and sees its own plugin directory, and that cleanup
// leaves no process and no directory of theirs.
func TestDockerdSmoke(t *testing.T) {
	SkipUnlessRoot(t)
	var (
		pids   []int
		dirs   []string
		prefix string
	)
	t.Run("world", func(t *testing.T) {
		w := NewWorld(t, 2)
		prefix = w.Prefix
		var first *Dockerd
		for _, h := range w.Hosts {
			d := h.StartDockerd(t)
			if first == nil {
				first = d
			}
			dirs = append(dirs, d.Dir)
			d.MustDocker(t, "run", "--rm", "--network", "none", "busybox", "true")

			// Its process, network namespace and plugin directory.
			if comm, _ := os.ReadFile("/proc/" + strconv.Itoa(d.PID()) + "/comm"); string(comm) != "dockerd\n" {
				t.Fatalf("%s: PID %d is %q, not dockerd", h.Nick, d.PID(), comm)
			}
			if got := h.MustRun(t, "readlink", "/proc/self/ns/net"); got != readlink(t, d.PID(), "net") {
				t.Errorf("%s: dockerd not in the host's network namespace", h.Nick)
			}
			if err := os.WriteFile(filepath.Join(d.PluginDir, "mark-"+h.Nick), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			seen := h.MustRun(t, "nsenter", "-t", strconv.Itoa(d.PID()), "-m", "ls", "/run/docker/plugins")
			if strings.TrimSpace(seen) != "mark-"+h.Nick {
				t.Errorf("%s: dockerd sees %q in /run/docker/plugins, want only mark-%s", h.Nick, seen, h.Nick)
			}

			// A container left running: cleanup must end it.
			id := strings.TrimSpace(d.MustDocker(t, "run", "-d", "--network", "none", "--name", "sleeper", "busybox", "sleep", "600"))
			out := d.MustDocker(t, "inspect", "-f", "{{.State.Pid}}", id)
			pid, err := strconv.Atoi(strings.TrimSpace(out))
			if err != nil || pid <= 0 {
				t.Fatalf("%s: container pid %q", h.Nick, out)
			}
			if cg, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup"); !strings.Contains(string(cg), "/weft-test-"+h.Name+"/") {
				t.Errorf("%s: container not in the daemon's cgroup:\n%s", h.Nick, cg)
			}
			pids = append(pids, d.PIDs()...)
			if !slices.Contains(d.PIDs(), pid) {
				t.Errorf("%s: the container's process %d is not among the daemon's %v", h.Nick, pid, d.PIDs())
			}
		}
		// Every applet the tests count on.
		script := "for a in " + strings.Join(busyboxApplets, " ") + "; do command -v $a >/dev/null || { echo no $a; exit 1; }; done"
		first.MustDocker(t, "run", "--rm", "--network", "none", "busybox", "sh", "-c", script)
	})
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("process %d of a dockerd left running", pid)
		}
	}
	for _, dir := range dirs {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s left behind (%v)", dir, err)
		}
	}
	assertNoCgroups(t, prefix)
}

// TestDockerdInterrupted runs, in a child process, a test with a dockerd
// and a running container, interrupts it (SIGINT, as Ctrl-C does) and
// checks that the world's teardown left no process, cgroup or namespace.
func TestDockerdInterrupted(t *testing.T) {
	SkipUnlessRoot(t)
	if os.Getenv("NETNS_DOCKERD_CHILD") == "1" {
		w := NewWorld(t, 1)
		d := w.Hosts[0].StartDockerd(t)
		d.MustDocker(t, "run", "-d", "--network", "none", "busybox", "sleep", "600")
		fmt.Printf("PREFIX=%s PIDS=%s READY\n", w.Prefix, strings.Trim(fmt.Sprint(d.PIDs()), "[]"))
		time.Sleep(2 * time.Minute)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDockerdInterrupted$")
	cmd.Env = append(os.Environ(), "NETNS_DOCKERD_CHILD=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { // the child's own cleanup runs on SIGINT; never leave it
		_ = cmd.Process.Signal(syscall.SIGINT)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(time.Minute):
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	ready := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		for s.Scan() {
			if strings.HasSuffix(s.Text(), "READY") {
				ready <- s.Text()
			}
		}
		close(ready)
	}()
	var line string
	select {
	case line = <-ready:
	case <-time.After(2 * time.Minute):
		t.Fatal("child did not get ready")
	}
	if line == "" {
		t.Fatal("child ended before it was ready")
	}
	var prefix string
	var pids []int
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, "PREFIX="); ok {
			prefix = v
		} else if pid, err := strconv.Atoi(strings.TrimPrefix(f, "PIDS=")); err == nil {
			pids = append(pids, pid)
		}
	}
	if len(pids) < 4 { // shell, dockerd, containerd, shim, sleep
		t.Fatalf("child's dockerd processes: %v", pids)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil {
		t.Fatal("interrupted child exited 0")
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("process %d of the interrupted dockerd left running", pid)
		}
	}
	assertGone(t, prefix, 0)
	assertNoCgroups(t, prefix)
}

// assertNoCgroups checks that no cgroup of a world's dockerds is left.
func assertNoCgroups(t *testing.T, prefix string) {
	t.Helper()
	_, targets := cgroupMounts()
	for _, target := range targets {
		left, _ := filepath.Glob(filepath.Join(target, "weft-test-"+prefix+"-*"))
		for _, cg := range left {
			t.Errorf("cgroup left behind: %s", cg)
		}
	}
}

// TestDockerClient runs package docker against a real dockerd 20.10:
// negotiation, Inspect and Network of a container on a network, and the
// events of connect, stop, start and rm.
func TestDockerClient(t *testing.T) {
	SkipUnlessRoot(t)
	w := NewWorld(t, 1)
	d := w.Hosts[0].StartDockerd(t)
	t.Setenv("DOCKER_HOST", d.Host)
	c, err := docker.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	events := c.Events(ctx)
	expect := func(typ, action string) docker.Event {
		t.Helper()
		for {
			select {
			case ev := <-events:
				if ev.Type == typ && ev.Action == action {
					return ev
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("no %s %s event", typ, action)
			}
		}
	}
	expect("", docker.ActionResync)

	// A bridge network (no docker0: this one is made in the host's namespace).
	d.MustDocker(t, "network", "create", "-d", "bridge", "--subnet", "172.30.0.0/24", "n1")
	id := strings.TrimSpace(d.MustDocker(t, "run", "-d", "--name", "web", "--hostname", "webhost",
		"--network", "n1", "busybox", "sleep", "600"))
	if ev := expect(docker.TypeContainer, docker.ActionStart); ev.ContainerID != id {
		t.Errorf("start event for %s, want %s", ev.ContainerID, id)
	}
	ctr, err := c.Inspect(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	ep, ok := ctr.Networks["n1"]
	if ctr.ID != id || ctr.Name != "web" || ctr.Hostname != "webhost" || !ctr.Running || ctr.PID <= 0 ||
		!ok || ep.Addr.String() != "172.30.0.2/24" || ep.MAC == "" || ep.NetworkID == "" {
		t.Fatalf("Inspect(web) = %+v", ctr)
	}
	nw, err := c.Network(ctx, ep.NetworkID)
	if err != nil || nw.Name != "n1" || nw.Driver != "bridge" || len(nw.Subnets) != 1 || nw.Subnets[0].String() != "172.30.0.0/24" {
		t.Fatalf("Network(%s) = %+v, %v", ep.NetworkID, nw, err)
	}

	d.MustDocker(t, "network", "disconnect", "n1", "web")
	if ev := expect(docker.TypeNetwork, docker.ActionDisconnect); ev.ContainerID != id || ev.NetworkID != nw.ID {
		t.Errorf("disconnect event %+v", ev)
	}
	d.MustDocker(t, "network", "connect", "n1", "web")
	expect(docker.TypeNetwork, docker.ActionConnect)
	d.MustDocker(t, "stop", "-t", "1", "web")
	expect(docker.TypeContainer, docker.ActionDie)
	d.MustDocker(t, "start", "web")
	expect(docker.TypeContainer, docker.ActionStart)
	d.MustDocker(t, "rm", "-f", "web")
	expect(docker.TypeContainer, docker.ActionDestroy)
	if _, err := c.Inspect(ctx, "web"); err == nil || err.Error() != `no container named or with ID "web"` {
		t.Errorf("Inspect after rm: %v", err)
	}
}

// readlink reads /proc/PID/ns/NS.
func readlink(t *testing.T, pid int, ns string) string {
	t.Helper()
	s, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/" + ns)
	if err != nil {
		t.Fatal(err)
	}
	return s + "\n"
}
