package netdev

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/vishvananda/netns"
)

// NetnsDir is where named network namespaces live (as made by
// `ip netns add`).
const NetnsDir = "/var/run/netns"

// TargetKind says how a Target's network namespace is found.
type TargetKind int

// Target kinds.
const (
	// TargetNetns is a named namespace under NetnsDir.
	TargetNetns TargetKind = iota + 1
	// TargetPID is the namespace of a process.
	TargetPID
	// TargetContainer is the namespace of a Docker container, found
	// through the PID of its init process, which the caller fills in.
	TargetContainer
)

// Target is something that can be attached to the weft network: the
// network namespace it names gets an interface on the bridge.
type Target struct {
	Kind TargetKind
	Name string // namespace name, for TargetNetns
	// PID is the process, for TargetPID; for TargetContainer the
	// container's init process (0: not running), which the caller looks
	// up before each call since it changes when the container restarts.
	PID int
	ID  string // full container ID, lowercase hex, for TargetContainer
}

// ParseTarget parses "netns:NAME", "pid:PID" or "container:ID" (a Docker
// container ID, 12 to 64 lowercase hex digits; the PID is left 0).
// Container names are not resolved here: the caller turns a name into
// container:ID.
func ParseTarget(s string) (Target, error) {
	kind, arg, ok := strings.Cut(s, ":")
	switch {
	case ok && kind == "netns":
		if err := checkNetnsName(arg); err != nil {
			return Target{}, fmt.Errorf("target %q: %w", s, err)
		}
		return Target{Kind: TargetNetns, Name: arg}, nil
	case ok && kind == "pid":
		pid, err := strconv.Atoi(arg)
		if err != nil || pid <= 0 {
			return Target{}, explain(ErrBadTarget,
				fmt.Sprintf("target %q: PID must be a positive number, as in pid:1234", s))
		}
		return Target{Kind: TargetPID, PID: pid}, nil
	case ok && kind == "container":
		if !isDockerID(arg) {
			return Target{}, explain(ErrBadTarget, fmt.Sprintf(
				"target %q: a container ID is 12 to 64 lowercase hex digits, as in container:4f3a9c0d12e7", s))
		}
		return Target{Kind: TargetContainer, ID: arg}, nil
	}
	return Target{}, explain(ErrBadTarget, fmt.Sprintf(
		"target %q: use netns:NAME (a network namespace under %s), pid:PID (the namespace of a process) "+
			"or the name or ID of a Docker container", s, NetnsDir))
}

// isDockerID reports whether id looks like a Docker container or
// endpoint ID: 12 to 64 lowercase hex digits.
func isDockerID(id string) bool {
	if len(id) < 12 || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// checkNetnsName accepts the name of a file under NetnsDir that is safe
// to put in a path (/etc/netns/NAME/resolv.conf), a log line or a
// one-line-per-record listing: no '/', no whitespace, no control
// characters, not "." or "..".
func checkNetnsName(name string) error {
	switch {
	case name == "":
		return explain(ErrBadTarget, "empty namespace name: use netns:NAME")
	case name == "." || name == ".." || strings.Contains(name, "/") || len(name) > 255:
		return explain(ErrBadTarget, fmt.Sprintf("invalid namespace name %q: want a file name under %s, without '/'", name, NetnsDir))
	case strings.IndexFunc(name, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError }) >= 0:
		return explain(ErrBadTarget, fmt.Sprintf("invalid namespace name %q: no spaces or control characters (newlines, tabs); rename it with 'ip netns'", name))
	}
	return nil
}

// shortID is a Docker ID as docker ps shows it: the first 12 digits.
func shortID(id string) string { return id[:min(12, len(id))] }

// String is the target in the form ParseTarget accepts.
func (t Target) String() string {
	switch t.Kind {
	case TargetNetns:
		return "netns:" + t.Name
	case TargetPID:
		return "pid:" + strconv.Itoa(t.PID)
	case TargetContainer:
		return "container:" + t.ID
	}
	return "invalid-target"
}

// aliasPrefix marks the host ends of weft's veths; the alias is the prefix
// followed by the target string, which maps a veth back to its target.
const aliasPrefix = "weft:"

// ContainerIf is the name of the interface inside every target.
const ContainerIf = "ethweft"

// HostIfName is the name of the host end of t's veth: "vwl" and 12 hex
// digits of a hash of the target string, deterministic and within the
// 15-character limit. A container's name does not depend on its PID, so
// it stays the same across restarts.
func HostIfName(t Target) string {
	sum := sha256.Sum256([]byte(t.String()))
	return "vwl" + hex.EncodeToString(sum[:6])
}

// open opens the target's network namespace. The caller closes it.
func (t Target) open() (netns.NsHandle, error) {
	switch t.Kind {
	case TargetNetns:
		if err := checkNetnsName(t.Name); err != nil {
			return netns.None(), err
		}
		h, err := netns.GetFromPath(NetnsDir + "/" + t.Name)
		if errors.Is(err, os.ErrNotExist) {
			return netns.None(), explain(ErrNamespaceNotFound, fmt.Sprintf(
				"network namespace %q not found: create it with 'ip netns add %s'", t.Name, t.Name))
		}
		if err != nil {
			return netns.None(), fmt.Errorf("open network namespace %q: %w", t.Name, err)
		}
		return h, nil
	case TargetPID:
		return openPID(t.PID, fmt.Sprintf("pid %d", t.PID))
	case TargetContainer:
		short := shortID(t.ID)
		if t.PID <= 0 {
			return netns.None(), explain(ErrNotRunning, fmt.Sprintf(
				"container %s is not running; start it with 'docker start %s'", short, short))
		}
		return openPID(t.PID, fmt.Sprintf("pid %d (container %s)", t.PID, short))
	}
	return netns.None(), explain(ErrBadTarget, "invalid target")
}

// openPID opens the namespace of process pid; what names it in errors
// ("pid 42").
func openPID(pid int, what string) (netns.NsHandle, error) {
	h, err := netns.GetFromPid(pid)
	if errors.Is(err, os.ErrNotExist) {
		return netns.None(), explain(ErrNoSuchProcess, "no process with "+what)
	}
	if err != nil {
		return netns.None(), fmt.Errorf("open network namespace of %s: %w", what, err)
	}
	return h, nil
}

// TargetExists reports whether t's network namespace (or process) still
// exists; a container that is not running (PID 0) does not. Only "not
// found" counts as gone: any other error (permissions, too many open
// files) says it may still be there.
func TargetExists(t Target) bool {
	h, err := t.open()
	if err == nil {
		h.Close()
		return true
	}
	return !errors.Is(err, ErrNamespaceNotFound) && !errors.Is(err, ErrNoSuchProcess) &&
		!errors.Is(err, ErrNotRunning)
}
