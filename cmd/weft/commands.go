package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/weftnet/weft/control"
)

func runConnect(g *globals, args []string) error {
	fs := newFlagSet(g, "connect", "[--replace] PEER...")
	replace := fs.Bool("replace", false, "drop the earlier list of peers")
	peers, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(peers) == 0 && !*replace {
		return fmt.Errorf("connect: name at least one peer (HOST or HOST:PORT)")
	}
	return client(g).Connect(peers, *replace)
}

func runForget(g *globals, args []string) error {
	fs := newFlagSet(g, "forget", "PEER...")
	peers, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(peers) == 0 {
		return fmt.Errorf("forget: name at least one peer (HOST or HOST:PORT)")
	}
	return client(g).Forget(peers)
}

func runStatus(g *globals, args []string) error {
	fs := newFlagSet(g, "status", "[peers|connections|targets|dns|ipam]")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return fmt.Errorf("status: at most one view, one of %s", strings.Join(control.Views, ", "))
	}
	view := ""
	if len(pos) == 1 {
		view = pos[0]
		if !contains(control.Views, view) {
			return fmt.Errorf("status: unknown view %q; choose one of %s", view, strings.Join(control.Views, ", "))
		}
	}
	text, err := client(g).StatusView(view)
	if err != nil {
		return err
	}
	fmt.Fprint(g.stdout, text)
	return nil
}

func runReport(g *globals, args []string) error {
	fs := newFlagSet(g, "report", "")
	if _, err := parseInterspersed(fs, args); err != nil {
		return err
	}
	rep, err := client(g).Report()
	if err != nil {
		return err
	}
	enc := json.NewEncoder(g.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// splitTarget separates address arguments from the final TARGET and checks
// them locally, so that a typo never reaches the router. With alloc (attach)
// they may also be net:CIDR, net:default and ip:CIDR; detach takes CIDR and
// ip:CIDR.
func splitTarget(cmd string, pos []string, alloc bool) ([]string, string, error) {
	if len(pos) == 0 {
		return nil, "", fmt.Errorf("%s: name a TARGET (a Docker container, netns:NAME or pid:PID)", cmd)
	}
	cidrs, target := pos[:len(pos)-1], pos[len(pos)-1]
	if _, err := netip.ParsePrefix(target); err == nil {
		return nil, "", fmt.Errorf("%s: the last argument must be the TARGET (a Docker container, netns:NAME or pid:PID), not the address %s", cmd, target)
	}
	out := make([]string, 0, len(cidrs))
	for _, c := range cidrs {
		if alloc && c == "net:default" {
			out = append(out, c)
			continue
		}
		if sub, ok := strings.CutPrefix(c, "net:"); ok && alloc {
			p, err := netip.ParsePrefix(sub)
			if err != nil || !p.Addr().Is4() {
				return nil, "", fmt.Errorf("%s: invalid subnet %q: want net:CIDR like net:10.32.4.0/24, or net:default", cmd, c)
			}
			out = append(out, c)
			continue
		}
		if _, err := parseCIDR(strings.TrimPrefix(c, "ip:")); err != nil {
			return nil, "", fmt.Errorf("%s: %w", cmd, err)
		}
		if alloc {
			out = append(out, c)
		} else {
			out = append(out, strings.TrimPrefix(c, "ip:"))
		}
	}
	return out, target, nil
}

// parseCIDR parses an interface address like 10.32.0.5/12.
func parseCIDR(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid address %q: want an IPv4 address with prefix length, like 10.32.0.5/12", s)
	}
	if !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("invalid address %q: only IPv4 addresses are supported", s)
	}
	return p, nil
}

