package nameserver

import (
	"errors"
	"strings"
	"testing"
)

// TestQualifyNameLabels: names are RFC 1123 labels (plus '_'); miekg/dns
// alone accepted spaces, newlines and punctuation (issue 16).
func TestQualifyNameLabels(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"web_1", true},
		{"web.v2.weft.local", true},
		{"a-b.c-d.weft.local.", true},
		{"_http._tcp.web.weft.local", true},
		{"x1", true},
		{strings.Repeat("a", 63), true},
		{strings.Repeat("a", 64), false},
		{"two words", false},
		{"c1\nnameserver", false},
		{"tab\tname", false},
		{"bang!", false},
		{"-lead", false},
		{"trail-", false},
		{"a/b", false},
		{"a\\.b", false},
		{"caf\u00e9", false},
		{"*", false},
	} {
		got, err := QualifyName(tc.in, "weft.local.")
		if (err == nil) != tc.ok {
			t.Errorf("QualifyName(%q) = %q, %v; want ok %v", tc.in, got, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidName) {
			t.Errorf("QualifyName(%q): %v is not ErrInvalidName", tc.in, err)
		}
		if verr := ValidateName(tc.in); (verr == nil) != tc.ok {
			t.Errorf("ValidateName(%q) = %v; want ok %v", tc.in, verr, tc.ok)
		}
	}
}
