package integration

import (
	"os"
	"strings"
	"testing"

	"github.com/weftnet/weft/test/netns"
)

// TestLocalHardening (issue 16), black-box on one host: a state dir that
// others can write to is refused; launch without a password warns on
// one line and status says so; the status API refuses a foreign Host
// header (DNS rebinding); attach --name refuses a name that is no DNS
// name.
func TestLocalHardening(t *testing.T) {
	w := netns.NewWorld(t, 1)
	h := w.Hosts[0]

	if err := os.Chmod(h.StateDir, 0o777); err != nil {
		t.Fatal(err)
	}
	r := h.Weft("launch", "--no-plugin", "--no-proxy", "--name", h.Nick)
	checkUserError(t, r)
	if !strings.Contains(r.Stderr, "chmod go-w "+h.StateDir) {
		t.Errorf("launch in a state dir of mode 0777: %q, want it to say 'chmod go-w'", r.Stderr)
	}
	if err := os.Chmod(h.StateDir, 0o700); err != nil {
		t.Fatal(err)
	}

	r = h.Weft("launch", "--no-plugin", "--no-proxy", "--name", h.Nick)
	if !r.OK() {
		t.Fatalf("launch: %v", r)
	}
	t.Cleanup(func() { h.Weft("stop") })
	if lines := strings.Split(strings.TrimRight(r.Stderr, "\n"), "\n"); len(lines) != 1 ||
		!strings.HasPrefix(lines[0], "weft: warning: no password:") || !strings.Contains(lines[0], "--password-file") {
		t.Errorf("launch without a password: stderr %q, want one warning line", r.Stderr)
	}
	if out := h.MustWeft(t, "status"); !strings.Contains(out, "Encryption: off (no password") {
		t.Errorf("status without a password:\n%s", out)
	}

	curl := func(host string) string {
		r := h.Run("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: "+host, "http://127.0.0.1:6784/status")
		return r.Stdout
	}
	netns.Eventually(t, pingTimeout, "status API answers", func() error {
		if code := curl("127.0.0.1:6784"); code != "200" {
			return &statusErr{code}
		}
		return nil
	})
	if code := curl("rebind.example:6784"); code != "421" {
		t.Errorf("status API with Host rebind.example: HTTP %s, want 421", code)
	}

	c := h.NewContainer(t, "c1")
	for _, name := range []string{"two words", "bang!"} {
		checkUserError(t, h.Weft("attach", "--name", name, "10.2.1.1/24", c.Target()))
	}
	if out := h.MustWeft(t, "ps"); strings.Contains(out, "10.2.1.1") {
		t.Errorf("refused attach left: %s", out)
	}
	h.Stop(t)
}

type statusErr struct{ code string }

func (e *statusErr) Error() string { return "HTTP " + e.code }
