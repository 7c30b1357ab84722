package fastdp

import "errors"

// Errors of the heartbeat decoder and the configuration.
var (
	// ErrShortFrame means a heartbeat frame is shorter than its fields.
	ErrShortFrame = errors.New("heartbeat frame too short")
	// ErrNotHeartbeat means a frame has another EtherType or version.
	ErrNotHeartbeat = errors.New("not a fast path heartbeat")
	// ErrConfig means a Config is incomplete or out of range.
	ErrConfig = errors.New("invalid fast path configuration")
)
