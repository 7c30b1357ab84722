package netns

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Bounds of a dockerd's life in a test.
const (
	dockerdStartTimeout = 60 * time.Second
	dockerdStopTimeout  = 15 * time.Second
	dockerDepsTimeout   = 10 * time.Minute // apt-get may have to fetch docker.io
)

// BusyboxImage is the image every Dockerd has: busybox-static's binary
// with a link for each applet, in /bin.
const BusyboxImage = "busybox:latest"

// busyboxApplets must be in the image; the tests count on them.
var busyboxApplets = []string{"sh", "ping", "sleep", "ip", "nslookup", "cat", "hostname",
	"wget", "httpd", "nc", "ifconfig", "route", "arping", "true"}

// Made at most once per test binary, like the weft binary (see Binary):
// the packages dockerd needs, and the image tar (kept in memory, ~2 MB).
var (
	dockerDepsOnce sync.Once
	dockerDepsErr  error
	busyboxOnce    sync.Once
	busyboxTar     []byte
	busyboxErr     error
)

// Dockerd is a Docker daemon running inside a host's network namespace,
// with data, state, socket and plugin directory of its own, under the
// world's directory. Its mount namespace is private: there its PluginDir is
// /run/docker/plugins (where Docker looks for network plugins), a tmpfs
// hides /run/containerd (so it runs a containerd of its own, never the
// machine's), and the machine's cgroup file systems are mounted again
// (`ip netns exec` mounts a sysfs over /sys that hides them). It has no
// docker0 bridge and touches no firewall.
//
// dockerd runs under a shell that, when the world's teardown signals it
// (an interrupted run), first kills the daemon's containers by cgroup:
// their processes are in namespaces of their own, out of the teardown's
// reach, and dockerd gets no time to stop them.
type Dockerd struct {
	Host      string // the DOCKER_HOST value: unix://SOCKET
	PluginDir string // the directory the daemon sees as /run/docker/plugins
	Dir       string // holds everything of this daemon

	h        *Host
	execRoot string
	log      string
	cgroups  []string // the cgroup of its containers, in each hierarchy
	proc     *Proc    // the shell that runs dockerd
	dockerd  process  // dockerd, from its pidfile
	stopOnce sync.Once
}

// StartDockerd starts a dockerd inside the host's namespace, waits until it
// answers and loads BusyboxImage into it. It adds the daemon's Env to the
// host's, so that every weft command on the host (and the router it
// launches) uses this daemon, and Host.RouterPIDs leaves its processes
// out. The daemon is stopped, its containers and processes ended and its
// directories removed at the end of the test (and the world's teardown
// ends whatever is left). It installs docker.io and busybox-static first
// when they are missing (test/docker-deps.sh), and skips the test when
// that cannot be done; it fails the test when the daemon does not come up.
func (h *Host) StartDockerd(t testing.TB) *Dockerd {
	t.Helper()
	dockerd, err := dockerdBinary()
	if err != nil {
		t.Skipf("skipping: dockerd cannot run here: %v", err)
	}
	tarball, err := busyboxImageTar()
	if err != nil {
		t.Skipf("skipping: no image for dockerd: %v", err)
	}
	dir := filepath.Join(h.w.Dir, "d"+h.Nick) // short: socket paths are limited to 107 bytes
	d := &Dockerd{
		Host:      "unix://" + filepath.Join(dir, "docker.sock"),
		PluginDir: filepath.Join(dir, "plugins"),
		Dir:       dir,
		h:         h,
		execRoot:  filepath.Join(dir, "x"),
		log:       filepath.Join(dir, "dockerd.log"),
	}
	mounts, targets := cgroupMounts()
	if len(targets) == 0 {
		t.Fatalf("netns: %s: dockerd: no cgroup file system mounted at /sys/fs/cgroup", h.Nick)
	}
	for _, target := range targets {
		d.cgroups = append(d.cgroups, filepath.Join(target, d.cgroupParent()))
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatalf("netns: %s: dockerd: %v (one dockerd per host)", h.Nick, err)
	}
	for _, sub := range []string{"data", "x", "plugins", "cli"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatalf("netns: %s: dockerd: %v", h.Nick, err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "daemon.json"), []byte("{}\n"), 0o600); err != nil {
		t.Fatalf("netns: %s: dockerd: %v", h.Nick, err)
	}

	began := time.Now()
	d.proc = h.Start(t, "sh", "-c", d.script(dockerd, mounts))
	t.Cleanup(func() { d.stop(t) })
	h.dockerd = d
	h.Env = append(h.Env, d.Env()...)
	if err := d.waitUp(dockerdStartTimeout); err != nil {
		t.Fatalf("netns: %s: dockerd: %v\n%s", h.Nick, err, d.logTail(30))
	}
	up := time.Since(began)
	began = time.Now()
	if err := d.importImage(tarball); err != nil {
		t.Fatalf("netns: %s: dockerd: import %s: %v", h.Nick, BusyboxImage, err)
	}
	t.Logf("netns: %s: dockerd answered after %v; %s imported in %v", h.Nick,
		up.Round(time.Millisecond), BusyboxImage, time.Since(began).Round(time.Millisecond))
	return d
}

