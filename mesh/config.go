package mesh

import (
	"fmt"
	"log/slog"
	"maps"
	"net"
	"time"

	"github.com/weftnet/weft/secure"
)

// DefaultPort is the TCP control port used when none is given.
const DefaultPort = 6783

// Config configures a Node. Zero timing fields take the defaults noted.
type Config struct {
	// Identity is the router's long-term identity key; required,
	// persistent across restarts. The peer name is derived from it.
	Identity *Identity
	// Name identifies this peer: Identity's name (NameOf). It may be left
	// zero; NewNode sets it, and refuses any other value.
	Name PeerName
	// NickName is a human-readable name (the hostname); defaults to Name.
	NickName string
	// ListenAddr is the TCP control address, host:port; an empty host
	// means all addresses, port 0 an ephemeral port. Empty means
	// ":DefaultPort".
	ListenAddr string
	// DefaultPort is the port of targets given without one; 0 means the
	// package DefaultPort.
	DefaultPort int
	// DataPort is the UDP port our overlay receives data on, told to peers.
	DataPort uint16
	// ConnLimit is the most connections we keep; 0 means unlimited.
	// Inbound connections beyond it are refused with a reason.
	ConnLimit int
	// PreauthLimit is the most inbound connections whose handshake is
	// still running, from all addresses together; 0 means
	// DefaultPreauthLimit. It is separate from ConnLimit, which counts
	// registered peers. When it is reached, a connection from an address
	// that holds at least two fewer of them than the busiest address
	// replaces the busiest address's oldest one; otherwise it is closed
	// at once.
	PreauthLimit int
	// PreauthLimitPerAddr is the most of those connections from one
	// remote IP; 0 means DefaultPreauthLimitPerAddr. Beyond it, new
	// connections from that address are closed at once.
	PreauthLimitPerAddr int
	// Discovery makes the node connect to peers learnt from the topology:
	// only at addresses of connections that both ends report, never at
	// link-local, multicast or unspecified addresses, nor at loopback ones
	// unless we listen on a loopback address ourselves, and at most
	// DiscoveryBurst dials at once, then one per DiscoveryInterval
	// (docs/protocol-control.md §5, "Discovery"). Targets given to
	// Connect are dialled whatever their address.
	Discovery bool
	// DiscoveryBurst is how many discovered targets may be dialled at
	// once (default 8); DiscoveryInterval how often one more may be
	// after that (default 250 ms).
	DiscoveryBurst    int
	DiscoveryInterval time.Duration
	// DiscoveryMaxConns stops dialling discovered targets while we hold
	// that many connections (inbound and outbound, attempts included);
	// 0 means no bound, and discovery makes a full mesh. Direct targets
	// are dialled whatever it says. A sparse mesh of a few connections a
	// router keeps topology gossip small in large meshes (docs/scale.md).
	DiscoveryMaxConns int
	// Overlay is the data plane; required.
	Overlay Overlay
	// Logger receives the node's logs; nil discards them.
	Logger *slog.Logger

	// PSK is the pre-shared key stretched from the network password
	// (secure.DerivePSK, once per router); nil means no password. With a
	// key, the header's password flag is set, peers without a password are
	// refused, and every connection runs the encrypted handshake and seals
	// its control messages; peers with another password are refused.
	PSK *secure.PSK
	// TrustedSubnets are the underlay subnets whose peers may exchange
	// data in clear (control stays encrypted): a connection's data is
	// unencrypted only when both ends trust each other. Ignored without
	// PSK.
	TrustedSubnets secure.TrustedSubnets
	// DataRekey is the rekey policy of the data key rings handed to the
	// overlay; zero fields take secure's defaults.
	DataRekey secure.RekeyPolicy

	// Features are extra features announced to every peer in the
	// handshake (the features message's extras, docs/protocol-control.md
	// §3), such as the daemon's "ipalloc-range". Keys are at most 255
	// bytes and values at most 65535, at most 63 of them, and the whole
	// features message must fit secure.MaxPayloadLen (32 KiB), the payload
	// of the encrypted handshake; "trusts-peer" is set by the mesh itself.
	// NewNode rejects features beyond these limits. The map is copied.
	Features map[string]string
	// CheckPeer, if set, is called on both ends of every connection right
	// after the handshake, with the remote peer's name, nickname and
	// extra features (a copy the function owns; a key the peer does not
	// announce is absent). An error refuses the peer: the connection is
	// closed after telling the peer why, the refusal is logged, and status
	// shows the error's own text as the reason (an outbound target is
	// retried with backoff). Both ends check independently, so the text
	// should name both values. nil accepts every peer. It runs on the
	// connection's goroutine, possibly concurrently for several
	// connections, and must not block.
	CheckPeer func(remoteName PeerName, remoteNick string, remote map[string]string) error
	// ConnRTT, if set, measures the round-trip time of an established
	// control connection (the daemon asks the kernel for the TCP
	// connection's smoothed RTT); Status reports it per connection. It
	// must not block; 0 means unknown. nil: no round-trip times.
	ConnRTT func(net.Conn) time.Duration

	// HandshakeTimeout bounds the handshake (default 10 s).
	HandshakeTimeout time.Duration
	// DialTimeout bounds a TCP connect (default 10 s).
	DialTimeout time.Duration
	// HeartbeatInterval is how often an idle connection sends a heartbeat
	// (default 30 s).
	HeartbeatInterval time.Duration
	// HeartbeatTimeout closes a connection on which nothing arrived for
	// that long (default 60 s).
	HeartbeatTimeout time.Duration
	// UpdateDelay coalesces topology broadcasts and route recomputation
	// (default 100 ms).
	UpdateDelay time.Duration
	// GossipInterval is the period of full gossip to neighbours (default 30 s).
	GossipInterval time.Duration
	// InitialBackoff is the first retry delay of a failed target (default
	// 2 s); it grows 1.5x per failure up to MaxBackoff (default 5 min).
	InitialBackoff, MaxBackoff time.Duration
	// BackoffReset: a connection that lived at least this long is retried
	// at once when it breaks (default 1 min).
	BackoffReset time.Duration
	// MaxMessageSize bounds a control message (default 10 MiB).
	MaxMessageSize int
	// MaxPeers bounds the peers the topology holds, ourselves included
	// (default DefaultMaxPeers). Entries of further peers are refused and
	// counted (TopologyRefusals); known peers stay.
	MaxPeers int
	// TopologyBudget is how many topology entries one connection may have
	// us check per second, after a burst of MaxPeers (default
	// DefaultTopologyBudget). Entries beyond it are dropped, to come
	// again with the next gossip, and counted.
	TopologyBudget int

	// Clock is the source of time of every timer, deadline and backoff;
	// nil means SystemClock.
	Clock Clock
	// Network opens the control connections; nil means SystemNetwork.
	Network Network
}

