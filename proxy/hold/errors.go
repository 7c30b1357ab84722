package hold

import "errors"

// Sentinel errors; test with errors.Is. Main turns them into exit codes as
// Docker does for a command it cannot start.
var (
	// ErrNoCommand: nothing follows "--" (Main exits 2).
	ErrNoCommand = errors.New("no command to run")
	// ErrNotFound: the command is not in the PATH, or a path given with a
	// slash does not exist (Main exits 127).
	ErrNotFound = errors.New("command not found")
	// ErrCannotRun: the command was found but could not be executed, for
	// instance permission denied or not an executable (Main exits 126).
	ErrCannotRun = errors.New("command cannot be run")
)
