package tap

import "errors"

// ErrMultiQueue is wrapped by the error of OpenOffloadQueues when the
// kernel refuses a multi-queue TAP: one without IFF_MULTI_QUEUE support,
// or a device of that name that already exists without the flag. The
// caller can fall back to one queue with OpenOffload.
var ErrMultiQueue = errors.New("multi-queue tap refused")
