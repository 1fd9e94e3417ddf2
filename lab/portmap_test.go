package lab

import (
	"slices"
	"testing"
)

// Mappings reads what miniupnpd forwards from its accept rules, and
// nothing else.
func TestParseMappings(t *testing.T) {
	rules := `-N MINIUPNPD
-A MINIUPNPD -d 198.19.1.10/32 -p udp -m udp --dport 40155 -j ACCEPT
-A MINIUPNPD -d 198.19.1.11/32 -p tcp -m tcp --dport 8080 -j ACCEPT
-A MINIUPNPD -p udp -m udp --dport 40155 -j DNAT [unsupported revision]
`
	want := []string{"udp -> 198.19.1.10:40155", "tcp -> 198.19.1.11:8080"}
	if got := parseMappings(rules); !slices.Equal(got, want) {
		t.Fatalf("parseMappings = %q, want %q", got, want)
	}
	if got := parseMappings("-N MINIUPNPD\n"); len(got) != 0 {
		t.Fatalf("an empty chain gave %q", got)
	}
}
