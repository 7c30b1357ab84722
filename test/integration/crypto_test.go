package integration

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/test/netns"
)

// Encryption (issue 3) as the kernel sees it: what goes over the underlay,
// who may join, and which links trusted subnets leave in clear.

// writePassword writes a password file into the world's directory and
// returns its path.
func writePassword(t *testing.T, w *netns.World, name, password string) string {
	t.Helper()
	path := filepath.Join(w.Dir, name)
	if err := os.WriteFile(path, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// markers are three 16-byte strings, one per protocol, unique to the test
// run, so that a capture is searched for exactly what was sent.
type markers struct{ tcp, udp, icmp string }

func newMarkers(t *testing.T) markers {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	s := hex.EncodeToString(b) // 12 characters
	return markers{tcp: "Tmk-" + s, udp: "Umk-" + s, icmp: "Imk-" + s}
}

// capture runs tcpdump on the host's underlay interface (eth0) while fn
// runs, and returns the raw pcap bytes. It waits until tcpdump writes
// packets (probing with underlay pings to other) before calling fn, and
// after fn until a ping sent last is in the file.
func capture(t *testing.T, h, other *netns.Host, fn func()) []byte {
	t.Helper()
	path := filepath.Join(h.World().Dir, fmt.Sprintf("capture-%s-%d.pcap", h.Nick, time.Now().UnixNano()))
	p := h.Start(t, "tcpdump", "-n", "-U", "--immediate-mode", "-s", "0", "-i", "eth0", "-w", path)
	netns.Eventually(t, 10*time.Second, h.Nick+": tcpdump captures", func() error {
		h.Run("ping", "-n", "-c", "1", "-W", "1", other.Addr)
		st, err := os.Stat(path)
		if err != nil {
			return err
		}
		if st.Size() <= 24 { // the pcap file header alone
			return fmt.Errorf("%s: %d bytes", path, st.Size())
		}
		return nil
	})
	fn()
	// A last underlay ping with a pattern of its own: once the file holds
	// it, it holds everything fn sent before.
	end := make([]byte, 16)
	if _, err := rand.Read(end); err != nil {
		t.Fatal(err)
	}
	netns.Eventually(t, 10*time.Second, h.Nick+": tcpdump wrote the end mark", func() error {
		h.Run("ping", "-n", "-c", "1", "-W", "1", "-s", "64", "-p", hex.EncodeToString(end), other.Addr)
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if !bytes.Contains(data, end) {
			return fmt.Errorf("%s: end mark not yet in %d bytes", path, len(data))
		}
		return nil
	})
	p.Kill()
	if res := p.Wait(time.Second); res.ExitCode != 0 && !strings.Contains(res.Stderr, "packets captured") {
		t.Fatalf("%s: tcpdump: %v", h.Nick, res)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// exchange sends the markers from a to b over TCP, UDP and ICMP and checks
// that each arrived (ICMP: that the pings were answered).
func exchange(t *testing.T, a, b *netns.Container, m markers, tcpPort, udpPort int) {
	t.Helper()
	tcpSrv := b.Start(t, "nc", "-l", "-p", fmt.Sprint(tcpPort))
	udpSrv := b.Start(t, "nc", "-u", "-l", "-p", fmt.Sprint(udpPort))
	waitListening(t, b, tcpPort)
	a.MustRun(t, "sh", "-c", fmt.Sprintf("echo %s%s | nc -N -w 5 %s %d", m.tcp, m.tcp, b.IP, tcpPort))
	if res := tcpSrv.Wait(10 * time.Second); !res.OK() || !strings.Contains(res.Stdout, m.tcp) {
		t.Fatalf("TCP %s -> %s: received %q: %v", a.Nick, b.Nick, res.Stdout, res)
	}
	// Several datagrams from one socket: the first may race the listener.
	a.MustRun(t, "sh", "-c", fmt.Sprintf(
		"for i in 1 2 3 4 5; do echo %s; sleep 0.1; done | nc -u -w 1 %s %d", m.udp, b.IP, udpPort))
	udpSrv.Kill()
	if res := udpSrv.Wait(time.Second); !strings.Contains(res.Stdout, m.udp) {
		t.Fatalf("UDP %s -> %s: received %q: %v", a.Nick, b.Nick, res.Stdout, res)
	}
	pattern := hex.EncodeToString([]byte(m.icmp))
	r := a.Run("ping", "-n", "-c", "3", "-i", "0.1", "-W", "1", "-s", "100", "-p", pattern, b.IP)
	if !r.OK() {
		t.Fatalf("ICMP %s -> %s with pattern: %v", a.Nick, b.Nick, r)
	}
}

// found lists the markers present in a capture.
func found(pcap []byte, m markers) []string {
	var in []string
	for _, s := range []string{m.tcp, m.udp, m.icmp} {
		if bytes.Contains(pcap, []byte(s)) {
			in = append(in, s)
		}
	}
	return in
}

// connWord returns the encrypted/unencrypted word of the established line
// of `weft status connections` on h for the connection with other.
func connWord(h, other *netns.Host) (string, error) {
	conns, err := h.StatusConnections()
	if err != nil {
		return "", err
	}
	for _, c := range conns {
		f := strings.Fields(c.Line)
		if c.Host() == other.Addr && c.State == "established" && len(f) >= 5 {
			return f[4], nil
		}
	}
	return "", fmt.Errorf("%s: no established connection with %s: %+v", h.Nick, other.Nick, conns)
}

// waitConnWord waits until h's connection with other is established and
// shows word (encrypted or unencrypted) in `weft status connections`, and
// checks that `weft report` agrees.
func waitConnWord(t *testing.T, h, other *netns.Host, word string) {
	t.Helper()
	netns.Eventually(t, connectTimeout, fmt.Sprintf("%s-%s established %s", h.Nick, other.Nick, word), func() error {
		got, err := connWord(h, other)
		if err != nil {
			return err
		}
		if got != word {
			return fmt.Errorf("%s-%s shows %q, want %q", h.Nick, other.Nick, got, word)
		}
		rep, err := h.Report()
		if err != nil {
			return err
		}
		for _, c := range rep.Router.Connections {
			if strings.HasPrefix(c.Address, other.Addr+":") && c.State == "established" {
				if c.Encrypted != (word == "encrypted") {
					return fmt.Errorf("%s: report says encrypted=%v for %s, status says %s", h.Nick, c.Encrypted, c.Address, word)
				}
				return nil
			}
		}
		return fmt.Errorf("%s: report has no established connection with %s", h.Nick, other.Addr)
	})
}

// TestCryptoCapture sends markers over TCP, UDP and ICMP between containers
// and searches a capture of the underlay for them: with a password none
// shows; without one (the control, in a world of its own) all do.
func TestCryptoCapture(t *testing.T) {
	t.Parallel()
	m := newMarkers(t)

	t.Run("encrypted", func(t *testing.T) {
		t.Parallel()
		w := netns.NewWorld(t, 3)
		h1, h2, h3 := w.Hosts[0], w.Hosts[1], w.Hosts[2]
		pw := writePassword(t, w, "password", "correct horse battery staple")
		h1.Launch(t, "--password-file", pw)
		h2.Launch(t, "--password-file", pw, h1.PeerAddr())
		h3.Launch(t, "--password-file", pw, h1.PeerAddr())
		c1 := h1.AddContainer(t, "c1", "10.2.7.1/24")
		c2 := h2.AddContainer(t, "c2", "10.2.7.2/24")
		c3 := h3.AddContainer(t, "c3", "10.2.7.3/24")
		for _, pair := range [][2]*netns.Host{{h1, h2}, {h1, h3}, {h2, h3}} {
			waitConnWord(t, pair[0], pair[1], "encrypted")
			waitConnWord(t, pair[1], pair[0], "encrypted")
		}
		for _, h := range w.Hosts {
			if rep, err := h.Report(); err != nil || !rep.Router.Encryption {
				t.Fatalf("%s: weft report: encryption off (%v)", h.Nick, err)
			}
		}
		c1.WaitPing(t, c2.IP, pingTimeout)
		c1.WaitPing(t, c3.IP, pingTimeout)
		pcap := capture(t, h1, h2, func() {
			exchange(t, c1, c2, m, 7101, 7102)
			exchange(t, c3, c1, m, 7103, 7104)
		})
		if in := found(pcap, m); len(in) > 0 {
			t.Errorf("capture of h1's underlay (%d bytes) contains %q in clear", len(pcap), in)
		}
		t.Logf("encrypted: %d bytes captured on h1, no marker", len(pcap))
	})

	t.Run("control-plain", func(t *testing.T) {
		t.Parallel()
		w := netns.NewWorld(t, 2)
		h1, h2 := w.Hosts[0], w.Hosts[1]
		h1.Launch(t)
		h2.Launch(t, h1.PeerAddr())
		c1 := h1.AddContainer(t, "c1", "10.2.7.1/24")
		c2 := h2.AddContainer(t, "c2", "10.2.7.2/24")
		waitConnWord(t, h1, h2, "unencrypted")
		c1.WaitPing(t, c2.IP, pingTimeout)
		pcap := capture(t, h1, h2, func() { exchange(t, c1, c2, m, 7101, 7102) })
		if in := found(pcap, m); len(in) != 3 {
			t.Errorf("capture without a password (%d bytes) shows only %q of the 3 markers: the search cannot see them",
				len(pcap), in)
		}
	})
}

// TestCryptoRefused launches h1 with a password, h2 with another, h3 with
// none; h2 and h3 dial h1. Nobody joins, and both ends say why, in
// `weft status connections` and in their logs.
func TestCryptoRefused(t *testing.T) {
	t.Parallel()
	w := netns.NewWorld(t, 3)
	h1, h2, h3 := w.Hosts[0], w.Hosts[1], w.Hosts[2]
	h1.Launch(t, "--password-file", writePassword(t, w, "pw1", "the right one"))
	h2.Launch(t, "--password-file", writePassword(t, w, "pw2", "the wrong one"), h1.PeerAddr())
	h3.Launch(t, h1.PeerAddr())

	// reasonFrom waits until a line of h's `weft status connections` about
	// other's address (outbound: h dialled) has state and reason.
	reasonFrom := func(h, other *netns.Host, outbound bool, state, reason string) {
		t.Helper()
		netns.Eventually(t, connectTimeout, fmt.Sprintf("%s shows %q about %s", h.Nick, reason, other.Nick), func() error {
			conns, err := h.StatusConnections()
			if err != nil {
				return err
			}
			for _, c := range conns {
				if c.Host() == other.Addr && c.Outbound == outbound && c.State == state && strings.Contains(c.Line, reason) {
					return nil
				}
			}
			return fmt.Errorf("no %s line with %q: %+v", state, reason, conns)
		})
	}
	reasonFrom(h2, h1, true, "retrying", "authentication failed: password mismatch")
	reasonFrom(h1, h2, false, "failed", "authentication failed: password mismatch")
	reasonFrom(h3, h1, true, "retrying", "authentication failed: peer requires a password, we have none")
	reasonFrom(h1, h3, false, "failed", "authentication failed: peer has no password, we require one")
	// The reverse: the router with the password dials the one without.
	h1.MustWeft(t, "connect", h3.PeerAddr())
	reasonFrom(h1, h3, true, "retrying", "authentication failed: peer has no password, we require one")
	reasonFrom(h3, h1, false, "failed", "authentication failed: peer requires a password, we have none")

	// The refusal is logged on both ends.
	for _, c := range []struct {
		h      *netns.Host
		reason string
	}{
		{h1, "authentication failed: password mismatch"},
		{h2, "authentication failed: password mismatch"},
		{h1, "authentication failed: peer has no password, we require one"},
		{h3, "authentication failed: peer requires a password, we have none"},
	} {
		log, err := os.ReadFile(filepath.Join(c.h.StateDir, "weft.log"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(log, []byte(c.reason)) {
			t.Errorf("%s: weft.log does not mention %q:\n%s", c.h.Nick, c.reason, log)
		}
	}

	netns.Consistently(t, 3*time.Second, "nobody joins h1", func() error {
		for _, pair := range [][2]*netns.Host{{h1, h2}, {h2, h1}, {h1, h3}, {h3, h1}} {
			if pair[0].EstablishedWith(pair[1]) == nil {
				return fmt.Errorf("%s has an established connection with %s", pair[0].Nick, pair[1].Nick)
			}
		}
		if lines, err := h1.PeerLines(); err != nil || len(lines) != 1 {
			return fmt.Errorf("h1 knows peers %q (%v), want only itself", lines, err)
		}
		return nil
	})
}

// TestCryptoTrustedSubnets: h1 and h2 both trust the underlay and exchange
// data in clear; h3 trusts nothing, so its links stay encrypted. Traffic
// flows on every link.
func TestCryptoTrustedSubnets(t *testing.T) {
	t.Parallel()
	w := netns.NewWorld(t, 3)
	h1, h2, h3 := w.Hosts[0], w.Hosts[1], w.Hosts[2]
	pw := writePassword(t, w, "password", "shared secret")
	trust := []string{"--password-file", pw, "--trusted-subnets", netns.UnderlayPrefix + ".0/24"}
	h1.Launch(t, trust...)
	h2.Launch(t, append(trust, h1.PeerAddr())...)
	h3.Launch(t, "--password-file", pw, h1.PeerAddr())
	c1 := h1.AddContainer(t, "c1", "10.2.8.1/24")
	c2 := h2.AddContainer(t, "c2", "10.2.8.2/24")
	c3 := h3.AddContainer(t, "c3", "10.2.8.3/24")

	waitConnWord(t, h1, h2, "unencrypted")
	waitConnWord(t, h2, h1, "unencrypted")
	for _, pair := range [][2]*netns.Host{{h1, h3}, {h3, h1}, {h2, h3}, {h3, h2}} {
		waitConnWord(t, pair[0], pair[1], "encrypted")
	}
	for _, a := range []*netns.Container{c1, c2, c3} {
		for _, b := range []*netns.Container{c1, c2, c3} {
			if a != b {
				a.WaitPing(t, b.IP, pingTimeout)
			}
		}
	}
	// The trusted link carries the markers in clear, the one-sided one not.
	m := newMarkers(t)
	trusted := capture(t, h1, h2, func() { exchange(t, c1, c2, m, 7201, 7202) })
	if in := found(trusted, m); len(in) != 3 {
		t.Errorf("trusted h1-h2: capture shows %q, want all 3 markers in clear", in)
	}
	m = newMarkers(t)
	oneSided := capture(t, h1, h3, func() { exchange(t, c1, c3, m, 7203, 7204) })
	if in := found(oneSided, m); len(in) > 0 {
		t.Errorf("one-sided trust h1-h3: capture contains %q in clear", in)
	}
}
