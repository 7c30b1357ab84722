package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRotatingLog: weft.log is rotated to weft.log.1 when it would pass
// its size cap, so the log takes at most twice the cap (issue 16: it was
// never rotated).
func TestRotatingLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "weft.log")
	if err := os.WriteFile(path, []byte("from before\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := openRotatingLog(path, 1000, false)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				fmt.Fprintf(l, "goroutine %d line %03d %s\n", g, i, strings.Repeat("x", 40))
			}
		}()
	}
	wg.Wait()
	cur, err1 := os.ReadFile(path)
	old, err2 := os.ReadFile(path + ".1")
	if err1 != nil || err2 != nil {
		t.Fatalf("read logs: %v, %v", err1, err2)
	}
	if len(cur) > 1000 || len(old) > 1000 || len(cur) == 0 || len(old) == 0 {
		t.Errorf("weft.log %d bytes, weft.log.1 %d bytes; want both 1..1000", len(cur), len(old))
	}
	for _, b := range [][]byte{cur, old} {
		for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			if !strings.HasPrefix(line, "goroutine ") || len(line) != len("goroutine 0 line 000 ")+40 {
				t.Fatalf("torn or stale line %q", line)
			}
		}
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("new weft.log mode %v (%v), want 0600", info.Mode().Perm(), err)
	}
}

// TestRateLimitHandler: a message repeated beyond the burst within an
// interval is dropped, and one line says how many once the interval is
// over; other messages are not affected (issue 16: refusals flooded the
// log).
func TestRateLimitHandler(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	log := slog.New(newRateLimitHandler(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}), 3, time.Minute, clock)).With("part", "mesh")
	for i := 0; i < 1000; i++ {
		log.Info("refused connection", "from", fmt.Sprintf("10.0.0.%d", i%250))
		if i%100 == 0 {
			log.Warn("other message", "i", i)
		}
	}
	lines := func() []string { return strings.Split(strings.TrimSpace(buf.String()), "\n") }
	if got := strings.Count(buf.String(), "msg=\"refused connection\""); got != 3 {
		t.Errorf("%d refusals logged in the first interval, want 3:\n%s", got, buf.String())
	}
	if got := strings.Count(buf.String(), "msg=\"other message\""); got != 3 {
		t.Errorf("%d of the other message logged, want 3 (its own burst)", got)
	}
	if strings.Contains(buf.String(), "dropped") {
		t.Errorf("summary before the interval is over:\n%s", buf.String())
	}
	now = now.Add(61 * time.Second)
	buf.Reset()
	log.Info("refused connection", "from", "10.0.0.1")
	l := lines()
	want := []string{
		`level=INFO msg="log lines dropped" part=mesh message="refused connection" dropped=997 logged=3 interval=1m0s`,
		`level=WARN msg="log lines dropped" part=mesh message="other message" dropped=7 logged=3 interval=1m0s`,
		`level=INFO msg="refused connection" part=mesh from=10.0.0.1`,
	}
	if len(l) != 3 || l[2] != want[2] || !(l[0] == want[0] && l[1] == want[1] || l[0] == want[1] && l[1] == want[0]) {
		t.Errorf("after the interval:\n%s\nwant (summaries in any order):\n%s", strings.Join(l, "\n"), strings.Join(want, "\n"))
	}
	// A quiet interval: nothing dropped, no summary.
	now = now.Add(2 * time.Minute)
	buf.Reset()
	log.Info("refused connection")
	if l := lines(); len(l) != 1 || strings.Contains(l[0], "dropped") {
		t.Errorf("after a quiet interval: %q", l)
	}
	if err := newRateLimitHandler(slog.DiscardHandler, 1, time.Second, nil).Handle(context.Background(), slog.Record{}); err != nil {
		t.Error(err)
	}
}

// TestRotatingLogStderr: in the router (a child process here), what is
// written to stderr directly (a panic, the last error) follows the log
// into the new file after a rotation.
func TestRotatingLogStderr(t *testing.T) {
	if path := os.Getenv("WEFT_TEST_ROTATE_PATH"); path != "" {
		l, err := openRotatingLog(path, 200, true)
		if err != nil {
			fmt.Println(err)
			os.Exit(2)
		}
		for i := 0; i < 10; i++ {
			fmt.Fprintf(l, "line %d %s\n", i, strings.Repeat("x", 40))
		}
		fmt.Fprintln(os.Stderr, "weft: direct to stderr")
		fmt.Fprintln(os.Stdout, "direct to stdout")
		os.Exit(0)
	}
	path := filepath.Join(t.TempDir(), "weft.log")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestRotatingLogStderr$")
	cmd.Env = append(os.Environ(), "WEFT_TEST_ROTATE_PATH="+path)
	cmd.Stdout, cmd.Stderr = f, f // as launch starts the router
	if err := cmd.Run(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	cur, _ := os.ReadFile(path)
	old, _ := os.ReadFile(path + ".1")
	if !strings.Contains(string(cur), "weft: direct to stderr\n") || !strings.Contains(string(cur), "direct to stdout\n") ||
		!strings.HasPrefix(string(cur), "line ") || len(old) == 0 {
		t.Errorf("weft.log:\n%s\nweft.log.1:\n%s\nwant the direct lines in weft.log, after the rotation", cur, old)
	}
}
