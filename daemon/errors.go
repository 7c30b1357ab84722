package daemon

import "errors"

// ErrTargetGone is wrapped by Host.Detach errors when the target's network
// namespace no longer exists (the container or process is gone). Detaching
// such a target fully forgets it: its persisted attachment, its DNS records
// and its resolv.conf.
var ErrTargetGone = errors.New("target no longer exists")

// ErrNoSuchContainer is wrapped by Docker.Container errors when Docker
// answers that the container does not exist (as opposed to Docker not
// answering).
var ErrNoSuchContainer = errors.New("no such container")
