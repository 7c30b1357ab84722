package mesh

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"slices"
	"time"

	"github.com/weftnet/weft/secure"
)

// Protocol versions this build speaks. A connection uses the highest
// version both ends support.
const (
	ProtocolMinVersion = 2 // 2: identity keys, signed topology entries
	ProtocolMaxVersion = 2
)

const (
	protoMagic = "weft"
	headerLen  = len(protoMagic) + 3

	flagPassword byte = 1 << 0 // the sender uses a password: encrypted handshake and control channel

	maxExtraFeatures = 64
)

// header is the fixed-size first thing both ends write.
type header struct {
	minVersion, maxVersion byte
	flags                  byte
}

func (h header) encode() []byte {
	b := make([]byte, 0, headerLen)
	b = append(b, protoMagic...)
	return append(b, h.minVersion, h.maxVersion, h.flags)
}

func decodeHeader(b []byte) (header, error) {
	if len(b) != headerLen || !bytes.Equal(b[:len(protoMagic)], []byte(protoMagic)) {
		return header{}, ErrNotWeft
	}
	h := header{minVersion: b[4], maxVersion: b[5], flags: b[6]}
	if h.minVersion == 0 || h.minVersion > h.maxVersion {
		return header{}, fmt.Errorf("%w: bad version range %d..%d", ErrNotWeft, h.minVersion, h.maxVersion)
	}
	return h, nil
}

// negotiate picks the protocol version and checks that both ends agree on
// whether a password is in use (secure.CheckPasswordFlags). password
// reports that both use one: the encrypted handshake follows.
func negotiate(local, remote header) (version byte, password bool, err error) {
	if remote.maxVersion < local.minVersion || remote.minVersion > local.maxVersion {
		return 0, false, fmt.Errorf("%w: we speak %d..%d, peer speaks %d..%d", ErrVersionMismatch,
			local.minVersion, local.maxVersion, remote.minVersion, remote.maxVersion)
	}
	lp, rp := local.flags&flagPassword != 0, remote.flags&flagPassword != 0
	if err := secure.CheckPasswordFlags(lp, rp); err != nil {
		return 0, false, err
	}
	return min(local.maxVersion, remote.maxVersion), lp, nil
}

// features is what each end tells the other in the first message.
type features struct {
	Name      PeerName
	Key       []byte // public identity key (IdentityKeyLen bytes); Name is NameOf(Key)
	NickName  string
	UID       uint64 // random per router incarnation
	ConnNonce uint64 // random per connection; ConnUID = XOR of both nonces
	DataPort  uint16
	Extra     map[string]string // extension; unknown keys are ignored
}

func (f *features) encode() []byte {
	e := encoder{b: make([]byte, 0, 64)}
	e.u8(tagFeatures)
	e.name(f.Name)
	e.bytes(f.Key)
	e.u64(f.UID)
	e.u64(f.ConnNonce)
	e.u16(f.DataPort)
	e.str8(f.NickName)
	keys := sortedKeys(f.Extra)
	if len(keys) > maxExtraFeatures {
		keys = keys[:maxExtraFeatures]
	}
	e.u16(uint16(len(keys)))
	for _, k := range keys {
		v := f.Extra[k]
		if len(v) > 0xffff {
			v = v[:0xffff]
		}
		e.str8(k)
		e.u16(uint16(len(v)))
		e.bytes([]byte(v))
	}
	return e.b
}

// decodeFeatures parses a features message, tag byte included.
func decodeFeatures(b []byte) (features, error) {
	d := newDecoder(b)
	var f features
	if tag := d.U8(); d.Err() == nil && tag != tagFeatures {
		return f, fmt.Errorf("decode features: unexpected message tag %d", tag)
	}
	f.Name = d.name()
	f.Key = slices.Clone(d.Take(IdentityKeyLen))
	f.UID = d.U64()
	f.ConnNonce = d.U64()
	f.DataPort = d.U16()
	f.NickName = d.Str8()
	n := int(d.U16())
	if n > maxExtraFeatures {
		return f, fmt.Errorf("decode features: %d extra features (max %d)", n, maxExtraFeatures)
	}
	if n > 0 {
		f.Extra = make(map[string]string, n)
	}
	for i := 0; i < n && d.Err() == nil; i++ {
		k := d.Str8()
		v := string(d.Take(int(d.U16())))
		f.Extra[k] = v
	}
	if err := d.Done(); err != nil {
		return f, fmt.Errorf("decode features: %w", err)
	}
	if f.Name == UnknownPeerName {
		return f, fmt.Errorf("decode features: peer name is zero")
	}
	if f.UID == 0 {
		return f, fmt.Errorf("decode features: peer UID is zero")
	}
	if !nameMatchesKey(f.Name, f.Key) {
		return f, fmt.Errorf("decode features: %w", ErrNameNotKey)
	}
	return f, nil
}

