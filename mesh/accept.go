package mesh

import (
	"errors"
	"net"
	"time"
)

// Delays between failed Accept calls: a listener that keeps failing (out
// of file descriptors, EMFILE) is retried after minAcceptDelay, doubling
// up to maxAcceptDelay, instead of in a busy loop. A successful Accept
// resets the delay.
const (
	minAcceptDelay = 5 * time.Millisecond
	maxAcceptDelay = time.Second
)

// nextAcceptDelay returns the wait after a failed Accept, given the
// previous wait (0 after a success).
func nextAcceptDelay(prev time.Duration) time.Duration {
	if prev <= 0 {
		return minAcceptDelay
	}
	return min(2*prev, maxAcceptDelay)
}

// acceptLoop accepts inbound connections until the node stops. Each one
// first takes a slot of the pre-authentication gate (Config.PreauthLimit,
// Config.PreauthLimitPerAddr); a connection that gets none is closed at
// once, before anything is read from it or written to it.
func (n *Node) acceptLoop() {
	defer n.wg.Done()
	var delay time.Duration
	for {
		nc, err := n.ln.Accept()
		if err != nil {
			if n.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			delay = nextAcceptDelay(delay)
			n.log.Warn("mesh accept", "err", err, "retry_in", delay)
			t := n.cfg.Clock.NewTimer(delay)
			select {
			case <-n.ctx.Done():
				t.Stop()
				return
			case <-t.C():
			}
			continue
		}
		delay = 0
		slot, ok := n.preauth.admit(addrPortOf(nc.RemoteAddr()).Addr(), func() { nc.Close() })
		if !ok {
			n.preauthRefused.Add(1)
			if tc, ok := nc.(*net.TCPConn); ok {
				tc.SetLinger(0) // a reset: no TIME_WAIT state kept for a refused stranger
			}
			nc.Close()
			continue
		}
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.runConn(nc, nil, slot)
		}()
	}
}