// script is the shell script that runs dockerd: mounts (private to its
// mount namespace, which `ip netns exec` made), then dockerd in the
// background, killing its containers when the shell is signalled.
func (d *Dockerd) script(dockerd, mounts string) string {
	args := []string{dockerd,
		"--config-file", filepath.Join(d.Dir, "daemon.json"), // not the machine's /etc/docker/daemon.json
		"--data-root", filepath.Join(d.Dir, "data"),
		"--exec-root", d.execRoot,
		"-H", d.Host,
		"--pidfile", filepath.Join(d.Dir, "docker.pid"),
		"--bridge", "none",
		"--iptables=false", "--ip-masq=false", "--ip6tables=false",
		"--storage-driver", "vfs",
		"--exec-opt", "native.cgroupdriver=cgroupfs", // not systemd's: no units on the machine
		"--cgroup-parent", d.cgroupParent(),
	}
	var procs, dirs []string
	for _, cg := range d.cgroups {
		procs = append(procs, quote(cg)+"/*/cgroup.procs")
		dirs = append(dirs, quote(cg)+"/*", quote(cg))
	}
	return fmt.Sprintf(`exec >>%s 2>&1
set -e
export PATH="$PATH:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
%smkdir -p /run/docker/plugins /run/containerd
mount --bind %s /run/docker/plugins
mount -t tmpfs -o mode=0711 tmpfs /run/containerd
set +e
%s &
dockerd=$!
end() {
	cat %s 2>/dev/null | xargs -r kill -9
	kill -TERM $dockerd
	sleep 0.5
	rmdir %s 2>/dev/null
}
trap end TERM INT
wait $dockerd
wait $dockerd
`, quote(d.log), mounts, quote(d.PluginDir), strings.Join(quoteAll(args), " "),
		strings.Join(procs, " "), strings.Join(dirs, " "))
}

// cgroupParent is the cgroup of the daemon's containers (in each
// hierarchy), removed by stop.
func (d *Dockerd) cgroupParent() string { return "/weft-test-" + d.h.Name }

// PluginSocket is where weft's plugin socket goes for this daemon to find
// it as /run/docker/plugins/weft.sock.
func (d *Dockerd) PluginSocket() string { return filepath.Join(d.PluginDir, "weft.sock") }

// Docker runs the docker client against this daemon (`docker -H HOST
// ARGS...`), bounded by DefaultTimeout.
func (d *Dockerd) Docker(args ...string) Result {
	return run(d.h.w.Dir, DefaultTimeout, d.cliEnv(), append([]string{dockerCLI(), "-H", d.Host}, args...)...)
}

// DockerVia runs the docker client with DOCKER_HOST=host (weft's Docker
// API proxy, say) instead of this daemon, bounded by DefaultTimeout.
func (d *Dockerd) DockerVia(host string, args ...string) Result {
	env := append(d.cliEnv(), "DOCKER_HOST="+host)
	return run(d.h.w.Dir, DefaultTimeout, env, append([]string{dockerCLI(), "-H", host}, args...)...)
}

// MustDocker is Docker that fails the test unless docker exits 0; it returns
// stdout.
func (d *Dockerd) MustDocker(t testing.TB, args ...string) string {
	t.Helper()
	r := d.Docker(args...)
	if !r.OK() {
		t.Fatalf("%s: %v", d.h.Nick, r)
	}
	return r.Stdout
}

// cliEnv keeps the docker client to this daemon and away from the
// machine's client configuration.
func (d *Dockerd) cliEnv() []string {
	return []string{"DOCKER_HOST=" + d.Host, "DOCKER_CONTEXT=", "DOCKER_CONFIG=" + filepath.Join(d.Dir, "cli")}
}

// Env is what a weft command on the host needs in its environment to use
// this daemon.
func (d *Dockerd) Env() []string { return []string{"DOCKER_HOST=" + d.Host} }

