package nameserver

import "errors"

// Sentinel errors. Callers match them with errors.Is; the returned errors wrap
// them with the operation that failed.
var (
	// ErrInvalidName reports a name that is not a valid DNS name.
	ErrInvalidName = errors.New("invalid DNS name")
	// ErrOutsideDomain reports a name that is not inside the weft domain.
	ErrOutsideDomain = errors.New("name is outside the DNS domain")
	// ErrInvalidAddr reports an address that is not a usable IPv4 address.
	ErrInvalidAddr = errors.New("address must be IPv4")
	// ErrInvalidTarget reports a target id that is too long or not printable.
	ErrInvalidTarget = errors.New("invalid target id")
	// ErrVersionExhausted reports a record whose version cannot grow further.
	ErrVersionExhausted = errors.New("record version exhausted")
	// ErrMalformed reports gossip bytes that cannot be decoded.
	ErrMalformed = errors.New("malformed record set")
	// ErrUnsupportedFormat reports gossip bytes in a format version we do not know.
	ErrUnsupportedFormat = errors.New("unsupported record set format")
	// ErrForeignRecord reports a broadcast carrying a record owned by
	// another peer than the broadcast's source.
	ErrForeignRecord = errors.New("broadcast carries a record of another peer")
	// ErrTooLarge reports gossip bytes or a record set over the size limits.
	ErrTooLarge = errors.New("record set too large")
	// ErrNoUpstream reports that no upstream resolver is configured or usable.
	ErrNoUpstream = errors.New("no upstream resolver")
	// ErrForeignFile reports a resolv.conf that weft did not write and will not touch.
	ErrForeignFile = errors.New("file was not written by weft")
	// ErrInvalidTargetKind reports a target that is not of the form netns:NAME.
	ErrInvalidTargetKind = errors.New("target is not netns:NAME")
	// ErrServerStarted reports Listen or Start called twice.
	ErrServerStarted = errors.New("DNS server already started")
	// ErrNotListening reports Start called before Listen.
	ErrNotListening = errors.New("DNS server is not listening")
)
