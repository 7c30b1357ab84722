package netns

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// The worlds alive in this test binary, so that Main can tear them down when
// the run is interrupted (Ctrl-C) before the tests' Cleanups could run.
var (
	liveMu sync.Mutex
	live   = map[*World]struct{}{}
)

func register(w *World) {
	liveMu.Lock()
	live[w] = struct{}{}
	liveMu.Unlock()
}

func unregister(w *World) {
	liveMu.Lock()
	delete(live, w)
	liveMu.Unlock()
}

// teardownLive tears down every world still alive.
func teardownLive() {
	liveMu.Lock()
	worlds := make([]*World, 0, len(live))
	for w := range live {
		worlds = append(worlds, w)
	}
	liveMu.Unlock()
	for _, w := range worlds {
		w.teardown()
	}
}

// onSignal tears down the live worlds when the test binary gets SIGINT or
// SIGTERM, then exits. The returned function stops listening.
func onSignal() (stop func()) {
	sig := make(chan os.Signal, 1)
	done := make(chan struct{})
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		select {
		case s := <-sig:
			fmt.Fprintf(os.Stderr, "netns: %v: removing the test worlds\n", s)
			teardownLive()
			os.Exit(1)
		case <-done:
		}
	}()
	return func() {
		signal.Stop(sig)
		close(done)
	}
}

// staleName matches the names of namespaces and world directories made by
// this harness; the number is the PID of the test binary that made them.
var staleName = regexp.MustCompile(`^wt(\d+)-\d+-`)

// sweepStale removes what earlier test binaries of this harness left behind
// when they were killed before their Cleanups ran (a -timeout panic, SIGKILL):
// namespaces and world directories whose maker is no longer running, and the
// processes inside those namespaces.
func sweepStale() {
	stale := func(name string) bool {
		m := staleName.FindStringSubmatch(name)
		if m == nil {
			return false
		}
		pid, err := strconv.Atoi(m[1])
		return err == nil && pid != os.Getpid() && !alive(pid)
	}
	r := run(os.TempDir(), DefaultTimeout, nil, "ip", "netns", "list")
	var namespaces []string
	for _, line := range strings.Split(r.Stdout, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && stale(f[0]) {
			namespaces = append(namespaces, f[0])
		}
	}
	if len(namespaces) > 0 {
		fmt.Fprintf(os.Stderr, "netns: removing %d namespaces left by an earlier run\n", len(namespaces))
		removeNamespaces(namespaces)
	}
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "wt*-*-*"))
	for _, d := range dirs {
		if stale(filepath.Base(d)) {
			_ = os.RemoveAll(d)
		}
	}
}
