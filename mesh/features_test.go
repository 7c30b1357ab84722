package mesh

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/weftnet/weft/secure"
)

// rangeChecker is a CheckPeer that refuses peers announcing another
// ipalloc-range than own, and records every remote map it was given.
type rangeChecker struct {
	own  string
	mu   sync.Mutex
	seen []map[string]string
}

func (rc *rangeChecker) check(_ PeerName, _ string, remote map[string]string) error {
	rc.mu.Lock()
	rc.seen = append(rc.seen, remote)
	rc.mu.Unlock()
	if r := remote["ipalloc-range"]; r != rc.own {
		return fmt.Errorf("IP allocation range %s differs from the peer's %s; every router must use the same --ipalloc-range", rc.own, r)
	}
	return nil
}

func (rc *rangeChecker) calls() []map[string]string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.seen)
}

// withRange announces ipalloc-range r and checks peers with rc.
func withRange(r string, rc *rangeChecker) func(*Config) {
	return func(c *Config) {
		c.Features = map[string]string{"ipalloc-range": r}
		c.CheckPeer = rc.check
	}
}

func TestCheckPeer(t *testing.T) {
	const (
		rangeA = "10.32.0.0/12"
		rangeB = "10.40.0.0/16"
	)
	for _, tc := range []struct {
		name           string
		rangeA, rangeB string
		password       bool
		trusted        string // both ends' trusted subnets: trusts-peer is sent
	}{
		{name: "differ", rangeA: rangeA, rangeB: rangeB},
		{name: "differ with password", rangeA: rangeA, rangeB: rangeB, password: true},
		{name: "agree", rangeA: rangeA, rangeB: rangeA},
		{name: "agree with password and trust", rangeA: rangeA, rangeB: rangeA, password: true, trusted: "127.0.0.0/8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var key byte
			if tc.password {
				key = 5
			}
			var la, lb logBuf
			rca, rcb := &rangeChecker{own: tc.rangeA}, &rangeChecker{own: tc.rangeB}
			a := startNode(t, 1, func(c *Config) {
				withPassword(t, key, tc.trusted, &la)(c)
				withRange(tc.rangeA, rca)(c)
			})
			b := startNode(t, 2, func(c *Config) {
				withPassword(t, key, tc.trusted, &lb)(c)
				withRange(tc.rangeB, rcb)(c)
			})
			a.connect(t, b)

			if tc.rangeA == tc.rangeB {
				eventually(t, converge, func() error { return directMesh(a, b) })
				if p, _ := a.ov.paramsFor(2); tc.trusted != "" && p.Keys != nil {
					t.Fatal("data encrypted although both ends sent trusts-peer")
				}
				// The checker sees the announced features only, not trusts-peer.
				for _, rc := range []*rangeChecker{rca, rcb} {
					if len(rc.calls()) == 0 {
						t.Errorf("checker of %s not called", rc.own)
					}
					for _, m := range rc.calls() {
						if !maps.Equal(m, map[string]string{"ipalloc-range": tc.rangeA}) {
							t.Errorf("checker of %s got %v", rc.own, m)
						}
					}
				}
				return
			}

			reasonA := "IP allocation range " + tc.rangeA + " differs from the peer's " + tc.rangeB + "; every router must use the same --ipalloc-range"
			reasonB := "IP allocation range " + tc.rangeB + " differs from the peer's " + tc.rangeA + "; every router must use the same --ipalloc-range"
			// The dialler retries with backoff: b checks a again and again.
			eventually(t, converge, func() error {
				if err := hasReason(a, StateRetrying, reasonA); err != nil {
					return err
				}
				if err := hasReason(b, StateFailed, reasonB); err != nil {
					return err
				}
				if n := len(rcb.calls()); n < 3 {
					return fmt.Errorf("b checked a %d times", n)
				}
				return nil
			})
			for _, cs := range a.Status().Connections {
				if cs.State == StateRetrying && (cs.NextTry.IsZero() || !cs.Outbound || cs.Peer != testName(2)) {
					t.Errorf("a's retrying target %+v", cs)
				}
			}
			// Refused before the data path was prepared: never registered.
			for _, n := range []*testNode{a, b} {
				if _, ok := n.ov.paramsFor(3 - n.Name()); ok {
					t.Errorf("%v prepared a data path", n.Name())
				}
			}
			for _, l := range []struct {
				log    *logBuf
				reason string
			}{{&la, reasonA}, {&lb, reasonB}} {
				s := l.log.String()
				if !strings.Contains(s, "connection refused") || !strings.Contains(s, l.reason) {
					t.Errorf("refusal with %q not logged:\n%s", l.reason, s)
				}
			}
		})
	}
}

