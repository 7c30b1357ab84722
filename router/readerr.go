package router

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// maxReadErrors is how many reads in a row may fail before a reader gives
// up; a single failure (a transient errno) is logged and retried.
const maxReadErrors = 100

// errorRun tracks consecutive read errors of one reader goroutine.
type errorRun struct{ n int }

// check returns a non-nil error when the reader should stop: the device or
// socket was closed, or reads failed maxReadErrors times in a row.
func (e *errorRun) check(r *Router, op string, err error) error {
	if err == nil {
		e.n = 0
		return nil
	}
	if errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("%s: %w", op, err)
	}
	e.n++
	if e.n >= maxReadErrors {
		return fmt.Errorf("%s: %d errors in a row, last: %w", op, e.n, err)
	}
	r.log.Warn("read failed, retrying", "op", op, "err", err)
	time.Sleep(time.Millisecond) // do not spin on a persistent error
	return nil
}
