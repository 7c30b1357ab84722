package udp

import "errors"

// ErrAddressFamily is returned by WriteBatch for a destination the socket
// cannot send to (an IPv6 address on an IPv4 socket, or an invalid address).
var ErrAddressFamily = errors.New("destination address family does not match the socket")