func TestFeaturesValidated(t *testing.T) {
	big := strings.Repeat("v", 1000)
	many := map[string]string{}
	for i := range maxExtraFeatures {
		many[fmt.Sprint(i)] = "x"
	}
	large := map[string]string{}
	for i := range 40 {
		large[fmt.Sprint(i)] = big
	}
	for _, tc := range []struct {
		name     string
		features map[string]string
		want     string // "" means accepted
	}{
		{"none", nil, ""},
		{"one", map[string]string{"ipalloc-range": "10.32.0.0/12"}, ""},
		{"longest key", map[string]string{strings.Repeat("k", 255): big}, ""},
		{"key too long", map[string]string{strings.Repeat("k", 256): "x"}, "max 255"},
		{"value too long", map[string]string{"k": strings.Repeat("v", 0x10000)}, "max 65535"},
		{"reserved", map[string]string{featTrustsPeer: "1"}, "reserved"},
		{"too many", many, "64 features"},
		{"too large", large, "encoded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(1, newFakeOverlay())
			cfg.Features = tc.features
			_, err := NewNode(cfg)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("NewNode = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestReason(t *testing.T) {
	checker := errors.New("IP allocation range 10.32.0.0/12 differs from the peer's 10.40.0.0/16")
	refused := fmt.Errorf("closed: %w", &incompatibleError{checker})
	if !errors.Is(refused, ErrIncompatible) || !errors.Is(refused, checker) || !isRefusal(refused) {
		t.Fatalf("%v is not an ErrIncompatible refusal wrapping the checker's error", refused)
	}
	if want := "incompatible peer: " + checker.Error(); !strings.HasSuffix(refused.Error(), want) {
		t.Errorf("error %q, want suffix %q", refused, want)
	}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{refused, checker.Error()},
		{fmt.Errorf("encrypted handshake: %w", secure.ErrAuthentication), secure.ErrAuthentication.Error()},
		{errors.New("read: EOF"), "read: EOF"},
		{nil, ""},
	} {
		if got := reason(tc.err); got != tc.want {
			t.Errorf("reason(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestReachable(t *testing.T) {
	// Before any route is computed only we are reachable.
	n, err := NewNode(testConfig(7, newFakeOverlay()))
	if err != nil {
		t.Fatal(err)
	}
	if !n.Reachable(testName(7)) || n.Reachable(testName(8)) || !slices.Equal(n.ReachablePeers(), []PeerName{testName(7)}) {
		t.Fatalf("unstarted node: Reachable(7) %v, Reachable(8) %v, peers %v", n.Reachable(testName(7)), n.Reachable(testName(8)), n.ReachablePeers())
	}

	a, b, c := startNode(t, 1, nil), startNode(t, 2, nil), startNode(t, 3, nil)
	a.connect(t, b)
	b.connect(t, c)
	reach := func(seqs []PeerName, nodes ...*testNode) func() error {
		var want []PeerName
		for _, p := range seqs {
			want = append(want, seqName(p))
		}
		slices.Sort(want)
		return func() error {
			for _, n := range nodes {
				if got := n.ReachablePeers(); !slices.Equal(got, want) {
					return fmt.Errorf("%v reaches %v, want %v", n.Name(), got, want)
				}
				for seq := range PeerName(5) {
					p := seqName(seq)
					if n.Reachable(p) != slices.Contains(want, p) {
						return fmt.Errorf("%v: Reachable(%v) = %v", n.Name(), p, n.Reachable(p))
					}
				}
			}
			return nil
		}
	}
	eventually(t, converge, reach([]PeerName{1, 2, 3}, a, b, c))
	if _, ok := a.conn(3); ok {
		t.Fatal("a is connected to c directly")
	}
	b.Stop()
	eventually(t, converge, reach([]PeerName{1}, a))
	eventually(t, converge, reach([]PeerName{3}, c))
}
