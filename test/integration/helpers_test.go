package integration

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/test/netns"
)

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "integration: not root: every test skips; run as root (sudo go test ./test/integration) to run them")
	}
	os.Exit(netns.Main(m))
}

// Timeouts for things that take the mesh a while.
const (
	connectTimeout = 30 * time.Second // connections established, discovery
	pingTimeout    = 30 * time.Second // first ping across hosts
	rerouteTimeout = 90 * time.Second // a blocked link noticed (weft: about 60 s), a route changed
)

// waitListening waits until a TCP port listens inside the container.
func waitListening(t *testing.T, c *netns.Container, port int) {
	t.Helper()
	waitSocket(t, c, "-Hltn", "listens on TCP", port)
}

// waitSocket waits until `ss FLAGS` inside the container shows a socket
// on the local port; what says what is awaited, for the failure message.
func waitSocket(t *testing.T, c *netns.Container, flags, what string, port int) {
	t.Helper()
	netns.Eventually(t, 10*time.Second, fmt.Sprintf("%s %s %d", c.Nick, what, port), func() error {
		r := c.Run("ss", flags, "sport", "=", ":"+strconv.Itoa(port))
		if !r.OK() || strings.TrimSpace(r.Stdout) == "" {
			return fmt.Errorf("no such socket (%v)", r.Err)
		}
		return nil
	})
}

// transfer sends size random bytes over TCP from one container to another
// with nc and checks that they arrive byte-identical.
func transfer(t *testing.T, from, to *netns.Container, size, port int) {
	t.Helper()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in"), filepath.Join(dir, "out")
	data := make([]byte, size)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in, data, 0o600); err != nil {
		t.Fatal(err)
	}
	srv := to.Start(t, "sh", "-c", fmt.Sprintf("exec nc -l -p %d > %s", port, out))
	waitListening(t, to, port)
	start := time.Now()
	r := from.Run("sh", "-c", fmt.Sprintf("exec nc -N -w 10 %s %d < %s", to.IP, port, in))
	if !r.OK() {
		t.Fatalf("send %d bytes %s -> %s: %v", size, from.Nick, to.Nick, r)
	}
	if res := srv.Wait(30 * time.Second); !res.OK() {
		t.Fatalf("receive on %s: %v", to.Nick, res)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != size || sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatalf("%s -> %s: received %d bytes with sha256 %x; sent %d bytes with sha256 %x",
			from.Nick, to.Nick, len(got), sha256.Sum256(got), size, sha256.Sum256(data))
	}
	t.Logf("%d bytes %s -> %s intact in %v", size, from.Nick, to.Nick, time.Since(start).Round(time.Millisecond))
}

var macRE = regexp.MustCompile(`(?i)\b([0-9a-f]{2}:){5}[0-9a-f]{2}\b`)

// attachedMAC returns the MAC `weft ps` on the container's host shows for it.
func attachedMAC(t *testing.T, c *netns.Container) string {
	t.Helper()
	out := c.Host.MustWeft(t, "ps")
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == c.Target() {
			if mac := macRE.FindString(line); mac != "" {
				return strings.ToLower(mac)
			}
		}
	}
	t.Fatalf("%s: weft ps shows no MAC for %s:\n%s", c.Host.Nick, c.Target(), out)
	return ""
}

// neighbourMAC returns the MAC in c's neighbour (ARP) table for ip.
func neighbourMAC(c *netns.Container, ip string) (string, error) {
	r := c.Run("ip", "neigh", "show", ip)
	if !r.OK() {
		return "", fmt.Errorf("%s: ip neigh: %v", c.Nick, r)
	}
	mac := macRE.FindString(r.Stdout)
	if mac == "" {
		return "", fmt.Errorf("%s: no ARP entry for %s: %q", c.Nick, ip, strings.TrimSpace(r.Stdout))
	}
	return strings.ToLower(mac), nil
}

// checkUserError checks the contract for a failed command: exit code 1,
// exactly one line on stderr, no Go panic or stack trace.
func checkUserError(t *testing.T, r netns.Result) {
	t.Helper()
	if r.ExitCode != 1 {
		t.Errorf("%v\nwant exit code 1", r)
	}
	msg := strings.TrimRight(r.Stderr, "\n")
	if msg == "" || strings.Contains(msg, "\n") {
		t.Errorf("%s: want exactly one line on stderr, got %q", strings.Join(r.Args, " "), r.Stderr)
	}
	for _, bad := range []string{"panic", "goroutine ", ".go:", "runtime."} {
		if strings.Contains(r.Stderr+r.Stdout, bad) {
			t.Errorf("%s: output contains %q: %q", strings.Join(r.Args, " "), bad, r.Stderr+r.Stdout)
		}
	}
}

// pingCount sends n pings 10 ms apart from c to ip and returns how many
// were answered.
func pingCount(c *netns.Container, ip string, n int) (int, string) {
	r := c.Run("ping", "-n", "-q", "-c", strconv.Itoa(n), "-i", "0.01", "-W", "1", ip)
	m := regexp.MustCompile(`(\d+) (packets )?received`).FindStringSubmatch(r.Stdout)
	if m == nil {
		return 0, r.Stdout + r.Stderr
	}
	got, _ := strconv.Atoi(m[1])
	return got, r.Stdout
}

// relayedPackets pings n times from a to b and returns how many packets the
// relay host's underlay interface received meanwhile, and how many pings
// were answered.
func relayedPackets(t *testing.T, relay *netns.Host, a, b *netns.Container, n int) (rx uint64, answered int) {
	t.Helper()
	rx0, _, err := relay.UnderlayPackets()
	if err != nil {
		t.Fatal(err)
	}
	answered, out := pingCount(a, b.IP, n)
	rx1, _, err := relay.UnderlayPackets()
	if err != nil {
		t.Fatal(err)
	}
	if answered == 0 {
		t.Logf("ping output: %s", out)
	}
	return rx1 - rx0, answered
}
