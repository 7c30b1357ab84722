package docker

import (
	"errors"
	"fmt"
	"io/fs"
)

// The sentinel errors of this package. Errors returned by Client match them
// with errors.Is; their own text is one line meant for the user.
var (
	// ErrUnreachable: nothing answers at the Docker host (dockerd is not
	// running, DOCKER_HOST points elsewhere, or the socket may not be used).
	ErrUnreachable = errors.New("Docker is not reachable")
	// ErrNoSuchContainer: no container has the name or ID asked for.
	ErrNoSuchContainer = errors.New("no such container")
	// ErrNoSuchNetwork: no Docker network has the name or ID asked for.
	ErrNoSuchNetwork = errors.New("no such network")
)

// errTooLarge is what reading a response gives once it passes the bounds
// of boundedBody.
var errTooLarge = errors.New("Docker's response is too large")

// kindError is an error with text of its own that matches the sentinel kind
// (errors.Is) and unwraps to its cause, if any.
type kindError struct {
	msg   string
	kind  error
	cause error
}

func (e *kindError) Error() string        { return e.msg }
func (e *kindError) Is(target error) bool { return target == e.kind }
func (e *kindError) Unwrap() error        { return e.cause }

// unreachable is ErrUnreachable for host, saying what to check.
func unreachable(host string, cause error) error {
	msg := fmt.Sprintf("Docker is not reachable at %s (is dockerd running? set DOCKER_HOST to its socket)", host)
	if errors.Is(cause, fs.ErrPermission) {
		msg = fmt.Sprintf("Docker is not reachable at %s: permission denied (run as root or as a member of the docker group)", host)
	}
	return &kindError{msg: msg, kind: ErrUnreachable, cause: cause}
}

// noSuchContainer is ErrNoSuchContainer for ref.
func noSuchContainer(ref string, cause error) error {
	return &kindError{msg: fmt.Sprintf("no container named or with ID %q", ref), kind: ErrNoSuchContainer, cause: cause}
}

// noSuchNetwork is ErrNoSuchNetwork for ref.
func noSuchNetwork(ref string, cause error) error {
	return &kindError{msg: fmt.Sprintf("no network named or with ID %q", ref), kind: ErrNoSuchNetwork, cause: cause}
}
