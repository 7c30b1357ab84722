package mesh

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestBackoffBounds(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, rnd := range []func(int64) int64{
		func(int64) int64 { return 0 },
		func(n int64) int64 { return n - 1 },
		rng.Int64N,
	} {
		b := backoff{initial: 2 * time.Second, max: time.Minute}
		want := 2 * time.Second
		for i := 0; i < 20; i++ {
			d := b.next(rnd)
			if b.interval != want {
				t.Fatalf("step %d: interval %v, want %v", i, b.interval, want)
			}
			if d < want/2 || d >= want*3/2 {
				t.Fatalf("step %d: wait %v outside [%v, %v)", i, d, want/2, want*3/2)
			}
			want = min(want*3/2, time.Minute)
		}
		b.reset()
		if d := b.next(rnd); d >= 3*time.Second {
			t.Fatalf("after reset: %v", d)
		}
	}
}

func TestNormalizeTarget(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"1.2.3.4", "1.2.3.4:6783", ""},
		{"1.2.3.4:7000", "1.2.3.4:7000", ""},
		{"host.example", "host.example:6783", ""},
		{"[2001:db8::1]:99", "[2001:db8::1]:99", ""},
		{"2001:db8::1", "[2001:db8::1]:6783", ""},
		{"[2001:db8::1]", "[2001:db8::1]:6783", ""},
		{"1.2.3.4:x", "", `invalid peer address "1.2.3.4:x": port must be a number from 1 to 65535`},
		{"1.2.3.4:0", "", `invalid peer address "1.2.3.4:0": port must be a number from 1 to 65535`},
		{"1.2.3.4:65536", "", `invalid peer address "1.2.3.4:65536": port must be a number from 1 to 65535`},
		{"1.2.3.4:", "", `invalid peer address "1.2.3.4:": port must be a number from 1 to 65535`},
		{":80", "", `invalid peer address ":80": missing host`},
		{"", "", `invalid peer address "": missing host`},
		{"a b", "", `invalid peer address "a b": malformed host`},
	} {
		got, err := normalizeTarget(tc.in, 6783)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%q: err = %v, want %s", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestNormalizeTargetRejectsMalformedColons(t *testing.T) {
	for _, s := range []string{"10.99.0.2:::", "1.2.3.4:5:6", "fe80:::1:2", "host_!x"} {
		if _, err := normalizeTarget(s, DefaultPort); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
	for _, s := range []string{"[fd00::1]:6783", "fd00::1", "10.0.0.1", "host-1.example"} {
		if _, err := normalizeTarget(s, DefaultPort); err != nil {
			t.Errorf("%q refused: %v", s, err)
		}
	}
}
