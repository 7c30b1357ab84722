package proxy

import "errors"

// ErrDockerHost is returned by New when Config.DockerHost is not a
// unix:// address.
var ErrDockerHost = errors.New("proxy: DockerHost must be unix://PATH")
