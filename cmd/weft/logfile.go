package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// logFileEnv names the log file that `weft launch` made the router's
// stdout and stderr; the router then rotates it (rotatingLog).
const logFileEnv = "WEFT_LOG_FILE"

// Limits of the router's log.
const (
	// logMaxBytes is the size at which weft.log is rotated to weft.log.1
	// (replacing the one before): at most twice this on disk.
	logMaxBytes = 10 << 20
	// logBurst lines of one message are logged per logInterval; the
	// rest are counted and summed up in one line.
	logBurst    = 20
	logInterval = time.Minute
)

// rotatingLog writes the router's log to path, and when it would grow
// past max bytes renames it to path.1 (replacing the one before) and
// starts a new one. When stderr is set the new file also becomes the
// process's stdout and stderr (fds 1 and 2), so that what is written
// there directly (a panic, the last error) lands in the current file too. Write may be
// called concurrently.
type rotatingLog struct {
	mu     sync.Mutex
	path   string
	max    int64
	out    *os.File
	size   int64
	stderr bool
}

// openRotatingLog returns a rotatingLog on path, appending to it; with
// stderr, the process's fds 1 and 2 are made to point at it.
func openRotatingLog(path string, max int64, stderr bool) (*rotatingLog, error) {
	l := &rotatingLog{path: path, max: max, stderr: stderr}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

// open opens path for appending and makes it the current file. Called
// with l.mu held or before l is shared.
func (l *rotatingLog) open() error {
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open log: %w", err)
	}
	if l.stderr {
		for _, fd := range []int{1, 2} {
			if err := unix.Dup3(int(f.Fd()), fd, 0); err != nil {
				f.Close()
				return fmt.Errorf("open log: make it stdout and stderr: %w", err)
			}
		}
	}
	if l.out != nil {
		l.out.Close()
	}
	l.out, l.size = f, info.Size()
	return nil
}

// Write implements io.Writer: p goes whole into one file.
func (l *rotatingLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.size > 0 && l.size+int64(len(p)) > l.max {
		if err := os.Rename(l.path, l.path+".1"); err == nil {
			l.open() // on failure, keep writing to the old file
		}
	}
	n, err := l.out.Write(p)
	l.size += int64(n)
	return n, err
}

// Close closes the current file.
func (l *rotatingLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.out.Close()
}

// rateLimiter drops repeats of a log message: of records with the same
// level and message, at most burst are passed on per interval; the others
// are counted, and one record ("log lines dropped", with the message and
// the count) says so once the interval is over, with the next record
// logged. It is shared by the handlers derived with WithAttrs and
// WithGroup.
type rateLimiter struct {
	mu        sync.Mutex
	burst     int
	interval  time.Duration
	now       func() time.Time
	msgs      map[msgKey]*msgCount
	lastSweep time.Time
}

type msgKey struct {
	level slog.Level
	msg   string
}

type msgCount struct {
	start   time.Time
	n       int
	dropped int
}

// maxTrackedMessages bounds the rate limiter's table: messages beyond it
// are passed on unlimited until a sweep frees room.
const maxTrackedMessages = 4096

// rateLimitHandler is an slog.Handler that passes what its rateLimiter
// allows to next.
type rateLimitHandler struct {
	next slog.Handler
	rl   *rateLimiter
}

// newRateLimitHandler wraps next so that each message is logged at most
// burst times per interval; now is the clock (time.Now when nil).
func newRateLimitHandler(next slog.Handler, burst int, interval time.Duration, now func() time.Time) slog.Handler {
	if now == nil {
		now = time.Now
	}
	return &rateLimitHandler{next: next, rl: &rateLimiter{burst: burst, interval: interval, now: now, msgs: map[msgKey]*msgCount{}}}
}

// Enabled implements slog.Handler.
func (h *rateLimitHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// WithAttrs implements slog.Handler.
func (h *rateLimitHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &rateLimitHandler{next: h.next.WithAttrs(attrs), rl: h.rl}
}

// WithGroup implements slog.Handler.
func (h *rateLimitHandler) WithGroup(name string) slog.Handler {
	return &rateLimitHandler{next: h.next.WithGroup(name), rl: h.rl}
}

// Handle implements slog.Handler.
func (h *rateLimitHandler) Handle(ctx context.Context, r slog.Record) error {
	pass, summaries := h.rl.admit(msgKey{r.Level, r.Message})
	for _, s := range summaries {
		sr := slog.NewRecord(r.Time, s.level, "log lines dropped", 0)
		sr.AddAttrs(slog.String("message", s.msg), slog.Int("dropped", s.dropped),
			slog.Int("logged", s.burst), slog.Duration("interval", h.rl.interval))
		h.next.Handle(ctx, sr)
	}
	if !pass {
		return nil
	}
	return h.next.Handle(ctx, r)
}

// summary is what was dropped of one message in an interval that is over.
type summary struct {
	msgKey
	dropped, burst int
}

// admit counts a record of k and says whether it passes, and which
// intervals are over with lines dropped.
func (rl *rateLimiter) admit(k msgKey) (bool, []summary) {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	now := rl.now()
	var out []summary
	if now.Sub(rl.lastSweep) >= rl.interval {
		rl.lastSweep = now
		for key, c := range rl.msgs {
			if now.Sub(c.start) >= rl.interval {
				if c.dropped > 0 {
					out = append(out, summary{key, c.dropped, rl.burst})
				}
				delete(rl.msgs, key)
			}
		}
	}
	c := rl.msgs[k]
	if c != nil && now.Sub(c.start) >= rl.interval {
		if c.dropped > 0 {
			out = append(out, summary{k, c.dropped, rl.burst})
		}
		c = nil
	}
	if c == nil {
		if len(rl.msgs) >= maxTrackedMessages {
			return true, out
		}
		c = &msgCount{start: now}
		rl.msgs[k] = c
	}
	c.n++
	if c.n > rl.burst {
		c.dropped++
		return false, out
	}
	return true, out
}
