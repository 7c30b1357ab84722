package router

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoOSDependencies holds the shape: the core — data plane, control
// plane and crypto — is plain Go and never imports the TAP, netlink or
// raw syscall packages. (nameserver is not listed: miekg/dns itself uses
// x/sys/unix.)
func TestNoOSDependencies(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not in PATH")
	}
	core := []string{"github.com/weftnet/weft/router", "github.com/weftnet/weft/router/fastdp", "github.com/weftnet/weft/mesh", "github.com/weftnet/weft/secure"}
	out, err := exec.Command(goTool, append([]string{"list", "-deps", "-e"}, core...)...).Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, bad := range []string{"songgao/water", "vishvananda/netlink", "golang.org/x/sys/unix"} {
			if strings.Contains(dep, bad) {
				t.Errorf("the core depends on %s", dep)
			}
		}
	}
}