// handshakeConfig is one end's input to handshake.
type handshakeConfig struct {
	local     features    // Key and Name are set from identity
	identity  *Identity   // required: proves the name in the handshake
	header    header      // the password flag is set from psk
	psk       *secure.PSK // nil: no password
	initiator bool        // we dialled: the initiator of the encrypted handshake
	trustPeer bool        // the peer's underlay address is in our trusted subnets
	rekey     secure.RekeyPolicy
	timeout   time.Duration
	maxMsg    int
	clock     Clock // deadlines and key-ring start; nil means SystemClock

	// For deterministic tests and fuzz seeds; zero in production.
	suite secure.Suite // data suite preference
	rand  io.Reader    // ephemeral keys; nil means crypto/rand
}

// handshakeResult is what a successful handshake yields.
type handshakeResult struct {
	version   byte
	remote    features
	ch        msgChannel
	encrypted bool            // the control channel is sealed
	keys      *secure.KeyRing // data keys; nil when data travels in clear
}

// handshake runs the handshake on a fresh connection: both ends write
// their header and then read the other's. Without a password they then
// exchange features over the plain framing; with a password on both ends
// they run the encrypted handshake, which carries the features, and seal
// every later message. The whole exchange must finish within timeout, and
// nothing read before it ends may be longer than maxFeaturesLen (plain)
// or secure.MaxHandshakeMessageLen (encrypted), whatever maxMsg says.
func handshake(nc net.Conn, cfg handshakeConfig) (handshakeResult, error) {
	if cfg.clock == nil {
		cfg.clock = SystemClock{}
	}
	var res handshakeResult
	if cfg.identity == nil {
		return res, fmt.Errorf("handshake: no identity")
	}
	cfg.local.Name, cfg.local.Key = cfg.identity.Name(), cfg.identity.Public()
	if err := nc.SetDeadline(cfg.clock.Now().Add(cfg.timeout)); err != nil {
		return res, fmt.Errorf("handshake: %w", err)
	}
	localHeader := cfg.header
	localHeader.flags &^= flagPassword
	if cfg.psk != nil {
		localHeader.flags |= flagPassword
	}
	lh := localHeader.encode()
	if _, err := nc.Write(lh); err != nil {
		return res, fmt.Errorf("handshake: write header: %w", err)
	}
	var hb [headerLen]byte
	if _, err := io.ReadFull(nc, hb[:]); err != nil {
		return res, fmt.Errorf("handshake: read header: %w", err)
	}
	remoteHeader, err := decodeHeader(hb[:])
	if err != nil {
		return res, fmt.Errorf("handshake: %w", err)
	}
	var password bool
	if res.version, password, err = negotiate(localHeader, remoteHeader); err != nil {
		return res, fmt.Errorf("handshake: %w", err)
	}
	plain := newPlainChannel(nc, cfg.maxMsg)
	if !password {
		res.ch = plain
		if err := plain.WriteMsg(cfg.local.encode()); err != nil {
			return res, fmt.Errorf("handshake: write features: %w", err)
		}
		// Before the features are in, the peer is a stranger: its
		// message may be no longer than ours could be.
		maxMsg := plain.max
		plain.max = maxFeaturesLen
		msg, err := plain.ReadMsg()
		if err != nil {
			return res, fmt.Errorf("handshake: read features: %w", err)
		}
		if res.remote, err = decodeFeatures(msg); err != nil {
			return res, fmt.Errorf("handshake: %w", err)
		}
		if err := proveIdentity(res.ch, cfg, res.remote); err != nil {
			return res, err
		}
		plain.max = maxMsg
	} else {
		if res, err = secureHandshake(nc, plain, cfg, lh, hb[:], res.version); err != nil {
			return res, err
		}
		if err := proveIdentity(res.ch, cfg, res.remote); err != nil {
			return res, err
		}
	}
	if err := nc.SetDeadline(time.Time{}); err != nil {
		return res, fmt.Errorf("handshake: %w", err)
	}
	return res, nil
}
