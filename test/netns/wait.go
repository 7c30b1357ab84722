package netns

import (
	"testing"
	"time"
)

// PollInterval is how often Eventually and Consistently check.
const PollInterval = 100 * time.Millisecond

// Eventually calls cond every PollInterval until it returns nil, and fails
// the test with cond's last error if that does not happen within timeout.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	if err := Poll(timeout, cond); err != nil {
		t.Fatalf("%s: not within %v: %v", what, timeout, err)
	}
}

// Poll calls cond every PollInterval until it returns nil or timeout has
// passed; it returns cond's last error, or nil.
func Poll(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(PollInterval)
	}
}

// Consistently calls cond every PollInterval for duration d and fails the
// test as soon as it returns an error.
func Consistently(t testing.TB, d time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if err := cond(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(PollInterval)
	}
}
