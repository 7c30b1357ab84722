package netns

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// DefaultTimeout bounds every command run through Run, Weft and friends.
const DefaultTimeout = 60 * time.Second

// Result is what a finished command left behind.
type Result struct {
	Args     []string // the command line as run
	Stdout   string
	Stderr   string
	ExitCode int   // -1 when the command did not run or was killed
	Err      error // nil when the command ran and exited 0
}

// OK reports whether the command exited 0.
func (r Result) OK() bool { return r.Err == nil }

// String describes the result for test failure messages.
func (r Result) String() string {
	return fmt.Sprintf("%s: exit %d (%v)\nstdout: %s\nstderr: %s",
		strings.Join(r.Args, " "), r.ExitCode, r.Err, r.Stdout, r.Stderr)
}

// run runs argv with stdout and stderr written to temporary files rather
// than pipes, so that a daemon that inherits them (weft launch) cannot keep
// the call waiting.
func run(dir string, timeout time.Duration, env []string, argv ...string) Result {
	res := Result{Args: argv, ExitCode: -1}
	outF, err := os.CreateTemp(dir, "out-")
	if err != nil {
		res.Err = fmt.Errorf("run %s: %w", argv[0], err)
		return res
	}
	defer os.Remove(outF.Name())
	defer outF.Close()
	errF, err := os.CreateTemp(dir, "err-")
	if err != nil {
		res.Err = fmt.Errorf("run %s: %w", argv[0], err)
		return res
	}
	defer os.Remove(errF.Name())
	defer errF.Close()

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = outF, errF
	cmd.Env = append(os.Environ(), env...)
	// A process group of its own, so that a timeout ends the whole command.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	runErr := cmd.Run()
	if cmd.ProcessState != nil {
		res.ExitCode = cmd.ProcessState.ExitCode()
	}
	stdout, _ := os.ReadFile(outF.Name())
	stderr, _ := os.ReadFile(errF.Name())
	res.Stdout, res.Stderr = string(stdout), string(stderr)
	switch {
	case ctx.Err() != nil:
		res.Err = fmt.Errorf("%s: timed out after %v", argv[0], timeout)
	case runErr != nil:
		res.Err = runErr
	}
	return res
}

// Proc is a command running in the background in one of the world's
// namespaces. The world kills it by PID at cleanup if it is still running.
type Proc struct {
	Args []string
	cmd  *exec.Cmd
	out  *os.File
	err  *os.File
	done chan struct{}
	res  Result
}

// start starts argv in the background, output to files in dir.
func start(dir string, argv ...string) (*Proc, error) {
	p := &Proc{Args: argv, done: make(chan struct{})}
	var err error
	if p.out, err = os.CreateTemp(dir, "bg-out-"); err != nil {
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	if p.err, err = os.CreateTemp(dir, "bg-err-"); err != nil {
		p.out.Close()
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.err
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		p.out.Close()
		p.err.Close()
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	go func() {
		werr := p.cmd.Wait()
		p.res = Result{Args: argv, ExitCode: p.cmd.ProcessState.ExitCode(), Err: werr}
		out, _ := os.ReadFile(p.out.Name())
		errb, _ := os.ReadFile(p.err.Name())
		p.res.Stdout, p.res.Stderr = string(out), string(errb)
		p.out.Close()
		p.err.Close()
		os.Remove(p.out.Name())
		os.Remove(p.err.Name())
		close(p.done)
	}()
	return p, nil
}

// PID is the process ID (that of the command itself: `ip netns exec` execs it).
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Wait waits up to timeout for the process to exit and returns its result.
// On timeout the process keeps running and the result's Err says so.
func (p *Proc) Wait(timeout time.Duration) Result {
	select {
	case <-p.done:
		return p.res
	case <-time.After(timeout):
		return Result{Args: p.Args, ExitCode: -1, Err: fmt.Errorf("%s: still running after %v", p.Args[0], timeout)}
	}
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Kill ends the process: SIGTERM to its process group, SIGKILL after two
// seconds. It returns once the process has been reaped.
func (p *Proc) Kill() {
	if p.Exited() {
		return
	}
	_ = syscall.Kill(-p.PID(), syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(2 * time.Second):
	}
	_ = syscall.Kill(-p.PID(), syscall.SIGKILL)
	<-p.done
}

// killPID ends a process we found in one of our own namespaces: SIGTERM,
// then SIGKILL if it is still there after two seconds.
func killPID(pid int) {
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return
	}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if !alive(pid) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(stat)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}
