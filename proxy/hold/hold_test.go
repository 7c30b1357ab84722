package hold

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weftnet/weft/test/netns"
)

// TestMain removes the weft binary built for the root test.
func TestMain(m *testing.M) { os.Exit(netns.Main(m)) }

// fakeClock is a clock that only moves when Run sleeps.
type fakeClock struct {
	start, now time.Time
	sleeps     []time.Duration
}

func newFakeClock() *fakeClock {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	return &fakeClock{start: t0, now: t0}
}

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) Sleep(_ context.Context, d time.Duration) {
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
}

func (c *fakeClock) elapsed() time.Duration { return c.now.Sub(c.start) }

// execCall records one call of Config.Exec.
type execCall struct {
	argv0     string
	argv, env []string
	at        time.Duration // fake time of the call
}

// fakes is a Config wired to a fake clock, a Ready that turns true at
// readyAt (and fails with an error before errorsUntil, as a missing
// interface does), a LookPath that knows the files in exe (and refuses
// those in denied), and an Exec that records its calls.
type fakes struct {
	clock       *fakeClock
	readyAt     time.Duration
	errorsUntil time.Duration
	readyCalls  int
	exe, denied map[string]bool
	looked      []string
	execs       []execCall
	execErr     error
	stderr      bytes.Buffer
}

func newFakes(readyAt time.Duration) *fakes {
	return &fakes{
		clock:   newFakeClock(),
		readyAt: readyAt,
		exe:     map[string]bool{"/bin/echo": true, "/usr/bin/env": true},
		denied:  map[string]bool{},
	}
}

func (f *fakes) config(args ...string) Config {
	return Config{
		Args: args,
		Ready: func() (bool, error) {
			f.readyCalls++
			if f.clock.elapsed() < f.errorsUntil {
				return false, errors.New("Link not found")
			}
			return f.clock.elapsed() >= f.readyAt, nil
		},
		Exec: func(argv0 string, argv, env []string) error {
			f.execs = append(f.execs, execCall{argv0, argv, env, f.clock.elapsed()})
			return f.execErr
		},
		LookPath: func(file string) (string, error) {
			f.looked = append(f.looked, file)
			switch {
			case f.exe[file]:
				return file, nil
			case f.denied[file]:
				return "", &fs.PathError{Op: "lookpath", Path: file, Err: fs.ErrPermission}
			}
			return "", &fs.PathError{Op: "lookpath", Path: file, Err: fs.ErrNotExist}
		},
		Env:    []string{"HOME=/root", "PATH=/usr/local/bin:/usr/bin:/bin"},
		Stderr: &f.stderr,
		Notice: 10 * time.Second,
		Sleep:  f.clock.Sleep,
		Now:    f.clock.Now,
	}
}

func TestRunWaitsUntilReady(t *testing.T) {
	f := newFakes(500 * time.Millisecond)
	f.errorsUntil = 100 * time.Millisecond
	if err := Run(context.Background(), f.config("echo", "hi")); err != nil {
		t.Fatal(err)
	}
	if len(f.execs) != 1 {
		t.Fatalf("Exec called %d times, want 1", len(f.execs))
	}
	e := f.execs[0]
	if e.argv0 != "/bin/echo" || !slices.Equal(e.argv, []string{"echo", "hi"}) ||
		!slices.Equal(e.env, []string{"HOME=/root", "PATH=/usr/local/bin:/usr/bin:/bin"}) {
		t.Errorf("Exec(%q, %q, %q), want /bin/echo with argv and env unchanged", e.argv0, e.argv, e.env)
	}
	if e.at != 500*time.Millisecond {
		t.Errorf("Exec at %v, want as soon as ready (500ms)", e.at)
	}
	// 2 ms steps for 200 ms, then 20 ms steps to 500 ms.
	want := slices.Repeat([]time.Duration{fastPoll}, 100)
	want = append(want, slices.Repeat([]time.Duration{slowPoll}, 15)...)
	if !slices.Equal(f.clock.sleeps, want) {
		t.Errorf("sleeps = %v\nwant %v", f.clock.sleeps, want)
	}
	if f.readyCalls != len(want)+1 {
		t.Errorf("Ready called %d times, want %d", f.readyCalls, len(want)+1)
	}
	if f.stderr.Len() != 0 {
		t.Errorf("stderr before the notice time: %q", f.stderr.String())
	}
}

func TestRunReadyAtOnce(t *testing.T) {
	f := newFakes(0)
	if err := Run(context.Background(), f.config("/bin/echo")); err != nil {
		t.Fatal(err)
	}
	if len(f.clock.sleeps) != 0 || f.readyCalls != 1 || len(f.execs) != 1 {
		t.Errorf("sleeps %v, %d Ready calls, %d execs; want none, 1, 1", f.clock.sleeps, f.readyCalls, len(f.execs))
	}
}

