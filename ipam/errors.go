package ipam

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/weftnet/weft/mesh"
)

// Sentinel errors of the package; callers compare with errors.Is. The
// wrapped texts say what to do.
var (
	// ErrOutsidePools means a subnet or address lies in no pool.
	ErrOutsidePools = errors.New("not inside the IP allocation range or any pool")
	// ErrBadPrefix means a pool or subnet is not an IPv4 CIDR of /8 to /30
	// without host bits.
	ErrBadPrefix = errors.New("invalid prefix")
	// ErrReservedAddress means an address is a pool's network or broadcast
	// address, which is never handed out.
	ErrReservedAddress = errors.New("reserved address")
	// ErrSubnetTooSmall means a subnet has fewer than 4 addresses.
	ErrSubnetTooSmall = errors.New("subnet too small")
	// ErrAddressTaken means another target holds the address.
	ErrAddressTaken = errors.New("address already in use")
	// ErrNoSpace means no free address is left in the subnet.
	ErrNoSpace = errors.New("no free address")
	// ErrUnreachableSpace means the only free space belongs to peers that
	// cannot be reached now.
	ErrUnreachableSpace = errors.New("free addresses are owned by unreachable peers")
	// ErrUnknownPeer means rmpeer named a peer that owns nothing and is
	// not known.
	ErrUnknownPeer = errors.New("unknown peer")
	// ErrPoolOverlap means a new pool overlaps another one.
	ErrPoolOverlap = errors.New("pool overlaps another pool")
	// ErrTooManyPools means the pool limit was reached.
	ErrTooManyPools = errors.New("too many pools")
	// ErrPoolInUse means a pool still has addresses held on this router.
	ErrPoolInUse = errors.New("pool still in use")
	// ErrMalformed means a message from a peer could not be decoded.
	ErrMalformed = errors.New("malformed IPAM message")
	// ErrNoHeir means no reachable peer could take this router's ranges.
	ErrNoHeir = errors.New("no reachable peer to hand the address ranges to")
)

// TakenError is ErrAddressTaken with who holds the address: Claim returns
// it, and errors.Is(err, ErrAddressTaken) holds for it.
type TakenError struct {
	Addr netip.Addr
	// Holder is the ident that holds it; Host names where ("this host",
	// or the peer's nickname) and Peer is that peer (zero for this host).
	Holder, Host string
	Peer         mesh.PeerName
}

func (e *TakenError) Error() string {
	return fmt.Sprintf("%s: %v by %s on %s", e.Addr, ErrAddressTaken, e.Holder, e.Host)
}

// Is makes errors.Is(err, ErrAddressTaken) hold.
func (e *TakenError) Is(target error) bool { return target == ErrAddressTaken }