// Weft runs weft on the daemon's host: Host.Weft, whose Env StartDockerd
// gave this daemon's Env.
func (d *Dockerd) Weft(args ...string) Result { return d.h.Weft(args...) }

// MustWeft is Weft that fails the test unless weft exits 0; it returns stdout.
func (d *Dockerd) MustWeft(t testing.TB, args ...string) string {
	t.Helper()
	r := d.Weft(args...)
	if !r.OK() {
		t.Fatalf("%s: %v", d.h.Nick, r)
	}
	return r.Stdout
}

// Launch starts the host's router as Host.Launch does, with Env and with
// --plugin-socket PluginSocket, and fails the test if it does not come up.
func (d *Dockerd) Launch(t testing.TB, args ...string) {
	t.Helper()
	d.MustWeft(t, append([]string{"launch", "--port", strconv.Itoa(d.h.Port), "--name", d.h.Nick,
		"--plugin-socket", d.PluginSocket()}, args...)...)
}

// PID is dockerd's process ID.
func (d *Dockerd) PID() int { return d.dockerd.pid }

// PIDs lists the daemon's processes: the shell that runs it, dockerd, its
// containerd, the shims and the containers' processes.
func (d *Dockerd) PIDs() []int {
	var pids []int
	for _, p := range d.processes() {
		pids = append(pids, p.pid)
	}
	return pids
}

// waitUp waits until the daemon answers a ping (and has written its
// pidfile), or it exits, or timeout.
func (d *Dockerd) waitUp(timeout time.Duration) error {
	sock := strings.TrimPrefix(d.Host, "unix://")
	hc := &http.Client{
		Timeout: time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dialer net.Dialer
			return dialer.DialContext(ctx, "unix", sock)
		}},
	}
	defer hc.CloseIdleConnections()
	deadline := time.Now().Add(timeout)
	for {
		resp, err := hc.Get("http://docker/_ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return d.readPidfile()
			}
			err = fmt.Errorf("ping: %s", resp.Status)
		}
		if d.proc.Exited() {
			return fmt.Errorf("exited before it answered: %v", d.proc.Wait(0).Err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer within %v: %v", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readPidfile learns dockerd's PID, a child of the shell that runs it.
func (d *Dockerd) readPidfile() error {
	b, err := os.ReadFile(filepath.Join(d.Dir, "docker.pid"))
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("pidfile: %w", err)
	}
	ppid, start, ok := procStat(pid)
	if !ok || ppid != d.proc.PID() {
		return fmt.Errorf("pidfile: %d is not dockerd", pid)
	}
	d.dockerd = process{pid: pid, start: start}
	return nil
}

// importImage loads the busybox tar as BusyboxImage (`docker import`).
func (d *Dockerd) importImage(tarball []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, dockerCLI(), "-H", d.Host, "import", "--change", `CMD ["sh"]`, "-", BusyboxImage)
	cmd.Env = append(os.Environ(), d.cliEnv()...)
	cmd.Stdin = bytes.NewReader(tarball)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%w: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// logTail is the end of the daemon's log, for failure messages.
func (d *Dockerd) logTail(lines int) string {
	b, err := os.ReadFile(d.log)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return "dockerd log (last lines):\n" + strings.Join(all[max(0, len(all)-lines):], "\n")
}

// stop is the test's cleanup: remove all containers, stop dockerd (SIGTERM,
// SIGKILL after dockerdStopTimeout), kill by PID whatever of its process
// tree is left (containerd, shims, containers), remove its cgroups, unmount
// what is still mounted under its directory and remove it. It reports to t
// what it could not undo.
func (d *Dockerd) stop(t testing.TB) {
	d.stopOnce.Do(func() {
		fail := func(err error) { t.Errorf("netns: %s: dockerd cleanup: %v", d.h.Nick, err) }
		if d.dockerd.alive() {
			if r := d.Docker("ps", "-aq"); r.OK() && strings.TrimSpace(r.Stdout) != "" {
				if r := d.Docker(append([]string{"rm", "-f"}, strings.Fields(r.Stdout)...)...); !r.OK() {
					t.Logf("netns: %s: dockerd cleanup: %v", d.h.Nick, r)
				}
			}
		}
		tree := d.processes()
		if d.dockerd.alive() {
			_ = syscall.Kill(d.dockerd.pid, syscall.SIGTERM)
		}
		if d.proc.Wait(dockerdStopTimeout); !d.proc.Exited() {
			t.Logf("netns: %s: dockerd still running %v after SIGTERM; killing it", d.h.Nick, dockerdStopTimeout)
		}
		left := append(tree, d.processes()...)
		for _, p := range left {
			p.kill()
		}
		d.proc.Kill()
		if err := Poll(5*time.Second, func() error {
			for _, p := range left {
				if p.alive() {
					return fmt.Errorf("process %d still running", p.pid)
				}
			}
			return nil
		}); err != nil {
			fail(err)
		}
		for _, cg := range d.cgroups {
			sub, _ := os.ReadDir(cg)
			for _, e := range sub {
				if e.IsDir() {
					_ = os.Remove(filepath.Join(cg, e.Name()))
				}
			}
			if err := os.Remove(cg); err != nil && !os.IsNotExist(err) {
				fail(err)
			}
		}
		for _, m := range mountsUnder(d.Dir) {
			if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
				fail(fmt.Errorf("unmount %s: %w", m, err))
			}
		}
		if err := os.RemoveAll(d.Dir); err != nil {
			fail(err)
		}
	})
}

