package integration

import (
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/control"
	"github.com/weftnet/weft/test/netns"
)

// TestTopologyForgery is issue 16's item 4, built from
// docs/protocol-control.md alone (member_test.go): h1 and h2 run routers
// without a password; a member on h3 (no router) joins h1 and gossips
//
//   - entries under h2's name at version 2^64-1, with no connections or
//     only one to the member, and the nickname "evil", signed with its own
//     key (the mesh's unit tests also try h2's key with another's
//     signature);
//   - 65,540 entries of peers of its own making, each with a key of its
//     own (more than the 16-bit count of a single message, which used to
//     make every router fail to decode the relayed topology and drop all
//     its connections).
//
// h1 and h2 must stay connected, h2's entry must be h2's own everywhere
// (nickname, connections), containers on h1 and h2 keep reaching each
// other, the topology stays within its 10,000-peer limit, and h1 logs the
// refusals.
func TestTopologyForgery(t *testing.T) {
	t.Parallel()
	w := netns.NewWorld(t, 3)
	h1, h2, h3 := w.Hosts[0], w.Hosts[1], w.Hosts[2]
	h1.Launch(t)
	h2.Launch(t, h1.PeerAddr())
	c1 := h1.AddContainer(t, "c1", "10.2.11.1/24")
	c2 := h2.AddContainer(t, "c2", "10.2.11.2/24")
	c1.WaitPing(t, c2.IP, pingTimeout)
	h2Name, err := h2.PeerName()
	if err != nil {
		t.Fatal(err)
	}
	h2Mac, _ := net.ParseMAC(h2Name)
	h1Name, _ := h1.PeerName()
	h1Mac, _ := net.ParseMAC(h1Name)

	// The member's entries: h2 forged twice, then the made-up peers.
	mk := newMemberKey(99)
	forgedOwn := topoEntry{key: mk, name: macName(h2Mac), uid: 1, version: math.MaxUint64, nick: "evil"}
	stolen := forgedOwn
	stolen.nick, stolen.conns = "evil2", []topoConn{{peer: mk.name}}
	self := topoEntry{key: mk, uid: 99, version: 1, nick: "member",
		conns: []topoConn{{peer: macName(h1Mac), outbound: true}}}
	const made = 65540
	fakes := make([]topoEntry, 0, made)
	for i := range made {
		k := newMemberKey(uint64(10000 + i))
		if len(self.conns) < 60000 {
			self.conns = append(self.conns, topoConn{peer: k.name})
		}
		fakes = append(fakes, topoEntry{key: k, uid: uint64(i + 1), version: 1, nick: "sybil",
			conns: []topoConn{{peer: mk.name}}})
	}

	dial := nsDialer(t, h3.Name)
	nc, err := dial(net.ParseIP(h3.Addr), &net.TCPAddr{IP: net.ParseIP(h1.Addr), Port: h1.Port})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	m := joinMember(t, nc, mk, "member")
	if err := m.send(encodeTopo([]topoEntry{forgedOwn, stolen, self})); err != nil {
		t.Fatal(err)
	}
	if err := m.send(encodeTopo(fakes)); err != nil {
		t.Fatal(err)
	}

	// h1 refuses the forgeries and logs it.
	netns.Eventually(t, 20*time.Second, "h1 logs the refused entries", func() error {
		log, err := os.ReadFile(filepath.Join(h1.StateDir, "weft.log"))
		if err != nil {
			return err
		}
		if !strings.Contains(string(log), "refused topology entry: a peer may only speak for itself") {
			return fmt.Errorf("no refusal in h1's log")
		}
		return nil
	})
	// Give the made-up peers time to spread, then check both routers.
	time.Sleep(3 * time.Second)
	for _, h := range []*netns.Host{h1, h2} {
		if err := h.EstablishedWith(other(h, h1, h2)); err != nil {
			t.Fatal(err)
		}
		rep, err := h.Report()
		if err != nil {
			t.Fatal(err)
		}
		if n := len(rep.Router.Peers); n > 10000 {
			t.Errorf("%s knows %d peers, more than the limit of 10,000", h.Nick, n)
		}
		var h2Entry *control.Peer
		for i := range rep.Router.Peers {
			if rep.Router.Peers[i].Name == h2Name {
				h2Entry = &rep.Router.Peers[i]
			}
		}
		if h2Entry == nil || h2Entry.NickName != h2.Nick || len(h2Entry.Connections) == 0 {
			t.Errorf("%s's entry for h2: %+v", h.Nick, h2Entry)
		}
		t.Logf("%s: %d peers known", h.Nick, len(rep.Router.Peers))
	}
	if err := c1.Ping(c2.IP, 0); err != nil {
		t.Fatalf("c1 no longer reaches c2: %v", err)
	}
	// Status says so, and the report counts it.
	if out := h1.MustWeft(t, "status"); !strings.Contains(out, "gossip dropped since start") {
		t.Errorf("h1's status has no warning about the forgeries:\n%s", out)
	}
	rep, err := h1.Report()
	if err != nil {
		t.Fatal(err)
	}
	if rep.Router.Forgeries["topology_signature"] == 0 || rep.Router.Forgeries["topology_peer_limit"] == 0 {
		t.Errorf("h1's report counts %v", rep.Router.Forgeries)
	}
}

func other(h, a, b *netns.Host) *netns.Host {
	if h == a {
		return b
	}
	return a
}
