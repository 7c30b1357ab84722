package routertest

import (
	"maps"
	"net/netip"

	"github.com/weftnet/weft/mesh"
	"github.com/weftnet/weft/secure"
)

// ConnectKeys is Connect with data keys: a's side of the connection gets
// ka and b's side kb (OverlayConnectionParams.Keys). A nil ring makes
// that side send and expect plain datagrams. secure.NewLinkedKeyRings
// gives a matching pair.
func ConnectKeys(a, b *Node, uid uint64, ka, kb *secure.KeyRing) (ab, ba mesh.OverlayConnection, err error) {
	pa := mesh.OverlayConnectionParams{
		LocalPeer: a.Name, RemotePeer: b.Name, Outbound: true, ConnUID: uid,
		RemoteAddr: b.Addr, RemoteDataPort: b.Addr.Port(), RemoteFeatures: maps.Clone(b.Features),
		SendControl: func(msg []byte) error { ba.HandleControl(msg); return nil },
		Keys:        ka, ControlEncrypted: ka != nil,
	}
	pb := mesh.OverlayConnectionParams{
		LocalPeer: b.Name, RemotePeer: a.Name, Outbound: false, ConnUID: uid,
		RemoteAddr:     netip.AddrPortFrom(a.Addr.Addr(), 40000),
		RemoteDataPort: a.Addr.Port(),
		RemoteFeatures: maps.Clone(a.Features),
		SendControl:    func(msg []byte) error { ab.HandleControl(msg); return nil },
		Keys:           kb, ControlEncrypted: kb != nil,
	}
	if ab, err = a.Router.PrepareConnection(pa); err != nil {
		return nil, nil, err
	}
	if ba, err = b.Router.PrepareConnection(pb); err != nil {
		return nil, nil, err
	}
	ab.Confirm()
	ba.Confirm()
	return ab, ba, nil
}