// process is a process identified by PID and start time, so that a PID
// used again by another process is not taken for it.
type process struct {
	pid   int
	start string
}

// alive reports whether the process still runs (and is not a zombie).
func (p process) alive() bool {
	_, start, ok := procStat(p.pid)
	return ok && start == p.start && alive(p.pid)
}

// kill sends SIGKILL to the process if it is still the one we saw.
func (p process) kill() {
	if p.alive() {
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
	}
}

// processes lists the daemon's process tree: its shell, dockerd and every process
// whose command line names its exec root (its containerd and the shims,
// which leave dockerd's tree), with all their descendants.
func (d *Dockerd) processes() []process {
	entries, _ := os.ReadDir("/proc")
	children := map[int][]int{}
	start := map[int]string{}
	var roots []int
	if !d.proc.Exited() {
		roots = append(roots, d.proc.PID())
	}
	if d.dockerd.alive() {
		roots = append(roots, d.dockerd.pid)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		ppid, st, ok := procStat(pid)
		if !ok {
			continue
		}
		children[ppid] = append(children[ppid], pid)
		start[pid] = st
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if bytes.Contains(cmdline, []byte(d.execRoot+"/")) {
			roots = append(roots, pid)
		}
	}
	seen := map[int]bool{}
	var out []process
	for len(roots) > 0 {
		pid := roots[len(roots)-1]
		roots = roots[:len(roots)-1]
		if seen[pid] || start[pid] == "" {
			continue
		}
		seen[pid] = true
		out = append(out, process{pid: pid, start: start[pid]})
		roots = append(roots, children[pid]...)
	}
	return out
}

// procStat reads the parent and the start time (in clock ticks since boot)
// of a process from /proc/PID/stat.
func procStat(pid int) (ppid int, start string, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, "", false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, "", false
	}
	// After the command: state ppid pgrp ... with starttime the 20th.
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, "", false
	}
	ppid, err = strconv.Atoi(f[1])
	return ppid, f[19], err == nil
}

// mountsUnder lists the mount points under dir in this mount namespace,
// deepest first.
func mountsUnder(dir string) []string {
	var out []string
	for _, m := range readMounts() {
		if m.target == dir || strings.HasPrefix(m.target, dir+"/") {
			out = append([]string{m.target}, out...)
		}
	}
	return out
}

// mount is one line of /proc/self/mounts.
type mount struct{ source, target, fstype, options string }

// readMounts reads this process's mount table (paths with spaces, which
// it escapes, are none of ours).
func readMounts() []mount {
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []mount
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 4 {
			continue
		}
		out = append(out, mount{fields[0], fields[1], fields[2], fields[3]})
	}
	return out
}

// cgroupMounts is shell commands that mount again, in a new mount
// namespace, the cgroup file systems this machine has under /sys/fs/cgroup
// (and the links between them): `ip netns exec` mounts a sysfs of the
// network namespace over /sys, which hides them, and dockerd needs them.
// targets are where the cgroup hierarchies are.
func cgroupMounts() (script string, targets []string) {
	const root = "/sys/fs/cgroup"
	var b strings.Builder
	for _, m := range readMounts() {
		if m.target != root && !strings.HasPrefix(m.target, root+"/") {
			continue
		}
		fmt.Fprintf(&b, "mkdir -p %s\nmount -t %s -o %s %s %s\n",
			quote(m.target), quote(m.fstype), quote(m.options), quote(m.source), quote(m.target))
		if m.fstype == "cgroup" || m.fstype == "cgroup2" {
			targets = append(targets, m.target)
		}
		if m.target == root && m.fstype == "tmpfs" {
			// cgroup v1: links such as cpu -> cpu,cpuacct.
			entries, _ := os.ReadDir(root)
			for _, e := range entries {
				if e.Type()&os.ModeSymlink == 0 {
					continue
				}
				if dest, err := os.Readlink(filepath.Join(root, e.Name())); err == nil {
					fmt.Fprintf(&b, "ln -s %s %s\n", quote(dest), quote(filepath.Join(root, e.Name())))
				}
			}
		}
	}
	return b.String(), targets
}

