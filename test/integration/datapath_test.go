package integration

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/test/netns"
)

// The data path's correctness matrix: the same traffic (a large TCP
// transfer both ways, pings of every size up to 60000 bytes, UDP datagrams
// larger than the MTU, ARP after a flush) over four ways of moving frames:
// plain with the offloads (TAP with virtio-net headers and TSO, UDP GSO and
// GRO), sealed with a password, the fallback path that
// WEFT_NO_OFFLOAD=1 selects (one frame per read, one datagram per send),
// all three in userspace (--no-fastdp), and the kernel's fast path.
// Afterwards no router may count a drop that means corruption.

// datapathVariant is one way of launching both routers.
type datapathVariant struct {
	name      string
	password  bool // --password-file with a random password
	noOffload bool // WEFT_NO_OFFLOAD=1 in the environment of weft launch
	fastdp    bool // the fast path on (the others run with --no-fastdp)
}

var datapathVariants = []datapathVariant{
	{name: "plain"},
	{name: "encrypted", password: true},
	{name: "fallback", noOffload: true},
	{name: "fastdp", fastdp: true},
}

// transferSize is the size of the TCP transfer in each direction.
const transferSize = 200 << 20

// maxPlainFrame is the largest Ethernet frame the containers' MTU allows
// (weft's MTU stays below 1500); a larger TAP read is a TSO super-frame.
const maxPlainFrame = 1514

// pingSizes are the ICMP payloads sent; those above the MTU are fragmented
// by the container's kernel.
var pingSizes = []int{56, 1400, 1472, 8000, 60000}

// corruptionDrops are the drop counters that must stay zero: each means a
// frame or datagram arrived damaged or could not be put together.
var corruptionDrops = []string{"drop_offload", "drop_reassembly", "drop_bad_datagram", "drop_auth_failed"}

// rawReport is the part of `weft report` this file reads, decoded from the
// JSON itself so that it does not depend on control.Report having the
// offloads field.
type rawReport struct {
	Router struct {
		Encryption bool              `json:"encryption"`
		MTU        int               `json:"mtu"`
		Offloads   map[string]bool   `json:"offloads"`
		Stats      map[string]uint64 `json:"stats"`
	} `json:"router"`
}

// TestDatapath runs the matrix: one world of two hosts per variant, one
// container on each in 10.2.9.0/24, the variants one after the other so
// that the transfer times logged are comparable. The plain and encrypted
// variants expect the offloads, so they fail when the test itself runs with
// WEFT_NO_OFFLOAD set (weft launch inherits the test's environment).
func TestDatapath(t *testing.T) {
	t.Parallel()
	netns.SkipUnlessRoot(t)
	src, sum := randomFile(t, transferSize)
	for _, v := range datapathVariants {
		t.Run(v.name, func(t *testing.T) { testDatapathVariant(t, v, src, sum) })
	}
}