func TestRunNoticeOnce(t *testing.T) {
	f := newFakes(35 * time.Second)
	if err := Run(context.Background(), f.config("echo")); err != nil {
		t.Fatal(err)
	}
	if got := f.stderr.String(); got != NoticeText+"\n" {
		t.Errorf("stderr = %q, want the notice once", got)
	}
	if !strings.Contains(NoticeText, "weft launch") {
		t.Errorf("notice does not say what to do: %q", NoticeText)
	}

	// No notice when Notice is zero.
	f = newFakes(35 * time.Second)
	cfg := f.config("echo")
	cfg.Notice = 0
	if err := Run(context.Background(), cfg); err != nil || f.stderr.Len() != 0 {
		t.Errorf("Notice 0: %v, stderr %q", err, f.stderr.String())
	}
}

func TestRunCancel(t *testing.T) {
	f := newFakes(time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	cfg := f.config("echo")
	ready := cfg.Ready
	cfg.Ready = func() (bool, error) {
		if f.readyCalls == 150 {
			cancel()
		}
		return ready()
	}
	err := Run(ctx, cfg)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "wait for ethweft") {
		t.Errorf("Run = %v, want context.Canceled while waiting for ethweft", err)
	}
	if len(f.execs) != 0 || f.readyCalls != 151 {
		t.Errorf("%d execs, %d Ready calls; want 0 and 151", len(f.execs), f.readyCalls)
	}
	if exitCode(err) != 1 {
		t.Errorf("exitCode = %d, want 1", exitCode(err))
	}
}

// TestRunCancelRealSleep checks that the default sleep wakes on ctx.
func TestRunCancelRealSleep(t *testing.T) {
	f := newFakes(time.Hour)
	cfg := f.config("echo")
	cfg.Sleep, cfg.Now = nil, nil
	cfg.Ready = func() (bool, error) { return false, nil }
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := Run(ctx, cfg)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Run took %v after a 50ms deadline", d)
	}
}

func TestRunNoCommand(t *testing.T) {
	for _, args := range [][]string{nil, {}} {
		f := newFakes(0)
		err := Run(context.Background(), f.config(args...))
		if !errors.Is(err, ErrNoCommand) || err.Error() != "no command to run" {
			t.Errorf("Run(%q) = %v, want ErrNoCommand", args, err)
		}
		if f.readyCalls != 0 || len(f.execs) != 0 {
			t.Errorf("Run(%q) waited or ran", args)
		}
		if exitCode(err) != 2 {
			t.Errorf("exitCode = %d, want 2", exitCode(err))
		}
	}
}