// quote quotes s for sh.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// quoteAll quotes each of args for sh.
func quoteAll(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = quote(a)
	}
	return out
}

// dockerCLI is the docker client to use: Debian's (docker.io, the same
// version as the daemon) when installed, else whichever is on PATH.
func dockerCLI() string {
	if _, err := os.Stat("/usr/bin/docker"); err == nil {
		return "/usr/bin/docker"
	}
	if p, err := exec.LookPath("docker"); err == nil {
		return p
	}
	return "docker"
}

// dockerdBinary finds dockerd, installing the packages first when
// something is missing (test/docker-deps.sh, at most once per test binary).
func dockerdBinary() (string, error) {
	dockerDepsOnce.Do(func() { dockerDepsErr = dockerDeps() })
	if dockerDepsErr != nil {
		return "", dockerDepsErr
	}
	for _, p := range []string{"/usr/sbin/dockerd", "/usr/bin/dockerd"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("dockerd"); err == nil {
		return p, nil
	}
	return "", errors.New("dockerd not found after test/docker-deps.sh")
}

// dockerDeps runs test/docker-deps.sh.
func dockerDeps() error {
	root, err := moduleRoot()
	if err != nil {
		return fmt.Errorf("test/docker-deps.sh: %w", err)
	}
	cmd := exec.Command("bash", filepath.Join(root, "test", "docker-deps.sh"))
	if out, err := runWithTimeout(cmd, dockerDepsTimeout); err != nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		return fmt.Errorf("test/docker-deps.sh could not install what dockerd needs: %s", lines[len(lines)-1])
	}
	return nil
}

// busyboxImageTar makes, once per test binary, the tar that becomes
// BusyboxImage: a static busybox, a link in /bin for each of its applets,
// a root user, and /tmp.
func busyboxImageTar() ([]byte, error) {
	busyboxOnce.Do(func() { busyboxTar, busyboxErr = makeBusyboxTar() })
	return busyboxTar, busyboxErr
}

// makeBusyboxTar is busyboxImageTar without the cache.
func makeBusyboxTar() ([]byte, error) {
	const bin = "/bin/busybox" // busybox-static's
	if err := checkStatic(bin); err != nil {
		return nil, err
	}
	body, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	out, err := exec.Command(bin, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w", bin, err)
	}
	applets := strings.Fields(string(out))
	for _, want := range busyboxApplets {
		if !slices.Contains(applets, want) {
			return nil, fmt.Errorf("%s has no applet %q", bin, want)
		}
	}

	type entry struct {
		name       string
		typ        byte
		mode       int64
		link, data string
	}
	entries := []entry{
		{name: "bin/", typ: tar.TypeDir, mode: 0o755},
		{name: "etc/", typ: tar.TypeDir, mode: 0o755},
		{name: "root/", typ: tar.TypeDir, mode: 0o700},
		{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
		{name: "etc/passwd", typ: tar.TypeReg, mode: 0o644, data: "root:x:0:0:root:/root:/bin/sh\n"},
		{name: "etc/group", typ: tar.TypeReg, mode: 0o644, data: "root:x:0:\n"},
		{name: "bin/busybox", typ: tar.TypeReg, mode: 0o755, data: string(body)},
	}
	for _, a := range applets {
		if a != "busybox" && !strings.Contains(a, "/") {
			entries = append(entries, entry{name: "bin/" + a, typ: tar.TypeSymlink, mode: 0o777, link: "busybox"})
		}
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link,
			Size: int64(len(e.data)), ModTime: time.Unix(0, 0)}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("busybox image: %w", err)
		}
		if _, err := tw.Write([]byte(e.data)); err != nil {
			return nil, fmt.Errorf("busybox image: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("busybox image: %w", err)
	}
	return buf.Bytes(), nil
}

// checkStatic fails unless bin is a static executable (no ELF interpreter):
// the image has no libraries.
func checkStatic(bin string) error {
	f, err := elf.Open(bin)
	if err != nil {
		return fmt.Errorf("%w (install busybox-static)", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is not static (install busybox-static)", bin)
		}
	}
	return nil
}
