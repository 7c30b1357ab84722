package netns

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// The weft binary is built at most once per test binary, and Main removes
// it. (The other package-level state is the registry of live worlds.)
var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
)

// Binary returns the weft binary the tests run: $WEFT_BIN when set, else
// ./cmd/weft of this module built once per test binary (static, with
// CGO_ENABLED=0) into a temporary directory. It fails the test when the
// binary cannot be had.
func Binary(t testing.TB) string {
	t.Helper()
	bin, err := binary()
	if err != nil {
		t.Fatalf("netns: %v", err)
	}
	return bin
}

// binary is Binary without a test to fail.
func binary() (string, error) {
	if bin := os.Getenv("WEFT_BIN"); bin != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			return "", fmt.Errorf("WEFT_BIN=%s: %w", bin, err)
		}
		if _, err := os.Stat(abs); err != nil {
			return "", fmt.Errorf("WEFT_BIN: %w", err)
		}
		return abs, nil
	}
	buildOnce.Do(build)
	return buildBin, buildErr
}

// build compiles ./cmd/weft of the enclosing module.
func build() {
	root, err := moduleRoot()
	if err != nil {
		buildErr = fmt.Errorf("build weft: %w", err)
		return
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	if buildDir, err = os.MkdirTemp("", "weft-test-bin-"); err != nil {
		buildErr = fmt.Errorf("build weft: %w", err)
		return
	}
	bin := filepath.Join(buildDir, "weft")
	cmd := exec.Command(goBin, "build", "-o", bin, "./cmd/weft")
	cmd.Dir = root
	// Static, as `make build` makes it: containers run it (proxy/hold).
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := runWithTimeout(cmd, 5*time.Minute); err != nil {
		buildErr = fmt.Errorf("build weft: go build ./cmd/weft: %w\n%s", err, out)
		return
	}
	buildBin = bin
}

// runWithTimeout runs cmd and returns its combined output.
func runWithTimeout(cmd *exec.Cmd, d time.Duration) ([]byte, error) {
	cmd.WaitDelay = time.Second
	timer := time.AfterFunc(d, func() {
		if cmd.Process != nil {
			_ = cmd.Process.Kill()
		}
	})
	defer timer.Stop()
	return cmd.CombinedOutput()
}

// moduleRoot finds the directory holding go.mod, from the working directory up.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Main runs the tests of a package that uses this harness: it first removes
// what earlier, killed runs left behind; tears the worlds down if the run is
// interrupted (SIGINT, SIGTERM); and removes the weft binary built for the
// tests at the end. Call it from TestMain: os.Exit(netns.Main(m)).
func Main(m *testing.M) int {
	if os.Geteuid() == 0 {
		sweepStale()
	}
	stop := onSignal()
	defer stop()
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	return code
}
