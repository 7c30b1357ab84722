package fastdp

import (
	"context"
	"net/netip"
	"time"

	"github.com/weftnet/weft/mesh"
)

// receive hands heartbeat frames to handle until the Kernel is closed.
func (m *Manager) receive(ctx context.Context) {
	buf := make([]byte, 65536)
	for {
		n, err := m.cfg.Kernel.Receive(buf)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			m.log.Debug("receive fast path heartbeat", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		m.handle(buf[:n])
	}
}

// handle takes one received heartbeat frame.
func (m *Manager) handle(b []byte) {
	h, err := parseHeartbeat(b)
	if err != nil || h.dst != m.selfMAC || h.sender == m.cfg.Self || h.src != HeartbeatMAC(h.sender) {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.peers[h.sender]
	if p == nil || p.uid != h.uid {
		return
	}
	p.lastHeard = m.cfg.Now().UnixNano()
	p.hearsUs = h.hearsYou
	m.received.Add(1)
}

// beat is one heartbeat to send.
type beat struct {
	name    mesh.PeerName
	p       *peer
	hb      heartbeat
	hbEntry bool
	addr    netip.Addr
}

// update recomputes each peer's up state from its heartbeats and returns
// the heartbeats to send.
func (m *Manager) update(now int64) []beat {
	m.mu.Lock()
	defer m.mu.Unlock()
	changed := false
	beats := make([]beat, 0, len(m.peers))
	for name, p := range m.peers {
		hears := p.lastHeard != 0 && now-p.lastHeard <= int64(m.cfg.Timeout)
		up := hears && p.hearsUs
		if up != p.up {
			p.up, changed = up, true
			if up {
				m.log.Info("fast path up", "peer", name, "addr", p.addr)
			} else {
				m.log.Info("fast path down: frames take the userspace path", "peer", name, "addr", p.addr)
			}
		}
		beats = append(beats, beat{name: name, p: p, addr: p.addr, hbEntry: p.hbEntry,
			hb: heartbeat{dst: p.mac, src: m.selfMAC, hearsYou: hears, sender: m.cfg.Self, uid: p.uid}})
	}
	if changed {
		m.publishLocked()
	}
	return beats
}

// sendBeat installs the static entry for the peer's heartbeat MAC if it
// is not yet, then sends the heartbeat.
func (m *Manager) sendBeat(b beat) {
	if !b.hbEntry {
		if err := m.cfg.Kernel.Install(Entry{MAC: b.hb.dst, Dst: b.addr}, true); err != nil {
			m.errs.Add(1)
			m.setSendErr(b, err)
			return
		}
		m.installs.Add(1)
		m.mu.Lock()
		b.p.hbEntry = true
		m.mu.Unlock()
	}
	putHeartbeat(m.frame, b.hb)
	err := m.cfg.Kernel.Send(m.frame)
	if err != nil {
		m.sendErrs.Add(1)
	} else {
		m.sent.Add(1)
	}
	m.setSendErr(b, err)
}

// setSendErr records the outcome of the last heartbeat to b's peer.
func (m *Manager) setSendErr(b beat, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err == nil {
		b.p.sendErr = ""
		return
	}
	if b.p.sendErr == "" {
		m.log.Info("fast path heartbeat refused", "peer", b.name, "err", err)
	}
	b.p.sendErr = err.Error()
}