func (c *Config) setDefaults() error {
	if c.Identity == nil {
		return fmt.Errorf("mesh config: identity key is required")
	}
	if c.Name == UnknownPeerName {
		c.Name = c.Identity.Name()
	} else if c.Name != c.Identity.Name() {
		return fmt.Errorf("mesh config: peer name %s is not the name of the identity key (%s)", c.Name, c.Identity.Name())
	}
	if c.Overlay == nil {
		return fmt.Errorf("mesh config: overlay is required")
	}
	if c.DiscoveryMaxConns < 0 {
		return fmt.Errorf("mesh config: discovery connection bound %d is negative", c.DiscoveryMaxConns)
	}
	if c.ConnLimit < 0 {
		return fmt.Errorf("mesh config: connection limit %d is negative", c.ConnLimit)
	}
	if c.PreauthLimit < 0 || c.PreauthLimitPerAddr < 0 {
		return fmt.Errorf("mesh config: pre-authentication limits %d, %d: must not be negative", c.PreauthLimit, c.PreauthLimitPerAddr)
	}
	if c.PreauthLimit == 0 {
		c.PreauthLimit = DefaultPreauthLimit
	}
	if c.PreauthLimitPerAddr == 0 {
		c.PreauthLimitPerAddr = DefaultPreauthLimitPerAddr
	}
	if c.NickName == "" {
		c.NickName = c.Name.String()
	}
	if err := checkFeatures(c.Features, c.NickName); err != nil {
		return fmt.Errorf("mesh config: %w", err)
	}
	c.Features = maps.Clone(c.Features)
	if c.DefaultPort == 0 {
		c.DefaultPort = DefaultPort
	}
	if c.ListenAddr == "" {
		c.ListenAddr = fmt.Sprintf(":%d", DefaultPort)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.HandshakeTimeout, 10*time.Second)
	def(&c.DialTimeout, 10*time.Second)
	def(&c.HeartbeatInterval, 30*time.Second)
	def(&c.HeartbeatTimeout, 60*time.Second)
	def(&c.UpdateDelay, 100*time.Millisecond)
	def(&c.GossipInterval, 30*time.Second)
	def(&c.InitialBackoff, 2*time.Second)
	def(&c.MaxBackoff, 5*time.Minute)
	def(&c.BackoffReset, time.Minute)
	def(&c.DiscoveryInterval, DefaultDiscoveryInterval)
	if c.DiscoveryBurst <= 0 {
		c.DiscoveryBurst = DefaultDiscoveryBurst
	}
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
	if c.MaxPeers <= 0 {
		c.MaxPeers = DefaultMaxPeers
	}
	if c.TopologyBudget <= 0 {
		c.TopologyBudget = DefaultTopologyBudget
	}
	if c.Clock == nil {
		c.Clock = SystemClock{}
	}
	if c.Network == nil {
		c.Network = SystemNetwork{}
	}
	return nil
}

// checkFeatures checks Config.Features against the limits of the features
// message, so that nothing is cut or refused on the wire.
func checkFeatures(extra map[string]string, nick string) error {
	if len(extra) >= maxExtraFeatures {
		return fmt.Errorf("%d features (max %d)", len(extra), maxExtraFeatures-1)
	}
	for k, v := range extra {
		switch {
		case k == featTrustsPeer, k == featTopoSummary:
			return fmt.Errorf("feature %q is reserved", k)
		case len(k) > 0xff:
			return fmt.Errorf("feature key of %d bytes (max 255)", len(k))
		case len(v) > 0xffff:
			return fmt.Errorf("feature %q: value of %d bytes (max 65535)", k, len(v))
		}
	}
	// The largest message: with a password and trusts-peer added.
	f := features{NickName: nick, Extra: maps.Clone(extra)}
	if f.Extra == nil {
		f.Extra = map[string]string{}
	}
	f.Extra[featTrustsPeer] = "1"
	f.Extra[featTopoSummary] = "1"
	if l := len(f.encode()); l > secure.MaxPayloadLen {
		return fmt.Errorf("features of %d bytes encoded (max %d)", l, secure.MaxPayloadLen)
	}
	return nil
}
