package mesh

import (
	"fmt"
	"maps"
	"net"

	"github.com/weftnet/weft/secure"
)

// featTrustsPeer is the extra feature by which, in the encrypted
// handshake, each end tells the other that the other's underlay address is
// inside its trusted subnets (value "1"). Data travels in clear only when
// both ends send it (secure.EncryptData).
const featTrustsPeer = "trusts-peer"

// secureHandshake runs the encrypted handshake after both headers said
// "password": the dialler is the initiator, the features message (tag
// byte included) is the handshake payload, and the resulting channel seals
// every later message. lh and rh are the two headers as sent, bound into
// the handshake. On an authentication failure the responder sends a decoy
// (secure.Handshake.Refusal), and the connection is set to close
// gracefully so that the decoy reaches the initiator and both ends report
// the same reason.
func secureHandshake(nc net.Conn, plain *plainChannel, cfg handshakeConfig, lh, rh []byte, version byte) (handshakeResult, error) {
	res := handshakeResult{version: version}
	local := cfg.local
	if cfg.trustPeer {
		local.Extra = maps.Clone(local.Extra)
		if local.Extra == nil {
			local.Extra = map[string]string{}
		}
		local.Extra[featTrustsPeer] = "1"
	}
	scfg := secure.Config{PSK: cfg.psk, LocalHeader: lh, RemoteHeader: rh, Payload: local.encode(),
		DataSuite: cfg.suite, Rand: cfg.rand}
	newHS := secure.NewResponder
	if cfg.initiator {
		newHS = secure.NewInitiator
	}
	hs, err := newHS(scfg)
	if err != nil {
		return res, fmt.Errorf("encrypted handshake: %w", err)
	}
	maxMsg := plain.max
	plain.max = secure.MaxHandshakeMessageLen
	sess, err := hs.Run(plain.WriteMsg, plain.ReadMsg)
	if err != nil {
		gracefulClose(nc)
		return res, fmt.Errorf("encrypted handshake: %w", err)
	}
	plain.max = maxMsg + secure.ControlOverhead
	if res.remote, err = decodeFeatures(sess.RemotePayload()); err != nil {
		return res, fmt.Errorf("encrypted handshake: %w", err)
	}
	res.encrypted = true
	res.ch = &sealedChannel{inner: secure.NewControlChannel(plain, sess), max: maxMsg}
	if secure.EncryptData(true, cfg.trustPeer, res.remote.Extra[featTrustsPeer] == "1") {
		if res.keys, err = sess.NewKeyRing(cfg.rekey, cfg.clock.Now()); err != nil {
			return res, fmt.Errorf("encrypted handshake: data keys: %w", err)
		}
	}
	return res, nil
}

// gracefulClose undoes the zero linger of control connections, so that
// what was written last (a handshake refusal) is delivered before the
// close rather than discarded by a reset.
func gracefulClose(nc net.Conn) {
	if l, ok := nc.(interface{ SetLinger(int) error }); ok {
		l.SetLinger(-1)
	}
}