func TestRunLookPath(t *testing.T) {
	tests := []struct {
		name    string
		arg0    string
		env     []string
		exe     []string
		denied  []string
		want    string   // argv0 given to Exec, "" when Run fails
		looked  []string // LookPath's calls
		wantErr error
		code    int
		msg     string // in the error
	}{
		{name: "first in PATH", arg0: "tool", env: []string{"PATH=/a:/b"}, exe: []string{"/a/tool", "/b/tool"},
			want: "/a/tool", looked: []string{"/a/tool"}},
		{name: "later in PATH", arg0: "tool", env: []string{"PATH=/a:/b/"}, exe: []string{"/b/tool"},
			want: "/b/tool", looked: []string{"/a/tool", "/b/tool"}},
		{name: "empty element is the working directory", arg0: "tool", env: []string{"PATH=/a::/b"}, exe: []string{"./tool"},
			want: "./tool", looked: []string{"/a/tool", "./tool"}},
		{name: "last PATH wins", arg0: "tool", env: []string{"PATH=/a", "PATH=/b"}, exe: []string{"/a/tool", "/b/tool"},
			want: "/b/tool", looked: []string{"/b/tool"}},
		{name: "default PATH", arg0: "tool", env: []string{"HOME=/"}, exe: []string{"/bin/tool"},
			want: "/bin/tool", looked: []string{"/usr/local/sbin/tool", "/usr/local/bin/tool", "/usr/sbin/tool",
				"/usr/bin/tool", "/sbin/tool", "/bin/tool"}},
		{name: "slash used as is", arg0: "./run.sh", env: []string{"PATH=/a"}, want: "./run.sh"},
		{name: "absolute used as is", arg0: "/opt/x", env: []string{"PATH=/a"}, want: "/opt/x"},
		{name: "not found", arg0: "nope", env: []string{"PATH=/a:/b"},
			looked: []string{"/a/nope", "/b/nope"}, wantErr: ErrNotFound, code: 127,
			msg: `"nope": command not found in PATH (/a:/b)`},
		{name: "empty name", arg0: "", env: []string{"PATH=/a"}, wantErr: ErrNotFound, code: 127},
		{name: "permission denied", arg0: "tool", env: []string{"PATH=/a:/b"}, denied: []string{"/a/tool"},
			looked: []string{"/a/tool", "/b/tool"}, wantErr: ErrCannotRun, code: 126, msg: "/a/tool: permission denied"},
		{name: "executable after a denied one", arg0: "tool", env: []string{"PATH=/a:/b"}, denied: []string{"/a/tool"},
			exe: []string{"/b/tool"}, want: "/b/tool", looked: []string{"/a/tool", "/b/tool"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakes(0)
			f.exe = map[string]bool{}
			for _, p := range tt.exe {
				f.exe[p] = true
			}
			for _, p := range tt.denied {
				f.denied[p] = true
			}
			cfg := f.config(tt.arg0, "x")
			cfg.Env = tt.env
			err := Run(context.Background(), cfg)
			if !slices.Equal(f.looked, tt.looked) {
				t.Errorf("LookPath calls %q, want %q", f.looked, tt.looked)
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.msg) || len(f.execs) != 0 {
					t.Errorf("Run = %v (%d execs), want %v containing %q", err, len(f.execs), tt.wantErr, tt.msg)
				}
				if got := exitCode(err); got != tt.code {
					t.Errorf("exitCode = %d, want %d", got, tt.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(f.execs) != 1 || f.execs[0].argv0 != tt.want || !slices.Equal(f.execs[0].argv, []string{tt.arg0, "x"}) ||
				!slices.Equal(f.execs[0].env, tt.env) {
				t.Errorf("execs = %+v, want %s", f.execs, tt.want)
			}
		})
	}
}

func TestRunExecFails(t *testing.T) {
	tests := []struct {
		err  error
		kind error
		code int
	}{
		{syscall.ENOENT, ErrNotFound, 127},
		{syscall.EACCES, ErrCannotRun, 126},
		{syscall.ENOEXEC, ErrCannotRun, 126},
	}
	for _, tt := range tests {
		f := newFakes(0)
		f.execErr = tt.err
		err := Run(context.Background(), f.config("/bin/echo"))
		if !errors.Is(err, tt.kind) || !errors.Is(err, tt.err) || !strings.Contains(err.Error(), "run /bin/echo") {
			t.Errorf("Exec failing with %v: Run = %v, want %v wrapping it", tt.err, err, tt.kind)
		}
		if got := exitCode(err); got != tt.code {
			t.Errorf("Exec failing with %v: exit %d, want %d", tt.err, got, tt.code)
		}
	}
}

func TestEntrypointStrip(t *testing.T) {
	ep := Entrypoint()
	if !slices.Equal(ep, []string{"/.weft/weft", "wait-for-interface", "--"}) {
		t.Errorf("Entrypoint() = %q", ep)
	}
	ep[0] = "changed"
	if Entrypoint()[0] != MountPath {
		t.Error("Entrypoint returns a shared slice")
	}
	tests := []struct {
		in   []string
		want []string
		ok   bool
	}{
		{[]string{MountPath, Command, "--", "sh", "-c", "echo"}, []string{"sh", "-c", "echo"}, true},
		{[]string{MountPath, Command, "--"}, []string{}, true},
		{[]string{MountPath, Command, "sh"}, []string{MountPath, Command, "sh"}, false},
		{[]string{MountPath, Command}, []string{MountPath, Command}, false},
		{[]string{"/bin/sh", MountPath, Command, "--"}, []string{"/bin/sh", MountPath, Command, "--"}, false},
		{nil, nil, false},
	}
	for _, tt := range tests {
		got, ok := Strip(tt.in)
		if ok != tt.ok || !slices.Equal(got, tt.want) || (ok && got == nil) {
			t.Errorf("Strip(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
		if ok && len(got) > 0 {
			got[0] = "changed"
			if tt.in[3] == "changed" {
				t.Errorf("Strip(%q) shares the caller's array", tt.in)
			}
		}
	}
	// What the proxy makes, Strip undoes.
	cmd := []string{"nginx", "-g", "daemon off;"}
	if got, ok := Strip(append(Entrypoint(), cmd...)); !ok || !slices.Equal(got, cmd) {
		t.Errorf("Strip(Entrypoint()+cmd) = %q, %v", got, ok)
	}
}

func TestMainUsage(t *testing.T) {
	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{nil, 2, "usage: /.weft/weft wait-for-interface -- COMMAND [ARG...]"},
		{[]string{"/bin/echo"}, 2, "usage:"},
		{[]string{"--"}, 2, "weft: wait-for-interface: no command to run"},
	}
	for _, tt := range tests {
		var stderr bytes.Buffer
		if code := Main(tt.args, &stderr); code != tt.code || !strings.Contains(stderr.String(), tt.msg) {
			t.Errorf("Main(%q) = %d, stderr %q; want %d with %q", tt.args, code, stderr.String(), tt.code, tt.msg)
		}
	}
}
