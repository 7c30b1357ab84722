package daemon

import "errors"

// ErrTargetGone is wrapped by Host.Detach errors when the target's network
// namespace no longer exists (the container or process is gone). Detaching
// such a target fully forgets it: its persisted attachment, its DNS records
// and its resolv.conf.
var ErrTargetGone = errors.New("target no longer exists")