func testDatapathVariant(t *testing.T, v datapathVariant, src string, sum [sha256.Size]byte) {
	w := netns.NewWorld(t, 2)
	h1, h2 := w.Hosts[0], w.Hosts[1]
	var opts []string
	if v.password {
		pw := make([]byte, 24)
		if _, err := rand.Read(pw); err != nil {
			t.Fatal(err)
		}
		opts = []string{"--password-file", writePassword(t, w, "password", hex.EncodeToString(pw))}
	}
	launchVariant(t, h1, v, opts...)
	launchVariant(t, h2, v, append(opts, h1.PeerAddr())...)
	word := "unencrypted"
	if v.password {
		word = "encrypted"
	}
	waitConnWord(t, h1, h2, word)
	waitConnWord(t, h2, h1, word)
	c1 := h1.AddContainer(t, "c1", "10.2.9.1/24")
	c2 := h2.AddContainer(t, "c2", "10.2.9.2/24")
	c1.WaitPing(t, c2.IP, pingTimeout)
	c2.WaitPing(t, c1.IP, pingTimeout)
	pairs := [][2]*netns.Container{{c1, c2}, {c2, c1}}

	t.Run("offloads", func(t *testing.T) {
		for _, h := range w.Hosts {
			rep := rawReportOf(t, h)
			t.Logf("%s: offloads %v, encryption %v, mtu %d", h.Nick, rep.Router.Offloads, rep.Router.Encryption, rep.Router.MTU)
			if rep.Router.Offloads == nil {
				t.Errorf("%s: weft report has no router.offloads: cannot tell which path ran", h.Nick)
				continue
			}
			off := rep.Router.Offloads
			if v.noOffload {
				if off["tap_tso"] || off["udp_gso"] {
					t.Errorf("%s: launched with WEFT_NO_OFFLOAD=1 but offloads are %v: want tap_tso and udp_gso false", h.Nick, off)
				}
			} else if !off["tap_tso"] {
				t.Errorf("%s: default launch runs without TAP TSO: offloads %v", h.Nick, off)
			}
			if rep.Router.Encryption != v.password {
				t.Errorf("%s: weft report says encryption %v, want %v", h.Nick, rep.Router.Encryption, v.password)
			}
		}
	})

	t.Run("arp", func(t *testing.T) {
		for _, p := range pairs {
			checkARP(t, p[0], p[1])
		}
	})

	t.Run("ping-sizes", func(t *testing.T) {
		for _, size := range pingSizes {
			for _, p := range pairs {
				const n = 3
				got, out := pingSized(p[0], p[1].IP, size, n)
				if got != n {
					t.Errorf("ping -s %d %s -> %s: %d of %d answered:\n%s", size, p[0].Nick, p[1].Nick, got, n, out)
				}
			}
		}
	})

	t.Run("udp", func(t *testing.T) {
		// Request and reply, each a single datagram; 4000 and 16000 bytes
		// are larger than the MTU and travel as IP fragments.
		udpExchange(t, c1, c2, 7301, 64, 4000)
		udpExchange(t, c2, c1, 7302, 4000, 16000)
		udpExchange(t, c1, c2, 7303, 1400, 1400)
	})

	t.Run("transfer-200MB", func(t *testing.T) {
		for i, p := range pairs {
			from := p[0].Host
			if v.fastdp {
				waitPath(t, from, p[1].Host, "fastdp", "", connectTimeout)
				vx := linkStat(t, from, vxlanDevice, "tx_bytes")
				bigTransfer(t, p[0], p[1], src, sum, 7311+i)
				if d := linkStat(t, from, vxlanDevice, "tx_bytes") - vx; d < transferSize {
					t.Errorf("%s: the fast path carried %d bytes of a %d-byte transfer", from.Nick, d, transferSize)
				}
				continue
			}
			before := rawReportOf(t, from).Router.Stats
			bigTransfer(t, p[0], p[1], src, sum, 7311+i)
			after := rawReportOf(t, from).Router.Stats
			// What the sender's router read from its TAP tells which path
			// ran: TCP super-frames with TSO, frames of at most the MTU
			// without.
			frames := after["tap_frames_in"] - before["tap_frames_in"]
			bytes := after["tap_bytes_in"] - before["tap_bytes_in"]
			if frames == 0 {
				t.Fatalf("%s: tap_frames_in did not grow during the transfer", from.Nick)
			}
			avg := bytes / frames
			t.Logf("%s read %d frames from its TAP, %d bytes on average", from.Nick, frames, avg)
			if v.noOffload && avg > maxPlainFrame {
				t.Errorf("%s: fallback path read frames of %d bytes on average: more than an MTU-sized frame (%d)",
					from.Nick, avg, maxPlainFrame)
			}
			if !v.noOffload && avg <= maxPlainFrame {
				t.Errorf("%s: offload path read frames of %d bytes on average: no TCP super-frames", from.Nick, avg)
			}
		}
	})

	t.Run("drops", func(t *testing.T) {
		for _, h := range w.Hosts {
			rep := rawReportOf(t, h)
			var drops []string
			for k, n := range rep.Router.Stats {
				if strings.HasPrefix(k, "drop_") {
					drops = append(drops, fmt.Sprintf("%s=%d", k, n))
				}
			}
			slices.Sort(drops)
			t.Logf("%s: %s", h.Nick, strings.Join(drops, " "))
			for _, k := range corruptionDrops {
				n, ok := rep.Router.Stats[k]
				if !ok {
					t.Errorf("%s: weft report stats have no %s", h.Nick, k)
				} else if n != 0 {
					t.Errorf("%s: %s = %d after the traffic, want 0", h.Nick, k, n)
				}
			}
		}
	})
}

