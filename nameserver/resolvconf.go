package nameserver

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

// resolvConfMarker starts every resolv.conf weft writes; Remove deletes only
// files that start with it.
const resolvConfMarker = "# Written by weft: "

// ResolvConfWriter writes and removes /etc/netns/NAME/resolv.conf for
// netns:NAME targets, so that programs run with `ip netns exec NAME` use
// weft's DNS. It holds no state and is safe for concurrent use on
// different targets.
type ResolvConfWriter struct {
	// Root is prepended to /etc/netns; empty means "/". Tests use a
	// temporary directory.
	Root string
}

// Path returns the resolv.conf path for target ("netns:NAME").
func (w ResolvConfWriter) Path(target string) (string, error) {
	name, ok := strings.CutPrefix(target, "netns:")
	if !ok {
		return "", fmt.Errorf("resolv.conf for %q: %w", target, ErrInvalidTargetKind)
	}
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return "", fmt.Errorf("resolv.conf for %q: %w: bad namespace name", target, ErrInvalidTargetKind)
	}
	root := w.Root
	if root == "" {
		root = "/"
	}
	return filepath.Join(root, "etc", "netns", name, "resolv.conf"), nil
}

// Write makes target's resolv.conf point at the DNS server on dnsIP with a
// search line for domain, replacing it atomically. It refuses, with
// ErrForeignFile, to replace a file that weft did not write.
func (w ResolvConfWriter) Write(target string, dnsIP netip.Addr, domain string) error {
	path, err := w.Path(target)
	if err != nil {
		return err
	}
	if !dnsIP.IsValid() {
		return fmt.Errorf("write %s: %w: %s", path, ErrInvalidAddr, dnsIP)
	}
	domain, err = NormalizeDomain(domain)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if ours, err := isOurs(path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	} else if !ours {
		return fmt.Errorf("write %s: %w", path, ErrForeignFile)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s%s; removed when it is detached.\n", resolvConfMarker, target)
	fmt.Fprintf(&b, "nameserver %s\n", dnsIP)
	fmt.Fprintf(&b, "search %s\n", strings.TrimSuffix(domain, "."))
	fmt.Fprintf(&b, "options ndots:1\n")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := writeAtomic(path, b.Bytes()); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// Remove deletes target's resolv.conf if weft wrote it, and then its
// directory if that is left empty. A missing file is not an error; a file
// weft did not write is left alone and gives ErrForeignFile.
func (w ResolvConfWriter) Remove(target string) error {
	path, err := w.Path(target)
	if err != nil {
		return err
	}
	ours, err := isOurs(path)
	if err != nil {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	if !ours {
		return fmt.Errorf("remove %s: %w", path, ErrForeignFile)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	_ = os.Remove(filepath.Dir(path)) // only succeeds when empty
	return nil
}

// isOurs reports whether path is absent or starts with weft's marker.
func isOurs(path string) (bool, error) {
	fh, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	defer fh.Close()
	head := make([]byte, len(resolvConfMarker))
	n, _ := fh.Read(head)
	return string(head[:n]) == resolvConfMarker, nil
}

// writeAtomic writes data to a temporary file beside path, syncs it and
// renames it over path.
func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".resolv.conf.weft-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
