package nameserver

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

func TestResolvConfWriter(t *testing.T) {
	root := t.TempDir()
	w := ResolvConfWriter{Root: root}
	path := filepath.Join(root, "etc/netns/c1/resolv.conf")
	if err := w.Write("netns:c1", netip.MustParseAddr("10.32.0.1"), "Weft.Local"); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "# Written by weft: netns:c1; removed when it is detached.\n" +
		"nameserver 10.32.0.1\nsearch weft.local\noptions ndots:1\n"
	if string(got) != want {
		t.Fatalf("resolv.conf:\n%s\nwant:\n%s", got, want)
	}
	// Rewriting our own file works (new address) and leaves no temp file.
	if err := w.Write("netns:c1", netip.MustParseAddr("10.32.0.2"), "weft.local."); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Fatalf("directory holds %v", entries)
	}
	if err := w.Remove("netns:c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(path)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("empty directory left: %v", err)
	}
	if err := w.Remove("netns:c1"); err != nil {
		t.Fatalf("removing a missing file: %v", err)
	}
}

func TestResolvConfWriterForeignFile(t *testing.T) {
	root := t.TempDir()
	w := ResolvConfWriter{Root: root}
	path := filepath.Join(root, "etc/netns/c2/resolv.conf")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	const mine = "nameserver 192.0.2.53\n"
	if err := os.WriteFile(path, []byte(mine), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := w.Write("netns:c2", netip.MustParseAddr("10.32.0.1"), "weft.local."); !errors.Is(err, ErrForeignFile) {
		t.Fatalf("Write over a foreign file: %v", err)
	}
	if err := w.Remove("netns:c2"); !errors.Is(err, ErrForeignFile) {
		t.Fatalf("Remove of a foreign file: %v", err)
	}
	if got, _ := os.ReadFile(path); string(got) != mine {
		t.Fatalf("foreign file changed: %q", got)
	}
}

func TestResolvConfWriterBadTargets(t *testing.T) {
	w := ResolvConfWriter{Root: t.TempDir()}
	for _, target := range []string{"c1", "pid:42", "netns:", "netns:..", "netns:a/b", "netns:."} {
		if err := w.Write(target, netip.MustParseAddr("10.32.0.1"), "weft.local."); !errors.Is(err, ErrInvalidTargetKind) {
			t.Errorf("Write(%q): %v", target, err)
		}
	}
	if p, err := (ResolvConfWriter{}).Path("netns:c1"); err != nil || p != "/etc/netns/c1/resolv.conf" {
		t.Errorf("default path %q, %v", p, err)
	}
}
