package control

import (
	"errors"
	"fmt"
)

// ErrNotRunning means no router answers on the control socket.
var ErrNotRunning = errors.New("no router is running")

// UserError is an error caused by a bad request: the router stays healthy
// and the message tells the user what to change. The server answers it with
// HTTP 400; other errors get 500.
type UserError struct{ Err error }

// Error returns the message of the wrapped error.
func (e *UserError) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error.
func (e *UserError) Unwrap() error { return e.Err }

// Userf formats a UserError.
func Userf(format string, args ...any) error {
	return &UserError{Err: fmt.Errorf(format, args...)}
}

// IsUserError reports whether err is (or wraps) a UserError.
func IsUserError(err error) bool {
	_, ok := errors.AsType[*UserError](err)
	return ok
}
