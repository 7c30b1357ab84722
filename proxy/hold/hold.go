// Package hold keeps a container's command from running before weft has
// attached the container.
//
// The mechanism: weft's Docker API proxy rewrites `docker run` so that the
// static weft binary is bind-mounted read-only into the container at
// MountPath and the container's entrypoint is prefixed with Entrypoint(),
// that is `/.weft/weft wait-for-interface --`. The container therefore
// starts as weft (as PID 1), which waits until its network namespace has
// an interface ethweft whose alias is netdev.ReadyAlias: the router sets it
// with netdev.MarkReady once the attachment is complete (addresses,
// routes), so the interface merely existing is not enough. weft then
// replaces itself (execve) with the original command, resolved in the
// container's PATH, with the same arguments and environment; the command
// keeps PID 1 and never sees weft. The binary must be static (see Static)
// because the image may have no C library, or another one.
//
// While waiting, weft polls the interface: every 2 ms for the first
// 200 ms, then every 20 ms (a netlink request each, no privilege needed).
// If the router has not marked the container after Config.Notice, one
// line on stderr says what is awaited. A signal that would end an ordinary
// process (SIGTERM from `docker stop`, SIGINT, SIGQUIT, SIGHUP) ends the
// wait with exit code 128+signal, as if it had killed the process: the
// kernel applies no default action to PID 1, so weft handles them itself
// (Go's runtime alone would exit with status 2). A command that cannot be
// found exits 127 and one that cannot be run 126, as with Docker itself.
//
// Run is the pure part (its I/O, clock and exec are handed in, so it is
// tested without root or waiting); Main wires it to netlink, the process
// environment and syscall.Exec. Strip undoes the proxy's rewrite, for
// showing a container's command as the user gave it.
//
// Goroutines: Run works on the caller's goroutine and starts none; Main
// adds one that waits for signals until Main returns.
package hold

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/weftnet/weft/netdev"
)

// MountPath is where the proxy bind-mounts the weft binary in a container.
const MountPath = "/.weft/weft"

// Command is the weft subcommand that holds a container's command until
// the router has attached the container.
const Command = "wait-for-interface"

// DefaultPATH is searched when the environment has no PATH; it is the one
// Docker gives containers.
const DefaultPATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// NoticeText is the line written to Config.Stderr (followed by a newline)
// when readiness takes longer than Config.Notice.
const NoticeText = "weft: waiting for the weft router to attach this container (is 'weft launch' running on this host?)"

// Polling intervals: fast while an attach that is under way completes,
// slow once it is clearly taking a while.
const (
	fastPoll   = 2 * time.Millisecond
	fastPeriod = 200 * time.Millisecond
	slowPoll   = 20 * time.Millisecond
)

// Entrypoint returns the prefix the proxy puts before a container's
// entrypoint: MountPath, Command and "--". It is a new slice each call.
func Entrypoint() []string { return []string{MountPath, Command, "--"} }

// Strip removes Entrypoint() from the front of argv. When argv starts with
// it, Strip returns a copy of the rest (possibly empty) and true; otherwise
// argv itself and false.
func Strip(argv []string) ([]string, bool) {
	prefix := Entrypoint()
	if len(argv) < len(prefix) || !slices.Equal(argv[:len(prefix)], prefix) {
		return argv, false
	}
	return slices.Clone(argv[len(prefix):]), true
}

