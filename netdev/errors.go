package netdev

import "errors"

// Sentinel errors; test with errors.Is. The errors returned carry a full
// explanation and the operation, for instance
// `attach netns:c9: network namespace "c9" not found: create it with 'ip netns add c9'`.
var (
	// ErrBadTarget: a target string that is not netns:NAME, pid:PID or
	// container:ID.
	ErrBadTarget = errors.New("bad target")
	// ErrNamespaceNotFound: the named network namespace does not exist.
	ErrNamespaceNotFound = errors.New("network namespace not found")
	// ErrNoSuchProcess: the process of a pid: target (or a running
	// container's init process) does not exist.
	ErrNoSuchProcess = errors.New("no such process")
	// ErrNotRunning: the container of a container: target is not running
	// (its PID is 0).
	ErrNotRunning = errors.New("container not running")
	// ErrHostNamespace: the target is the host's own network namespace.
	ErrHostNamespace = errors.New("target is in the host network namespace")
	// ErrNoBridge: the weft bridge does not exist.
	ErrNoBridge = errors.New("bridge not found")
	// ErrNotBridge: a link with the bridge's name exists but is not a bridge.
	ErrNotBridge = errors.New("not a bridge")
	// ErrBadAddress: an address that cannot be given to an interface.
	ErrBadAddress = errors.New("bad address")
	// ErrAddressInUse: the address is already on another interface in the
	// namespace, or on this one with another prefix length.
	ErrAddressInUse = errors.New("address already in use")
	// ErrInterfaceExists: the target already has an ethweft interface that
	// weft did not make.
	ErrInterfaceExists = errors.New("interface already exists")
	// ErrNotAttached: the target has no weft interface.
	ErrNotAttached = errors.New("not attached")
	// ErrNoRoute: no route to the destination (or no default route).
	ErrNoRoute = errors.New("no route")
	// ErrBadEndpoint: an Endpoint with a bad ID, MAC, segment or MTU.
	ErrBadEndpoint = errors.New("bad endpoint")
	// ErrStale: a weft veth whose target namespace is gone or no longer
	// holds the other end.
	ErrStale = errors.New("target namespace no longer holds the interface")
)

// explained is an error whose message is a full sentence for the user
// and which still matches its sentinel with errors.Is.
type explained struct {
	msg  string
	kind error
}

func (e *explained) Error() string { return e.msg }
func (e *explained) Unwrap() error { return e.kind }

func explain(kind error, msg string) error { return &explained{msg: msg, kind: kind} }

// ErrBadVXLAN: a fast path device configuration out of range.
var ErrBadVXLAN = errors.New("bad VXLAN configuration")
