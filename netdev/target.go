package netdev

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/vishvananda/netns"
)

// NetnsDir is where named network namespaces live (as made by
// `ip netns add`).
const NetnsDir = "/var/run/netns"

// TargetKind says how a Target's network namespace is found.
type TargetKind int

// Target kinds. Docker containers are a later addition: the caller will
// resolve a container to the PID of its init process, and a new kind
// will keep the container's name for the veth alias.
const (
	// TargetNetns is a named namespace under NetnsDir.
	TargetNetns TargetKind = iota + 1
	// TargetPID is the namespace of a process.
	TargetPID
)

// Target is something that can be attached to the weft network: the
// network namespace it names gets an interface on the bridge.
type Target struct {
	Kind TargetKind
	Name string // namespace name, for TargetNetns
	PID  int    // process ID, for TargetPID
}

// ParseTarget parses "netns:NAME" or "pid:PID".
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
	}
	return Target{}, explain(ErrBadTarget, fmt.Sprintf(
		"target %q: use netns:NAME (a network namespace under %s) or pid:PID (the namespace of a process)", s, NetnsDir))
}

func checkNetnsName(name string) error {
	switch {
	case name == "":
		return explain(ErrBadTarget, "empty namespace name: use netns:NAME")
	case name == "." || name == ".." || strings.ContainsAny(name, "/\x00") || len(name) > 255:
		return explain(ErrBadTarget, fmt.Sprintf("invalid namespace name %q", name))
	}
	return nil
}

// String is the target in the form ParseTarget accepts.
func (t Target) String() string {
	switch t.Kind {
	case TargetNetns:
		return "netns:" + t.Name
	case TargetPID:
		return "pid:" + strconv.Itoa(t.PID)
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
// 15-character limit.
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
		h, err := netns.GetFromPid(t.PID)
		if errors.Is(err, os.ErrNotExist) {
			return netns.None(), explain(ErrNoSuchProcess, fmt.Sprintf("no process with pid %d", t.PID))
		}
		if err != nil {
			return netns.None(), fmt.Errorf("open network namespace of pid %d: %w", t.PID, err)
		}
		return h, nil
	}
	return netns.None(), explain(ErrBadTarget, "invalid target")
}

// TargetExists reports whether t's network namespace (or process) still
// exists. Only "not found" counts as gone: any other error (permissions,
// too many open files) says it may still be there.
func TargetExists(t Target) bool {
	h, err := t.open()
	if err == nil {
		h.Close()
		return true
	}
	return !errors.Is(err, ErrNamespaceNotFound) && !errors.Is(err, ErrNoSuchProcess)
}