// Config is what Run needs. Ready, Exec and LookPath are required; the
// others have defaults.
type Config struct {
	// Args is the command to run: what followed "--".
	Args []string
	// Ready reports whether ethweft exists with alias netdev.ReadyAlias.
	// Errors are retried like false: until the router is done, the
	// interface not being there is normal.
	Ready func() (bool, error)
	// Exec replaces the process (syscall.Exec in production); it returns
	// only on failure. Run returns what it returns, nil included.
	Exec func(argv0 string, argv []string, env []string) error
	// LookPath checks a candidate path, always containing a slash, the way
	// exec.LookPath does: it returns the path if it is an executable file,
	// an error matching fs.ErrPermission if it exists but may not be
	// executed, and another error otherwise.
	LookPath func(file string) (string, error)
	// Env is the command's environment; its PATH (DefaultPATH when it has
	// none) is searched for Args[0].
	Env []string
	// Stderr receives the notice; nil discards it.
	Stderr io.Writer
	// Notice is how long to wait before writing NoticeText once; zero or
	// less never writes it.
	Notice time.Duration
	// Sleep waits for d or until ctx is done; nil sleeps for real.
	Sleep func(ctx context.Context, d time.Duration)
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// Run waits until cfg.Ready reports true, then executes cfg.Args with
// cfg.Env. Args[0] containing a slash is used as it is; otherwise it is
// looked up in the PATH of Env. Run returns an error wrapping ctx's error
// if ctx ends first (checked before each poll, so it wins over a
// simultaneous readiness), ErrNoCommand when Args is empty, ErrNotFound
// when the command is not found, and ErrCannotRun when it is found but
// cannot be executed.
func Run(ctx context.Context, cfg Config) error {
	if len(cfg.Args) == 0 {
		return ErrNoCommand
	}
	if cfg.Ready == nil || cfg.Exec == nil || cfg.LookPath == nil {
		return errors.New("hold: Config needs Ready, Exec and LookPath")
	}
	if err := wait(ctx, &cfg); err != nil {
		return fmt.Errorf("wait for %s: %w", netdev.ContainerIf, err)
	}
	path, err := resolve(cfg.Args[0], envPATH(cfg.Env), cfg.LookPath)
	if err != nil {
		return err
	}
	if err := cfg.Exec(path, cfg.Args, cfg.Env); err != nil {
		kind := ErrCannotRun
		if errors.Is(err, fs.ErrNotExist) {
			kind = ErrNotFound // a missing file, or a script's missing interpreter
		}
		return fmt.Errorf("run %s: %w: %w", path, kind, err)
	}
	return nil
}

// wait polls cfg.Ready until it reports true or ctx is done.
func wait(ctx context.Context, cfg *Config) error {
	now, sleep := cfg.Now, cfg.Sleep
	if now == nil {
		now = time.Now
	}
	if sleep == nil {
		sleep = sleepCtx
	}
	start := now()
	noticed := cfg.Notice <= 0
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if ready, err := cfg.Ready(); err == nil && ready {
			return nil
		}
		waited := now().Sub(start)
		if !noticed && waited >= cfg.Notice {
			noticed = true
			if cfg.Stderr != nil {
				fmt.Fprintln(cfg.Stderr, NoticeText)
			}
		}
		d := slowPoll
		if waited < fastPeriod {
			d = fastPoll
		}
		sleep(ctx, d)
	}
}

// sleepCtx sleeps for d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// envPATH is the value of the last PATH in env (as os/exec takes the last
// of duplicates), or DefaultPATH.
func envPATH(env []string) string {
	path, found := "", false
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path, found = v, true
		}
	}
	if !found {
		return DefaultPATH
	}
	return path
}

// resolve finds file in path as execvp does: a name with a slash is taken
// as it is; otherwise the first executable dir/file wins, an empty dir
// meaning the working directory. When none is executable but one exists
// without permission, the error is ErrCannotRun rather than ErrNotFound.
func resolve(file, path string, lookPath func(string) (string, error)) (string, error) {
	if strings.Contains(file, "/") {
		return file, nil
	}
	if file == "" {
		return "", fmt.Errorf("empty command name: %w", ErrNotFound)
	}
	denied := ""
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		candidate := strings.TrimSuffix(dir, "/") + "/" + file
		p, err := lookPath(candidate)
		if err == nil {
			return p, nil
		}
		if denied == "" && errors.Is(err, fs.ErrPermission) {
			denied = candidate
		}
	}
	if denied != "" {
		return "", fmt.Errorf("%q: %w: %s: permission denied", file, ErrCannotRun, denied)
	}
	return "", fmt.Errorf("%q: %w in PATH (%s)", file, ErrNotFound, path)
}

// Main runs `weft wait-for-interface -- COMMAND [ARG...]` inside a
// container and returns the exit code; args are those after the
// subcommand's name. On success it never returns: the process becomes
// COMMAND. Exit codes: 2 for a usage error or no command, 127 when the
// command is not found, 126 when it cannot be run, 128+N when signal N
// ends the wait, 1 for anything else.
func Main(args []string, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "--" {
		fmt.Fprintf(stderr, "usage: %s %s -- COMMAND [ARG...]\n", MountPath, Command)
		return 2
	}
	// The kernel applies no default action to PID 1: end the wait here.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	caught := make(chan syscall.Signal, 1)
	go func() {
		select {
		case s := <-sigs:
			caught <- s.(syscall.Signal) // before cancel, so Main sees it
			cancel()
		case <-ctx.Done():
		}
	}()

	err := Run(ctx, Config{
		Args:     args[1:],
		Ready:    netdev.Ready,
		Exec:     syscall.Exec,
		LookPath: exec.LookPath,
		Env:      os.Environ(),
		Stderr:   stderr,
		Notice:   10 * time.Second,
	})
	select {
	case s := <-caught:
		return 128 + int(s)
	default:
	}
	if err != nil {
		fmt.Fprintf(stderr, "weft: %s: %v\n", Command, err)
	}
	return exitCode(err)
}

// exitCode is the exit code for Run's error.
func exitCode(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrNoCommand):
		return 2
	case errors.Is(err, ErrNotFound):
		return 127
	case errors.Is(err, ErrCannotRun):
		return 126
	}
	return 1
}