// launchVariant launches h's router as the variant wants. The fallback path
// needs WEFT_NO_OFFLOAD=1 in the environment of weft launch (the router it
// starts inherits it), so it is given with env(1) inside the namespace.
// Unless the variant is the fast path's, the router runs with --no-fastdp:
// the others test the userspace path.
func launchVariant(t *testing.T, h *netns.Host, v datapathVariant, args ...string) {
	t.Helper()
	if !v.fastdp {
		args = append([]string{"--no-fastdp"}, args...)
	}
	if !v.noOffload {
		h.Launch(t, args...)
		return
	}
	argv := []string{"env", "WEFT_NO_OFFLOAD=1", "WEFT_STATE_DIR=" + h.StateDir,
		netns.Binary(t), "--state-dir", h.StateDir,
		"launch", "--no-plugin", "--port", strconv.Itoa(h.Port), "--name", h.Nick}
	if r := h.Run(append(argv, args...)...); !r.OK() {
		t.Fatalf("%s: %v", h.Nick, r)
	}
}

// rawReportOf runs `weft report` on h and decodes the parts in rawReport.
func rawReportOf(t *testing.T, h *netns.Host) rawReport {
	t.Helper()
	out := h.MustWeft(t, "report")
	var rep rawReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%s: weft report: decode: %v", h.Nick, err)
	}
	return rep
}

// randomFile writes size random bytes into a file of the test's temporary
// directory and returns its path and SHA-256.
func randomFile(t *testing.T, size int64) (string, [sha256.Size]byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "random")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.Reader, size); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path, [sha256.Size]byte(h.Sum(nil))
}

// fileSum returns the size and SHA-256 of a file, read as a stream.
func fileSum(path string) (int64, [sha256.Size]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, [sha256.Size]byte{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	return n, [sha256.Size]byte(h.Sum(nil)), err
}

// bigTransfer sends the file src over TCP from one container to another
// with nc, the receiver writing to a file, and checks that it arrives
// byte-identical. Nothing is held in memory; the copy is removed after.
func bigTransfer(t *testing.T, from, to *netns.Container, src string, sum [sha256.Size]byte, port int) {
	t.Helper()
	st, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "received")
	family := "-4"
	if strings.Contains(to.IP, ":") {
		family = "-6" // e.g. a link-local fe80::...%ethweft
	}
	srv := to.Start(t, "sh", "-c", fmt.Sprintf("exec nc %s -l -p %d > %s", family, port, out))
	waitListening(t, to, port)
	start := time.Now()
	r := from.Run("sh", "-c", fmt.Sprintf("exec nc %s -N -w 10 %s %d < %s", family, to.IP, port, src))
	if !r.OK() {
		t.Fatalf("send %d bytes %s -> %s: %v", st.Size(), from.Nick, to.Nick, r)
	}
	if res := srv.Wait(30 * time.Second); !res.OK() {
		t.Fatalf("receive on %s: %v", to.Nick, res)
	}
	took := time.Since(start)
	defer os.Remove(out)
	n, got, err := fileSum(out)
	if err != nil {
		t.Fatal(err)
	}
	if n != st.Size() || got != sum {
		t.Fatalf("%s -> %s: received %d bytes with sha256 %x; sent %d bytes with sha256 %x",
			from.Nick, to.Nick, n, got, st.Size(), sum)
	}
	t.Logf("%d MB %s -> %s intact in %v (%.0f Mbit/s)", n>>20, from.Nick, to.Nick,
		took.Round(time.Millisecond), float64(n)*8/took.Seconds()/1e6)
}