func runAttach(g *globals, args []string) error {
	fs := newFlagSet(g, "attach", "[--without-dns] [--name NAME] [--source-check | --no-source-check] [ADDRESS...] TARGET")
	withoutDNS := fs.Bool("without-dns", false, "register no DNS name for the target")
	name := fs.String("name", "", "DNS name to register (default: the target's name)")
	check := fs.Bool("source-check", false, "let the target send only from its MAC and the addresses weft gave it (default when weft chooses the addresses)")
	noCheck := fs.Bool("no-source-check", false, "let the target send from any MAC and address (default when an address is given exactly)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	cidrs, target, err := splitTarget("attach", pos, true)
	if err != nil {
		return err
	}
	req := control.AttachRequest{Target: target, CIDRs: cidrs, Name: *name, WithoutDNS: *withoutDNS}
	switch {
	case *check && *noCheck:
		return errors.New("attach: --source-check and --no-source-check contradict each other; give one")
	case *check || *noCheck:
		req.SourceCheck = check
	}
	addrs, err := client(g).Attach(req)
	if err != nil {
		return err
	}
	fmt.Fprintln(g.stdout, strings.Join(ipsOf(addrs), " "))
	return nil
}

func runDetach(g *globals, args []string) error {
	fs := newFlagSet(g, "detach", "[CIDR...] TARGET")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	cidrs, target, err := splitTarget("detach", pos, false)
	if err != nil {
		return err
	}
	addrs, err := client(g).Detach(control.AttachRequest{Target: target, CIDRs: cidrs})
	if err != nil {
		return err
	}
	if len(addrs) > 0 {
		fmt.Fprintln(g.stdout, strings.Join(ipsOf(addrs), " "))
	}
	return nil
}

func ipsOf(cidrs []string) []string {
	out := make([]string, 0, len(cidrs))
	for _, c := range cidrs {
		ip, _, _ := strings.Cut(c, "/")
		out = append(out, ip)
	}
	return out
}

func runPS(g *globals, args []string) error {
	fs := newFlagSet(g, "ps", "[TARGET...]")
	targets, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	c := client(g)
	rep, err := c.Report()
	if err != nil {
		return err
	}
	atts := rep.Attachments
	if len(targets) > 0 {
		var sel []control.Attachment
		for _, t := range targets {
			canon, err := c.Target(t)
			if err != nil {
				return fmt.Errorf("ps: %w", err)
			}
			found := false
			for _, a := range atts {
				if a.Target == canon {
					sel, found = append(sel, a), true
				}
			}
			if !found {
				return fmt.Errorf("ps: %s is not attached to the weft network", t)
			}
		}
		atts = sel
	}
	fmt.Fprint(g.stdout, control.FormatPS(atts))
	return nil
}

func runExpose(g *globals, args []string) error {
	fs := newFlagSet(g, "expose", "[ADDRESS...]")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	// The same address forms as attach; checked with a placeholder target.
	cidrs, _, err := splitTarget("expose", append(pos, "host"), true)
	if err != nil {
		return err
	}
	addrs, err := client(g).Expose(cidrs)
	if err != nil {
		return err
	}
	fmt.Fprintln(g.stdout, strings.Join(ipsOf(addrs), " "))
	return nil
}

func runHide(g *globals, args []string) error {
	fs := newFlagSet(g, "hide", "[CIDR...]")
	cidrs, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	for _, c := range cidrs {
		if _, err := parseCIDR(c); err != nil {
			return fmt.Errorf("hide: %w", err)
		}
	}
	addrs, err := client(g).Hide(cidrs)
	if err != nil {
		return err
	}
	if len(addrs) > 0 {
		fmt.Fprintln(g.stdout, strings.Join(ipsOf(addrs), " "))
	}
	return nil
}

func runStop(g *globals, args []string) error {
	fs := newFlagSet(g, "stop", "")
	if _, err := parseInterspersed(fs, args); err != nil {
		return err
	}
	c := client(g)
	if err := c.Stop(); err != nil {
		if errors.Is(err, control.ErrNotRunning) {
			return nil // nothing to stop
		}
		return err
	}
	return waitGone(c, 15*time.Second)
}

// waitGone waits until the router no longer answers.
func waitGone(c *control.Client, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if !c.Ping() {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("the router did not stop within %s", timeout)
}

func runReset(g *globals, args []string) error {
	fs := newFlagSet(g, "reset", "")
	if _, err := parseInterspersed(fs, args); err != nil {
		return err
	}
	c := client(g)
	if err := c.Reset(); err == nil {
		if err := waitGone(c, 15*time.Second); err != nil {
			return err
		}
	} else if !errors.Is(err, control.ErrNotRunning) {
		return err
	}
	// Whether or not a router ran, remove what may be left.
	if err := resetHost(); err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	for _, f := range persistedFiles {
		if err := os.Remove(filepath.Join(g.stateDir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("reset: %w", err)
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func runRmPeer(g *globals, args []string) error {
	fs := newFlagSet(g, "rmpeer", "PEER")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("rmpeer: name one peer that is gone for good, by peer name or nickname ('weft status ipam' lists them)")
	}
	msg, err := client(g).RmPeer(pos[0])
	if err != nil {
		return err
	}
	fmt.Fprintln(g.stdout, msg)
	return nil
}
