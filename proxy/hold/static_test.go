package hold

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weftnet/weft/test/netns"
)

// goTool finds the go command as test/netns does.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// buildTiny builds a one-file main package with src and the given
// CGO_ENABLED into the test's temporary directory.
func buildTiny(t *testing.T, name, src, cgo string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module tiny\n\ngo 1.21\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, name)
	cmd := exec.Command(goTool(), "build", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED="+cgo, "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s (CGO_ENABLED=%s): %v\n%s", name, cgo, err, out)
	}
	return bin
}

func TestStatic(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries")
	}
	static := buildTiny(t, "static", "package main\n\nfunc main() { println(\"hi\") }\n", "0")
	if ok, err := Static(static); err != nil || !ok {
		t.Errorf("Static(CGO_ENABLED=0 build) = %v, %v; want true", ok, err)
	}

	notELF := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(notELF, []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if ok, err := Static(notELF); err == nil || ok || !strings.Contains(err.Error(), notELF) {
		t.Errorf("Static(script) = %v, %v; want an error naming it", ok, err)
	}
	if _, err := Static(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("Static(missing file) = nil error")
	}

	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("no gcc: the dynamic half needs cgo")
	}
	dynamic := buildTiny(t, "dynamic",
		"package main\n\n// #include <stdlib.h>\nimport \"C\"\n\nfunc main() { C.abs(1) }\n", "1")
	if ok, err := Static(dynamic); err != nil || ok {
		t.Errorf("Static(cgo build) = %v, %v; want false", ok, err)
	}
}

// TestWeftBinaryStatic checks that the weft binary the tests use (and
// `make build` makes) is static, as the proxy's bind mount needs.
func TestWeftBinaryStatic(t *testing.T) {
	if testing.Short() {
		t.Skip("builds weft")
	}
	bin := netns.Binary(t)
	if ok, err := Static(bin); err != nil || !ok {
		t.Errorf("Static(%s) = %v, %v; want a static weft (CGO_ENABLED=0)", bin, ok, err)
	}
}
