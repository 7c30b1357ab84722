package ipam

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoOSDependencies holds the shape: IPAM is plain Go, tested in
// memory; it never imports the TAP, netlink or raw syscall packages.
func TestNoOSDependencies(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not in PATH")
	}
	out, err := exec.Command(goTool, "list", "-deps", "-e", "github.com/weftnet/weft/ipam").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, bad := range []string{"songgao/water", "vishvananda/netlink", "golang.org/x/sys/unix"} {
			if strings.Contains(dep, bad) {
				t.Errorf("ipam depends on %s", dep)
			}
		}
	}
}
