package proxy

import "errors"

// ErrDockerHost is returned by New when Config.DockerHost is not a
// unix:// address.
var ErrDockerHost = errors.New("proxy: DockerHost must be unix://PATH")

// errNoHoldBinary is returned by New for a Config with Weft and no
// HoldBinary.
var errNoHoldBinary = errors.New("proxy: Weft needs HoldBinary, the static weft binary held containers run")

// errResponseHead is the error of a raw relay whose answer from Docker
// has a head longer than maxResponseHead.
var errResponseHead = errors.New("proxy: Docker's response head is too long")
