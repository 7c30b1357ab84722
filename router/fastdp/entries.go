package fastdp

import (
	"fmt"
	"net/netip"
)

// reconcile removes every entry whose destination is not a peer with its
// fast path up, except the heartbeat entry of a registered peer.
func (m *Manager) reconcile(now int64) {
	entries, err := m.cfg.Kernel.Entries()
	if err != nil {
		m.errs.Add(1)
		m.log.Debug("list fast path entries", "err", err)
		return
	}
	upAddrs := map[netip.Addr]bool{}
	hb := map[MAC]netip.Addr{}
	m.mu.Lock()
	for _, p := range m.peers {
		if p.up {
			upAddrs[p.addr] = true
		}
		hb[p.mac] = p.addr
	}
	m.mu.Unlock()
	for _, e := range entries {
		if a, ok := hb[e.MAC]; ok && a == e.Dst.Unmap() {
			continue
		}
		if upAddrs[e.Dst.Unmap()] && !m.stale[e.MAC] {
			continue
		}
		if err := m.cfg.Kernel.Remove(e); err != nil {
			m.errs.Add(1)
			m.log.Debug("remove fast path entry", "mac", macString(e.MAC), "err", err)
			continue
		}
		m.removals.Add(1)
		delete(m.installed, e.MAC)
	}
	clear(m.stale)
	// Forget installs old enough to be retried on the next miss.
	for mac, at := range m.installed {
		if now-at > int64(m.cfg.Interval) {
			delete(m.installed, mac)
		}
	}
}

// drainMisses installs an entry for each missed MAC behind a peer whose
// fast path is up, once per Interval at most.
func (m *Manager) drainMisses(now int64) {
	up := *m.up.Load()
	for {
		select {
		case ms := <-m.misses:
			addr, ok := up[ms.peer]
			if !ok {
				if ms.moved {
					m.stale[ms.mac] = true // removed by the next reconcile
				}
				continue
			}
			delete(m.stale, ms.mac)
			if _, done := m.installed[ms.mac]; done && !ms.moved {
				continue
			}
			if err := m.cfg.Kernel.Install(Entry{MAC: ms.mac, Dst: addr}, false); err != nil {
				m.errs.Add(1)
				m.log.Debug("install fast path entry", "mac", macString(ms.mac), "peer", ms.peer, "err", err)
				continue
			}
			m.installs.Add(1)
			m.installed[ms.mac] = now
		default:
			return
		}
	}
}

// macString formats a MAC for logs.
func macString(mac MAC) string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5])
}
