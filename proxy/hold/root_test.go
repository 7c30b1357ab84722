package hold

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/weftnet/weft/netdev"
	"github.com/weftnet/weft/test/netns"
)

// syncBuffer is a bytes.Buffer a process may write while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// held is a weft wait-for-interface process under test.
type held struct {
	cmd            *exec.Cmd
	stdout, stderr syncBuffer
	done           chan struct{} // closed when it has exited
	err            error         // cmd.Wait's, once done is closed
}

// rootEnv makes what a root test of the hold needs: the weft binary and
// a namespace standing for the container, removed at cleanup. It skips
// unless root with ip, and fails when root but unable to set up.
func rootEnv(t *testing.T, suffix string) (bin, ns string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs the ip command")
	}
	bin = netns.Binary(t)
	ns = addNetns(t, suffix)
	return bin, ns
}

// addNetns makes a namespace with a name unique to the test process and
// removes it (and the links in it) at cleanup.
func addNetns(t *testing.T, suffix string) string {
	t.Helper()
	name := fmt.Sprintf("wefthold%d-%s", os.Getpid(), suffix)
	mustRun(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	return name
}

func mustRun(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// startHeld starts argv and kills it at cleanup if it is still running.
func startHeld(t *testing.T, argv ...string) *held {
	t.Helper()
	h := &held{cmd: exec.Command(argv[0], argv[1:]...), done: make(chan struct{})}
	h.cmd.Stdout, h.cmd.Stderr = &h.stdout, &h.stderr
	if err := h.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", strings.Join(argv, " "), err)
	}
	go func() {
		h.err = h.cmd.Wait()
		close(h.done)
	}()
	t.Cleanup(func() {
		select {
		case <-h.done:
		default:
			_ = h.cmd.Process.Kill()
			<-h.done
		}
	})
	return h
}

func (h *held) exited() bool {
	select {
	case <-h.done:
		return true
	default:
		return false
	}
}

// assertHeld fails if the process has printed anything or exited.
func (h *held) assertHeld(t *testing.T, when string) {
	t.Helper()
	if h.exited() || h.stdout.String() != "" {
		t.Fatalf("%s: the command ran or weft exited (%v); stdout %q, stderr %q",
			when, h.err, h.stdout.String(), h.stderr.String())
	}
}

// wait waits up to d for the process to exit and returns its exit code.
func (h *held) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-h.done:
	case <-time.After(d):
		t.Fatalf("still running after %v; stdout %q, stderr %q", d, h.stdout.String(), h.stderr.String())
	}
	return h.cmd.ProcessState.ExitCode()
}

// TestHoldInNamespace runs weft wait-for-interface in a namespace standing
// for a container and releases it as the router would: ethweft appears
// (moved in and renamed, as a veth peer), then gets the ready alias.
func TestHoldInNamespace(t *testing.T) {
	bin, ns := rootEnv(t, "c")
	hostNS := addNetns(t, "h") // holds the host end, so nothing touches the real host

	h := startHeld(t, "ip", "netns", "exec", ns, bin, Command, "--", "/bin/echo", "held-ok")
	time.Sleep(300 * time.Millisecond)
	h.assertHeld(t, "before ethweft exists")

	mustRun(t, "ip", "-n", hostNS, "link", "add", "whold0", "type", "veth", "peer", "name", "whold1")
	mustRun(t, "ip", "-n", hostNS, "link", "set", "whold1", "netns", ns)
	mustRun(t, "ip", "-n", ns, "link", "set", "whold1", "name", netdev.ContainerIf)
	time.Sleep(100 * time.Millisecond)
	h.assertHeld(t, "with ethweft but no alias")
	mustRun(t, "ip", "-n", ns, "link", "set", netdev.ContainerIf, "alias", "weft:other")
	time.Sleep(100 * time.Millisecond)
	h.assertHeld(t, "with another alias")

	mustRun(t, "ip", "-n", ns, "link", "set", netdev.ContainerIf, "alias", netdev.ReadyAlias)
	if code := h.wait(t, 2*time.Second); code != 0 {
		t.Errorf("exit code %d, want 0; stderr %q", code, h.stderr.String())
	}
	if got := h.stdout.String(); got != "held-ok\n" {
		t.Errorf("stdout %q, want held-ok", got)
	}
	if got := h.stderr.String(); got != "" {
		t.Errorf("stderr %q, want nothing", got)
	}
}

// TestHoldExitCodes checks what the process exits with when it is stopped
// while waiting (as PID 1 of a PID namespace, like a container's command)
// and when the command cannot be found or run.
func TestHoldExitCodes(t *testing.T) {
	bin, ns := rootEnv(t, "x")
	mustRun(t, "ip", "-n", ns, "link", "add", netdev.ContainerIf, "type", "veth", "peer", "name", "whold2")
	mustRun(t, "ip", "-n", ns, "link", "set", netdev.ContainerIf, "alias", netdev.ReadyAlias)
	dir := t.TempDir()
	notExec := dir + "/not-exec"
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\necho no\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		argv []string
		code int
		msg  string
	}{
		{[]string{"no-such-command-weft"}, 127, `"no-such-command-weft": command not found in PATH`},
		{[]string{dir + "/missing"}, 127, "no such file or directory"},
		{[]string{notExec}, 126, "permission denied"},
		{nil, 2, "no command to run"},
	} {
		argv := append([]string{"ip", "netns", "exec", ns, bin, Command, "--"}, tt.argv...)
		h := startHeld(t, argv...)
		if code := h.wait(t, 5*time.Second); code != tt.code || !strings.Contains(h.stderr.String(), tt.msg) {
			t.Errorf("%q: exit %d, stderr %q; want %d with %q", tt.argv, code, h.stderr.String(), tt.code, tt.msg)
		}
	}

	t.Run("SIGTERM as PID 1", func(t *testing.T) {
		if _, err := exec.LookPath("unshare"); err != nil {
			t.Skip("needs unshare")
		}
		waitNS := addNetns(t, "w") // no ethweft: it waits
		h := startHeld(t, "ip", "netns", "exec", waitNS, "unshare", "--pid", "--fork",
			bin, Command, "--", "/bin/echo", "ran")
		pid := 0
		netns.Eventually(t, 2*time.Second, "weft as PID 1", func() error {
			if h.exited() {
				return nil // reported by assertHeld
			}
			p := h.cmd.Process.Pid
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", p, p))
			if err != nil {
				return err
			}
			if pid, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
				return fmt.Errorf("children of unshare: %q", b)
			}
			return nil
		})
		h.assertHeld(t, "as PID 1")
		time.Sleep(200 * time.Millisecond) // let it reach the wait
		h.assertHeld(t, "before SIGTERM")
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if code := h.wait(t, 2*time.Second); code != 128+int(syscall.SIGTERM) {
			t.Errorf("exit %d after SIGTERM, want %d; stderr %q", code, 128+int(syscall.SIGTERM), h.stderr.String())
		}
		if h.stdout.String() != "" {
			t.Errorf("the command ran: %q", h.stdout.String())
		}
	})
}
