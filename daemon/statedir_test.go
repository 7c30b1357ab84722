package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/router"
	"github.com/weftnet/weft/router/routertest"
)

// runOnce starts a router on fakes with stateDir and stops it once it is
// ready; it returns Run's error when the router does not start.
func runOnce(t *testing.T, stateDir string) error {
	t.Helper()
	nw := routertest.NewNetwork(1)
	deps := Deps{
		Host:    newFakeHost(),
		OpenTAP: func(string, int) (router.Device, error) { return routertest.NewDevice(1406, 256), nil },
		ListenUDP: func(netip.AddrPort) (router.Transport, error) {
			return nw.Transport(netip.MustParseAddrPort("127.0.0.1:10091"), 256), nil
		},
	}
	cfg := Config{StateDir: stateDir, NickName: "sd", Host: "127.0.0.1", Version: "test"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done, ready := make(chan error, 1), make(chan struct{})
	go func() { done <- Run(ctx, cfg, deps, func() { close(ready) }) }()
	select {
	case <-ready:
		cancel()
		<-done
		return nil
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("router neither started nor failed within 10s")
		return nil
	}
}

// TestStateDirChecked: the router creates its state dir 0700, and
// refuses one that its group or others can write to, or that another
// user owns (issue 16); 0711 (set by the Docker API proxy) and 0755 are
// accepted.
func TestStateDirChecked(t *testing.T) {
	base := t.TempDir()
	fresh := filepath.Join(base, "fresh", "state")
	if err := runOnce(t, fresh); err != nil {
		t.Fatalf("fresh state dir: %v", err)
	}
	if info, err := os.Stat(fresh); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("fresh state dir: mode %v (%v), want 0700", info.Mode().Perm(), err)
	}
	for _, c := range []struct {
		mode os.FileMode
		ok   bool
	}{{0o700, true}, {0o711, true}, {0o755, true}, {0o770, false}, {0o777, false}, {0o702, false}, {0o1777, false}} {
		dir := filepath.Join(base, fmt.Sprintf("m%04o", c.mode))
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, c.mode); err != nil {
			t.Fatal(err)
		}
		err := runOnce(t, dir)
		switch {
		case c.ok && err != nil:
			t.Errorf("mode %04o: %v, want the router to start", c.mode, err)
		case !c.ok && (err == nil || !strings.Contains(err.Error(), "chmod go-w "+dir)):
			t.Errorf("mode %04o: %v, want a refusal that says to chmod go-w", c.mode, err)
		}
		if !c.ok {
			if _, err := os.Stat(filepath.Join(dir, "weft.db")); err == nil {
				t.Errorf("mode %04o: the refused state dir got a database", c.mode)
			}
		}
	}
	if os.Geteuid() != 0 {
		return // only root can give a directory away
	}
	foreign := filepath.Join(base, "foreign")
	if err := os.Mkdir(foreign, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(foreign, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	if err := runOnce(t, foreign); err == nil || !strings.Contains(err.Error(), "owned by uid 4242") || !strings.Contains(err.Error(), "chown 0 "+foreign) {
		t.Errorf("state dir owned by uid 4242: %v, want a refusal that says to chown it", err)
	}
}