var receivedRE = regexp.MustCompile(`(\d+) (packets )?received`)

// pingSized sends n pings with size bytes of payload from c to ip, 200 ms
// apart, each given two seconds, and returns how many were answered.
func pingSized(c *netns.Container, ip string, size, n int) (int, string) {
	r := c.Run("ping", "-n", "-q", "-c", strconv.Itoa(n), "-i", "0.2", "-W", "2", "-s", strconv.Itoa(size), ip)
	m := receivedRE.FindStringSubmatch(r.Stdout)
	if m == nil {
		return 0, r.String()
	}
	got, _ := strconv.Atoi(m[1])
	return got, r.Stdout
}

// checkARP flushes a's neighbour table, pings b, and checks that a learned
// b's IP again, with the MAC weft attached b with.
func checkARP(t *testing.T, a, b *netns.Container) {
	t.Helper()
	want := attachedMAC(t, b)
	a.MustRun(t, "ip", "neigh", "flush", "all")
	if mac, err := neighbourMAC(a, b.IP); err == nil {
		t.Fatalf("%s still resolves %s to %s after ip neigh flush all", a.Nick, b.IP, mac)
	}
	if err := a.Ping(b.IP, 0); err != nil {
		t.Fatalf("after flushing the neighbour table: %v", err)
	}
	line := strings.TrimSpace(a.MustRun(t, "ip", "neigh", "show", b.IP))
	got, err := neighbourMAC(a, b.IP)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("%s resolves %s to %s; weft ps on %s says %s", a.Nick, b.IP, got, b.Host.Nick, want)
	}
	f := strings.Fields(line)
	if state := f[len(f)-1]; state != "REACHABLE" && state != "STALE" && state != "DELAY" {
		t.Errorf("%s: neighbour %s in state %s: %q", a.Nick, b.IP, state, line)
	}
	t.Logf("%s: %s", a.Nick, line)
}

// waitUDPListening waits until a UDP port is bound inside the container.
func waitUDPListening(t *testing.T, c *netns.Container, port int) {
	t.Helper()
	waitSocket(t, c, "-Hlun", "binds UDP", port)
}

// udpExchange sends one datagram of reqSize random bytes from a to b with
// nc -u; b's nc answers, from the same socket, with one datagram of
// replySize random bytes. Both must arrive intact, each as one datagram.
func udpExchange(t *testing.T, a, b *netns.Container, port, reqSize, replySize int) {
	t.Helper()
	dir := t.TempDir()
	write := func(name string, size int) (string, []byte) {
		data := make([]byte, size)
		if _, err := rand.Read(data); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path, data
	}
	req, reqData := write("request", reqSize)
	reply, replyData := write("reply", replySize)
	gotReq, gotReply := filepath.Join(dir, "got-request"), filepath.Join(dir, "got-reply")
	// nc -u -l reads its standard input, the reply, only once the request
	// has come in and it has connected to the sender.
	srv := b.Start(t, "sh", "-c", fmt.Sprintf("exec nc -u -l -p %d < %s > %s", port, reply, gotReq))
	waitUDPListening(t, b, port)
	r := a.Run("sh", "-c", fmt.Sprintf("exec nc -u -w 2 %s %d < %s > %s", b.IP, port, req, gotReply))
	srv.Kill()
	if !r.OK() {
		t.Fatalf("UDP %s -> %s: %v", a.Nick, b.Nick, r)
	}
	check := func(what, path string, want []byte) {
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) || sha256.Sum256(got) != sha256.Sum256(want) {
			t.Errorf("UDP %s: received %d bytes with sha256 %x; sent %d bytes with sha256 %x",
				what, len(got), sha256.Sum256(got), len(want), sha256.Sum256(want))
		}
	}
	check(fmt.Sprintf("request %s -> %s", a.Nick, b.Nick), gotReq, reqData)
	check(fmt.Sprintf("reply %s -> %s", b.Nick, a.Nick), gotReply, replyData)
	t.Logf("UDP %s -> %s %d bytes, reply %d bytes: intact", a.Nick, b.Nick, reqSize, replySize)
}
