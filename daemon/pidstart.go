package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// A pid: target names a process by a number the kernel hands out again
// once the process is gone. The attachment therefore also records the
// process's start time (field 22 of /proc/PID/stat, in clock ticks since
// boot), and a re-attach after a restart goes ahead only when the process
// with that PID started at the same time.

// processStarter is implemented by a Host that can tell a process's start
// time itself (tests' fake host); otherwise the daemon reads /proc.
type processStarter interface {
	// ProcessStart returns the start time of process pid, in clock ticks
	// since boot.
	ProcessStart(pid int) (uint64, error)
}

// pidOf returns the PID of a pid: target.
func pidOf(target string) (int, bool) {
	s, ok := strings.CutPrefix(target, "pid:")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(s)
	return pid, err == nil && pid > 0
}

// processStart returns the start time of process pid.
func (d *Daemon) processStart(pid int) (uint64, error) {
	if ps, ok := d.deps.Host.(processStarter); ok {
		return ps.ProcessStart(pid)
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("process %d: %w", pid, err)
	}
	return parseProcStart(b)
}

// parseProcStart returns the start time (field 22) of a /proc/PID/stat
// line. The second field, the command name in parentheses, may itself
// hold spaces and parentheses, so fields are counted from after the last
// ')'; the first field there is the state (field 3).
func parseProcStart(stat []byte) (uint64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("parse /proc stat: no command name")
	}
	fields := strings.Fields(string(stat[i+1:]))
	const idx = 22 - 3
	if len(fields) <= idx {
		return 0, fmt.Errorf("parse /proc stat: %d fields after the command name, want at least %d", len(fields), idx+1)
	}
	v, err := strconv.ParseUint(fields[idx], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse /proc stat: start time %q: %w", fields[idx], err)
	}
	return v, nil
}
