package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/weftnet/weft/control"
)

// runDoctor is `weft doctor [--json] [PEER]`: check every peer (or one)
// and DNS; exit 1 when something is wrong, with the first problem on
// stderr.
func runDoctor(g *globals, args []string) error {
	fs := newFlagSet(g, "doctor", "[--json] [PEER]")
	asJSON := fs.Bool("json", false, "print the verdict as JSON")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return fmt.Errorf("doctor: at most one peer (its name or nickname)")
	}
	peer := ""
	if len(pos) == 1 {
		peer = pos[0]
	}
	rep, err := client(g).Doctor(peer)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		fmt.Fprint(g.stdout, control.FormatDoctor(rep))
	}
	if !rep.OK {
		return fmt.Errorf("doctor: %d problem(s); first: %s", len(rep.Problems), rep.Problems[0])
	}
	return nil
}

// runPing is `weft ping [-c N] PEER`: probe a peer over the overlay and
// say which path answered.
func runPing(g *globals, args []string) error {
	fs := newFlagSet(g, "ping", "[-c N] PEER")
	count := fs.Int("c", 3, "number of pings (1 to 100)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("ping: name one peer (its name or nickname)")
	}
	if *count < 1 || *count > 100 {
		return fmt.Errorf("ping: -c %d: give 1 to 100 pings", *count)
	}
	c := client(g)
	answered := 0
	var last error
	for i := range *count {
		if i > 0 {
			time.Sleep(500 * time.Millisecond)
		}
		r, err := c.PingPeer(pos[0])
		if err != nil {
			if i == 0 && control.IsUserError(err) && !isNoAnswer(err) {
				return err // unknown peer, no route: no point trying again
			}
			fmt.Fprintf(g.stdout, "%s\n", err)
			last = err
			continue
		}
		answered++
		fmt.Fprint(g.stdout, control.FormatPing(r))
	}
	if answered == 0 {
		return last
	}
	return nil
}

// isNoAnswer reports whether a ping failed for want of an answer (worth
// trying again), as opposed to a bad peer name.
func isNoAnswer(err error) bool {
	return strings.HasPrefix(err.Error(), "no answer from ")
}
