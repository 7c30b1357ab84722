package mesh

import (
	"net/netip"
	"sync"

	"github.com/weftnet/weft/secure"
)

// Defaults of the limits on inbound connections that have not finished
// their handshake (Config.PreauthLimit, Config.PreauthLimitPerAddr).
const (
	DefaultPreauthLimit        = 64
	DefaultPreauthLimitPerAddr = 8
)

// maxFeaturesLen bounds the features message (tag byte included) read
// before the peer is authenticated: the payload of the encrypted
// handshake, which every features message we send fits (checkFeatures).
const maxFeaturesLen = secure.MaxPayloadLen

// preauthGate counts the inbound connections whose handshake is running,
// in total and per remote IP, separately from Config.ConnLimit (which
// counts registered peers). An address may hold at most perAddr of them.
// When all max are taken, a connection from an address holding at least
// two fewer than the busiest address is admitted by evicting the busiest
// address's oldest connection, so that a few sources that fill the gate
// cannot keep other sources out; otherwise the new connection is refused.
//
// Safe for concurrent use.
type preauthGate struct {
	mu      sync.Mutex
	max     int
	perAddr int
	n       int
	byAddr  map[netip.Addr][]*preauthSlot // oldest first
}

// preauthSlot is one admitted connection. evict closes it; it is called
// at most once, without the gate's lock held.
type preauthSlot struct {
	gate  *preauthGate
	addr  netip.Addr
	evict func()
}

func newPreauthGate(max, perAddr int) *preauthGate {
	return &preauthGate{max: max, perAddr: perAddr, byAddr: map[netip.Addr][]*preauthSlot{}}
}

// admit takes a slot for a connection from addr, or reports false when
// the connection must be refused. evict closes the connection if a later
// one needs its slot.
func (g *preauthGate) admit(addr netip.Addr, evict func()) (*preauthSlot, bool) {
	addr = addr.Unmap()
	g.mu.Lock()
	mine := len(g.byAddr[addr])
	if mine >= g.perAddr {
		g.mu.Unlock()
		return nil, false
	}
	var victim *preauthSlot
	if g.n >= g.max {
		var busiest netip.Addr
		most := 0
		for a, s := range g.byAddr {
			if len(s) > most {
				busiest, most = a, len(s)
			}
		}
		if most <= mine+1 {
			g.mu.Unlock()
			return nil, false
		}
		victim = g.byAddr[busiest][0]
		g.removeLocked(victim)
	}
	s := &preauthSlot{gate: g, addr: addr, evict: evict}
	g.byAddr[addr] = append(g.byAddr[addr], s)
	g.n++
	g.mu.Unlock()
	if victim != nil {
		victim.evict()
	}
	return s, true
}

// release frees the slot; it is idempotent and a no-op after eviction.
func (s *preauthSlot) release() {
	if s == nil {
		return
	}
	s.gate.mu.Lock()
	s.gate.removeLocked(s)
	s.gate.mu.Unlock()
}

func (g *preauthGate) removeLocked(s *preauthSlot) {
	slots := g.byAddr[s.addr]
	for i, o := range slots {
		if o == s {
			slots = append(slots[:i], slots[i+1:]...)
			g.n--
			if len(slots) == 0 {
				delete(g.byAddr, s.addr)
			} else {
				g.byAddr[s.addr] = slots
			}
			return
		}
	}
}

// counts returns the connections held in total and from addr.
func (g *preauthGate) counts(addr netip.Addr) (total, fromAddr int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n, len(g.byAddr[addr.Unmap()])
}
